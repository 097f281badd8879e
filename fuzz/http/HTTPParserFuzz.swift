// libFuzzer target for HTTPRequestParser (and the router and request accessors it feeds).
// Each input is parsed whole, split in two at a position taken from its first byte, and in small
// pieces; all three must give the same requests and the same final error. Built by
// fuzz/run-http-fuzz.sh with -sanitize=fuzzer,address, so memory errors are caught as well.

@testable import HTTP

/// Small limits so that inputs of a few hundred bytes reach every limit path.
private let smallLimits = HTTPParserLimits(
    maxRequestLineBytes: 64,
    maxHeaderBytes: 160,
    maxHeaderCount: 4,
    maxBodyBytes: 48,
    maxChunkLineBytes: 16,
    maxLeadingEmptyLines: 2
)

/// A router with static, parameter and overlapping routes, to fuzz matching and decoding.
private let router: Router<Int> = {
    var router = Router<Int>()
    router.add(.GET, "/", 0)
    router.add(.GET, "/api/users/:id", 1)
    router.add(.GET, "/api/users/me", 2)
    router.add(.POST, "/api/conversations/:cid/messages", 3)
    router.add(.GET, "/a/:x/b/:y", 4)
    router.add(.DELETE, "/a/static/b/:y", 5)
    return router
}()

/// Everything one feeding produced: requests in order, and the failure that ended it, if any.
private struct Outcome: Equatable {
    var requests: [HTTPRequest] = []
    var failure: HTTPParseError?
}

private func run(_ chunks: [UnsafeRawBufferPointer], limits: HTTPParserLimits) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var outcome = Outcome()
    for chunk in chunks {
        parser.append(chunk)
        draining: while true {
            switch parser.next() {
            case .needMoreData:
                break draining
            case .expectContinue:
                // Depends on how the bytes were split, so it is not compared.
                continue
            case .request(let request):
                check(request, limits: limits)
                outcome.requests.append(request)
            case .failure(let error):
                outcome.failure = error
                // A failed parser must stay failed.
                guard parser.next() == .failure(error) else { fatalError("parser recovered from \(error)") }
                return outcome
            }
        }
    }
    return outcome
}

/// Invariants of every parsed request, and a pass through the code that consumes it.
private func check(_ request: HTTPRequest, limits: HTTPParserLimits) {
    guard request.body.count <= limits.maxBodyBytes else { fatalError("body over the limit") }
    guard request.headers.count <= limits.maxHeaderCount else { fatalError("too many headers") }
    guard request.target.utf8.count <= limits.maxRequestLineBytes else { fatalError("target over the limit") }
    guard request.path.utf8.first == UInt8(ascii: "/") || request.path == "*" else {
        fatalError("path '\(request.path)' is not origin-form")
    }
    for field in request.headers {
        for byte in field.value.utf8 where byte < 0x20 && byte != 0x09 {
            fatalError("control character in a header value")
        }
    }
    _ = request.queryParameter("a")
    _ = request.pathSegments
    switch router.match(request.method, path: request.path) {
    case .found(_, let parameters):
        for parameter in parameters { _ = parameter.value.utf8.count }
    case .methodNotAllowed(let allowed):
        guard !allowed.isEmpty else { fatalError("405 without allowed methods") }
    case .notFound:
        break
    }
    var response = HTTPResponse.json(.ok, request.body)
    response.headers.add(name: "X-Echo", value: request.headers["x"] ?? request.path)
    let bytes = response.serialize(keepAlive: request.keepAlive, date: nil)
    // Header section = everything before the first empty line: it may hold no bare CR or LF.
    var lineBreaks = 0
    var index = 0
    while index + 3 < bytes.count
        && !(bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10)
    {
        if bytes[index] == 10 { lineBreaks += 1 }
        index += 1
    }
    guard lineBreaks <= 5 else { fatalError("response splitting") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    for limits in [HTTPParserLimits(), smallLimits] {
        let whole = run([input], limits: limits)
        guard let first = input.first else { continue }

        let split = Int(first) % (size + 1)
        let halves = run([UnsafeRawBufferPointer(rebasing: input[..<split]),
                          UnsafeRawBufferPointer(rebasing: input[split...])], limits: limits)
        guard halves == whole else { fatalError("split at \(split) changed the result") }

        let pieceSize = Int(first % 7) + 1
        var pieces: [UnsafeRawBufferPointer] = []
        var start = 0
        while start < size {
            let end = min(start + pieceSize, size)
            pieces.append(UnsafeRawBufferPointer(rebasing: input[start..<end]))
            start = end
        }
        let small = run(pieces, limits: limits)
        guard small == whole else { fatalError("pieces of \(pieceSize) changed the result") }
    }
    return 0
}
