// libFuzzer target for the PROXY protocol parser (versions 1 and 2), which reads the first bytes of
// every connection when PROXY protocol is on. Invariants: the same bytes give the same answer
// through the raw buffer and the collection entry points; a header lies within the input and no
// longer than `maximumLength`, is the same without the bytes after it, and every shorter prefix asks
// for more; a request for more comes only below `maximumLength` bytes, and so does every prefix;
// a refusal stands whatever bytes follow. Built by fuzz/run-proxy-fuzz.sh.

@testable import HTTP

/// Bytes appended to a refused input: line ends, fields, another v2 preamble.
private let continuations: [[UInt8]] = [
    [0x0D, 0x0A], [0x0A], Array(" 1.2.3.4 5.6.7.8 1 2\r\n".utf8), Array("1 ::1 2 3\r\n".utf8),
    [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C],
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let bytes = Array(input)
    let result = ProxyProtocol.parse(input)
    guard ProxyProtocol.parse(input) == result, ProxyProtocol.parse(bytes) == result,
          ProxyProtocol.parse(bytes.lazy.map { $0 }) == result
    else { fatalError("entry points disagree: \(result)") }

    switch result {
    case .header(let header, let length):
        guard length > 0, length <= size, length <= ProxyProtocol.maximumLength else { fatalError("length \(length) of \(size)") }
        guard header.version == (bytes.first == UInt8(ascii: "P") ? 1 : 2) else { fatalError("version \(header.version)") }
        guard (header.source == nil) == (header.destination == nil) else { fatalError("one endpoint without the other") }
        guard ProxyProtocol.parse(bytes[..<length]) == result else { fatalError("the header depends on the bytes after it") }
        for count in 0..<length where ProxyProtocol.parse(bytes[..<count]) != .needMoreBytes {
            fatalError("a \(count)-byte prefix of a \(length)-byte header is not needMoreBytes")
        }
    case .needMoreBytes:
        guard size < ProxyProtocol.maximumLength else { fatalError("needMoreBytes after \(size) bytes") }
        for count in 0..<size where ProxyProtocol.parse(bytes[..<count]) != .needMoreBytes {
            fatalError("a \(count)-byte prefix of a possible header is \(ProxyProtocol.parse(bytes[..<count]))")
        }
    case .invalid:
        for more in continuations where ProxyProtocol.parse(bytes + more) != result {
            fatalError("\(more) after a refusal (\(result)) gave \(ProxyProtocol.parse(bytes + more))")
        }
    }
    return 0
}
