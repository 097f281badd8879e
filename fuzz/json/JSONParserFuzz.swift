// libFuzzer target for JSONParser (plus the serializer, ISO8601.parse and Base64URL, which take the
// same untrusted text). Properties checked on every input:
// - parsing never crashes, and a contiguous and a non-contiguous copy of the input give the same
//   result (value or error);
// - an error's position lies inside the input and its message can be built;
// - a parsed value serializes to JSON that parses back to an equal value, and serializing that
//   again gives the same bytes;
// - ISO8601.parse and Base64URL.decode, when they accept, round-trip through their encoders.
// Built by fuzz/run-json-fuzz.sh with -sanitize=fuzzer,address, so memory errors are caught too.

@testable import JSON
@testable import Security

private func parseOutcome(_ bytes: some Collection<UInt8>, maxDepth: Int) -> Result<JSONValue, JSONParseError> {
    Result { () throws(JSONParseError) in try JSONParser.parse(bytes, maxDepth: maxDepth) }
}

private func check(_ input: UnsafeBufferPointer<UInt8>) {
    // A small depth limit on some inputs reaches the limit path without deep documents.
    let maxDepth = input.first.map { $0 & 1 == 0 ? JSONParser.defaultMaxDepth : 3 } ?? JSONParser.defaultMaxDepth
    let outcome = parseOutcome(input, maxDepth: maxDepth)
    let copied = parseOutcome(input.lazy.map { $0 }, maxDepth: maxDepth)
    guard outcome == copied else {
        fatalError("contiguous and non-contiguous parses differ: \(outcome) vs \(copied)")
    }

    switch outcome {
    case .failure(let error):
        guard error.offset >= 0, error.offset <= input.count, error.line >= 1, error.column >= 1,
            error.column <= error.offset + 1, error.line <= error.offset + 1
        else {
            fatalError("error position out of range: \(error) for \(input.count) bytes")
        }
        _ = error.message
    case .success(let value):
        let serialized = value.serialized()
        let reparsed = parseOutcome(serialized, maxDepth: JSONParser.depthCeiling)
        guard case .success(let again) = reparsed else {
            fatalError("serialized output does not parse: \(reparsed) for \(String(decoding: serialized, as: UTF8.self))")
        }
        guard again == value else {
            fatalError("round trip changed the value: \(value) -> \(again)")
        }
        guard again.serialized() == serialized else {
            fatalError("serialization is not stable for \(String(decoding: serialized, as: UTF8.self))")
        }
    }

    let text = String(decoding: input, as: UTF8.self)
    if let milliseconds = ISO8601.parse(text) {
        let formatted = ISO8601.format(millisecondsSinceEpoch: milliseconds)
        guard ISO8601.parse(formatted) == milliseconds else {
            fatalError("ISO 8601 round trip failed: \(text) -> \(milliseconds) -> \(formatted)")
        }
    }
    if let decoded = Base64URL.decode(bytes: input) {
        // Strict decoding accepts only the canonical spelling, so encoding gives the input back.
        guard Array(Base64URL.encode(decoded).utf8) == Array(input) else {
            fatalError("Base64URL accepted a non-canonical spelling: \(text)")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONParser(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    guard let data, size > 0 else {
        check(UnsafeBufferPointer(start: nil, count: 0))
        return 0
    }
    check(UnsafeBufferPointer(start: data.assumingMemoryBound(to: UInt8.self), count: size))
    return 0
}
