// Incremental HTTP/1.1 request parser (RFC 9112), a pure value in the style of swift-nio's WSParser:
// bytes go in with `append`, results come out of `next()`, and an explicit state says what is
// expected next. No I/O, no callbacks, so every split of the input can be tested and fuzzed.

import Glibc

/// Why a request was rejected. The connection is closed after answering with `status`.
package enum HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Malformed syntax or an ambiguous message (400); the text says what was wrong.
    case badRequest(String)
    /// The request line is longer than the limit (414).
    case uriTooLong(limit: Int)
    /// The header block (or the chunked trailers) is larger than the limit, in bytes (431).
    case headersTooLarge(limit: Int)
    /// More header (or trailer) fields than the limit (431).
    case tooManyHeaders(limit: Int)
    /// The body is larger than the limit, by `Content-Length` or while de-chunking (413).
    case bodyTooLarge(limit: Int)
    /// A body was sent without a length the server accepts (411). Not produced by the parser, which
    /// reads a request without a length as bodiless; for handlers that insist on a body.
    case lengthRequired
    /// A transfer coding other than `chunked` (501).
    case notImplemented(String)
    /// An HTTP version other than 1.0 and 1.1 (505); carries the version as written.
    case versionNotSupported(String)
    /// An `Expect` value other than `100-continue` (417); carries the value.
    case expectationFailed(String)

    /// The status to answer with.
    package var status: HTTPStatus { code.status }

    /// The error code of the JSON error body (it carries the status).
    package var code: ErrorCode {
        switch self {
        case .badRequest: .badRequest
        case .uriTooLong: .uriTooLong
        case .headersTooLarge, .tooManyHeaders: .headersTooLarge
        case .bodyTooLarge: .bodyTooLarge
        case .lengthRequired: .lengthRequired
        case .notImplemented: .notImplemented
        case .versionNotSupported: .versionNotSupported
        case .expectationFailed: .expectationFailed
        }
    }

    /// What was wrong, for the client's developer.
    package var message: String {
        switch self {
        case .badRequest(let reason):
            "Malformed request: \(reason)."
        case .uriTooLong(let limit):
            "The request line is longer than \(limit) bytes; shorten the URL or its query."
        case .headersTooLarge(let limit):
            "The request headers are larger than \(limit) bytes in total."
        case .tooManyHeaders(let limit):
            "The request has more than \(limit) header fields."
        case .bodyTooLarge(let limit):
            "The request body is larger than \(limit) bytes."
        case .lengthRequired:
            "The request needs a Content-Length header."
        case .notImplemented(let coding):
            "Transfer-Encoding '\(coding)' is not supported; send the body with Content-Length or chunked."
        case .versionNotSupported(let version):
            "'\(version)' is not supported; use HTTP/1.1 or HTTP/1.0."
        case .expectationFailed(let value):
            "Expect '\(value)' cannot be met; only '100-continue' is supported."
        }
    }

    /// "400 bad_request: Malformed request: ...".
    package var description: String { "\(status.code) \(code): \(message)" }

    /// The JSON error response to send before closing.
    package var response: HTTPResponse {
        .error(code, message: message)
    }
}

/// What `HTTPRequestParser.next()` found.
package enum HTTPParseResult: Sendable, Equatable {
    /// A complete request; call `next()` again for a pipelined one.
    case request(HTTPRequest)
    /// Nothing complete yet: append more bytes.
    case needMoreData
    /// The head of a request with `Expect: 100-continue` is complete and its body is still
    /// missing: write `HTTP/1.1 100 Continue\r\n\r\n`, then keep reading. Returned once per request.
    case expectContinue
    /// The input is not an acceptable request. The parser stays failed: answer
    /// `error.response` and close the connection.
    case failure(HTTPParseError)
}

/// Parses a stream of HTTP/1.x requests from one connection.
///
/// Feed bytes with `append` as they arrive, then call `next()` until it returns `.needMoreData`.
/// Work is linear in the input however it is split: line scans resume where they stopped, and
/// consumed bytes are dropped in batches.
package struct HTTPRequestParser: Sendable {
    /// What the parser expects next.
    private enum State: Sendable {
        /// A request line, possibly after a few empty lines.
        case requestLine
        /// A header field line or the empty line that ends the head.
        case headerLine
        /// A body of known length, taken in one piece once it has fully arrived.
        case fixedBody(length: Int)
        /// A chunk-size line (hex size, optional extensions).
        case chunkSizeLine
        /// Data of the current chunk.
        case chunkData(remaining: Int)
        /// The line end after a chunk's data.
        case chunkDataEnd
        /// A trailer field line or the empty line that ends the message.
        case trailerLine
        /// A request was rejected; nothing more is parsed.
        case failed(HTTPParseError)
    }

    /// Outcome of one parse step.
    private enum Step {
        case continueParsing
        case needMoreData
        case request(HTTPRequest)
        case failure(HTTPParseError)
    }

    /// What the head has said so far about the request being assembled.
    private struct PendingHead: Sendable {
        var method = HTTPMethod.GET
        var target = ""
        var path = ""
        var query: String?
        var version = HTTPVersion.http1_1
        var headers = HTTPHeaders()
        var headerCount = 0
        var contentLength: Int?
        var hasTransferEncoding = false
        var chunkedCount = 0
        var lastCodingIsChunked = false
        var unsupportedCoding: String?
        var hostCount = 0
        var connectionClose = false
        var connectionKeepAlive = false
        var expectsContinue = false
        var unsupportedExpectation: String?
    }

    private static let lineFeed = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")
    /// Consumed bytes are dropped once there are at least this many, or when they are at least
    /// half the buffer, so compaction stays linear overall.
    private static let compactionThreshold = 4096
    /// An empty buffer about to receive bytes keeps its storage up to this size; larger storage
    /// (after a big body) is freed.
    private static let retainedCapacity = 4096
    /// Content-Length digits beyond this are not accumulated further (the value is too large anyway).
    private static let contentLengthCap = Int.max / 16

    /// The limits this parser enforces.
    package let limits: HTTPParserLimits
    private var state = State.requestLine
    private var buffer: [UInt8] = []
    /// Index in `buffer` of the first unconsumed byte.
    private var readIndex = 0
    /// Bytes after `readIndex` already searched for a line feed, so a long line arriving in pieces
    /// is scanned once.
    private var scannedCount = 0
    private var head = PendingHead()
    private var body: [UInt8] = []
    private var leadingEmptyLines = 0
    /// Bytes of header (then trailer) lines seen for the current request.
    private var headerBytes = 0
    /// Set when a `100-continue` head is complete; cleared when `.expectContinue` is returned or
    /// the request completes without needing it.
    private var continuePending = false

    /// A parser with the given limits.
    package init(limits: HTTPParserLimits = HTTPParserLimits()) {
        self.limits = limits
    }

    /// Number of bytes received and not yet consumed by a returned request.
    package var bufferedByteCount: Int { buffer.count - readIndex }

    /// True when the parser holds part of a request (bytes or a started head), so the peer is
    /// mid-request: use the request timeout rather than the idle timeout, and treat EOF as abrupt.
    package var isMidRequest: Bool {
        switch state {
        case .requestLine: readIndex < buffer.count
        case .failed: false
        default: true
        }
    }

    /// True once a request has been rejected.
    package var hasFailed: Bool {
        if case .failed = state { return true }
        return false
    }

    /// Adds received bytes. Ignored once the parser has failed.
    package mutating func append<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        if case .failed = state { return }
        compactIfNeeded()
        buffer.append(contentsOf: bytes)
    }

    /// Adds received bytes straight from a read buffer. Ignored once the parser has failed.
    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if case .failed = state { return }
        compactIfNeeded()
        // Typed bytes copy with memcpy; appending a raw buffer goes element by element.
        buffer.append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self))
    }

    /// Removes and returns the bytes received after the last returned request. Call it right
    /// after a `.request` that switches protocols (WebSocket upgrade): these bytes belong to the
    /// new protocol. The parser is left empty and idle.
    package mutating func takeRemainingBytes() -> [UInt8] {
        let rest = Array(buffer[readIndex...])
        buffer = []
        readIndex = 0
        scannedCount = 0
        if case .failed = state { return rest }
        state = .requestLine
        head = PendingHead()
        body = []
        headerBytes = 0
        leadingEmptyLines = 0
        continuePending = false
        return rest
    }

    /// The next complete request, or what stands in the way of one.
    package mutating func next() -> HTTPParseResult {
        while true {
            switch parseStep() {
            case .continueParsing:
                continue
            case .needMoreData:
                if continuePending {
                    continuePending = false
                    return .expectContinue
                }
                return .needMoreData
            case .request(let request):
                compactIfNeeded(releasingStorage: true)
                return .request(request)
            case .failure(let error):
                state = .failed(error)
                // A failed parser reads nothing more: free what it holds.
                buffer = []
                readIndex = 0
                body = []
                return .failure(error)
            }
        }
    }

    // MARK: - Steps

    /// One step over the buffered bytes. The buffer is read through a local reference that ends
    /// with this call, so compacting afterwards does not copy it.
    private mutating func parseStep() -> Step {
        let bytes = buffer
        return bytes.withUnsafeBufferPointer { parseStep($0) }
    }

    private mutating func parseStep(_ bytes: UnsafeBufferPointer<UInt8>) -> Step {
        switch state {
        case .failed(let error):
            return .failure(error)

        case .requestLine:
            guard let line = findLine(bytes) else {
                // The line may still end in CR before its LF, hence + 1.
                if bytes.count - readIndex > limits.maxRequestLineBytes + 1 {
                    return .failure(.uriTooLong(limit: limits.maxRequestLineBytes))
                }
                return .needMoreData
            }
            if line.contentEnd == readIndex {
                leadingEmptyLines += 1
                if leadingEmptyLines > limits.maxLeadingEmptyLines {
                    return .failure(.badRequest("more than \(limits.maxLeadingEmptyLines) empty lines before the request line"))
                }
                readIndex = line.next
                return .continueParsing
            }
            if line.contentEnd - readIndex > limits.maxRequestLineBytes {
                return .failure(.uriTooLong(limit: limits.maxRequestLineBytes))
            }
            if let error = parseRequestLine(bytes[readIndex..<line.contentEnd]) {
                return .failure(error)
            }
            readIndex = line.next
            state = .headerLine
            return .continueParsing

        case .headerLine, .trailerLine:
            let isTrailer: Bool
            if case .trailerLine = state { isTrailer = true } else { isTrailer = false }
            guard let line = findLine(bytes) else {
                if headerBytes + (bytes.count - readIndex) > limits.maxHeaderBytes {
                    return .failure(.headersTooLarge(limit: limits.maxHeaderBytes))
                }
                return .needMoreData
            }
            headerBytes += line.next - readIndex
            if headerBytes > limits.maxHeaderBytes {
                return .failure(.headersTooLarge(limit: limits.maxHeaderBytes))
            }
            let content = bytes[readIndex..<line.contentEnd]
            readIndex = line.next
            if content.isEmpty {
                return isTrailer ? .request(completeRequest()) : headComplete(bytes)
            }
            head.headerCount += 1
            if head.headerCount > limits.maxHeaderCount {
                return .failure(.tooManyHeaders(limit: limits.maxHeaderCount))
            }
            if let error = parseFieldLine(content, store: !isTrailer) {
                return .failure(error)
            }
            return .continueParsing

        case .fixedBody(let length):
            guard bytes.count - readIndex >= length else {
                return .needMoreData
            }
            body = Array(bytes[readIndex..<(readIndex + length)])
            readIndex += length
            return .request(completeRequest())

        case .chunkSizeLine:
            guard let line = findLine(bytes) else {
                if bytes.count - readIndex > limits.maxChunkLineBytes + 1 {
                    return .failure(.badRequest("chunk-size line longer than \(limits.maxChunkLineBytes) bytes"))
                }
                return .needMoreData
            }
            if line.contentEnd - readIndex > limits.maxChunkLineBytes {
                return .failure(.badRequest("chunk-size line longer than \(limits.maxChunkLineBytes) bytes"))
            }
            let size: Int
            switch parseChunkSize(bytes[readIndex..<line.contentEnd]) {
            case .success(let value): size = value
            case .failure(let error): return .failure(error)
            }
            readIndex = line.next
            if size == 0 {
                // Trailers share the header budgets, counted afresh.
                headerBytes = 0
                head.headerCount = 0
                state = .trailerLine
            } else {
                state = .chunkData(remaining: size)
            }
            return .continueParsing

        case .chunkData(let remaining):
            let available = bytes.count - readIndex
            if available == 0 { return .needMoreData }
            let taken = min(available, remaining)
            body.append(contentsOf: bytes[readIndex..<(readIndex + taken)])
            readIndex += taken
            state = taken == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - taken)
            return .continueParsing

        case .chunkDataEnd:
            let available = bytes.count - readIndex
            if available == 0 { return .needMoreData }
            if bytes[readIndex] == Self.lineFeed {
                readIndex += 1
            } else if bytes[readIndex] == Self.carriageReturn {
                if available < 2 { return .needMoreData }
                guard bytes[readIndex + 1] == Self.lineFeed else {
                    return .failure(.badRequest("chunk data not followed by CRLF"))
                }
                readIndex += 2
            } else {
                return .failure(.badRequest("chunk data longer than its chunk size"))
            }
            state = .chunkSizeLine
            return .continueParsing
        }
    }

    /// Finds the end of the line starting at `readIndex`, resuming the previous search.
    /// `contentEnd` excludes the line end (CRLF, or a bare LF); `next` is the index after it.
    private mutating func findLine(_ bytes: UnsafeBufferPointer<UInt8>) -> (contentEnd: Int, next: Int)? {
        let from = readIndex + scannedCount
        let end = bytes.count
        // memchr scans a word or a vector at a time; header lines are mostly long enough to care.
        guard let base = bytes.baseAddress, from < end,
            let found = memchr(base + from, Int32(Self.lineFeed), end - from)
        else {
            scannedCount = end - readIndex
            return nil
        }
        let index = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
        scannedCount = 0
        let contentEnd = index > readIndex && bytes[index - 1] == Self.carriageReturn ? index - 1 : index
        return (contentEnd, index + 1)
    }

    // MARK: - Request line

    /// `method SP request-target SP HTTP-version`, exactly one space each (RFC 9112 §3).
    private mutating func parseRequestLine(_ line: Slice<UnsafeBufferPointer<UInt8>>) -> HTTPParseError? {
        let start = line.startIndex
        let end = line.endIndex
        var methodEnd = start
        while methodEnd < end && line[methodEnd] != UInt8(ascii: " ") {
            guard HTTPSyntax.isTokenChar(line[methodEnd]) else {
                return .badRequest("invalid character in the method of the request line")
            }
            methodEnd += 1
        }
        guard methodEnd > start, methodEnd < end else {
            return .badRequest("the request line must be 'METHOD target HTTP/1.1'")
        }
        let targetStart = methodEnd + 1
        var targetEnd = targetStart
        while targetEnd < end && line[targetEnd] != UInt8(ascii: " ") {
            // Visible ASCII only: no controls (bare CR included), no raw non-ASCII bytes.
            let byte = line[targetEnd]
            guard byte > 0x20 && byte < 0x7F else {
                return .badRequest("invalid character in the request target; percent-encode it")
            }
            targetEnd += 1
        }
        guard targetEnd > targetStart, targetEnd < end else {
            return .badRequest("the request line must be 'METHOD target HTTP/1.1'")
        }
        let version: HTTPVersion
        switch Self.parseVersion(line[(targetEnd + 1)..<end]) {
        case .success(let parsed): version = parsed
        case .failure(let error): return error
        }

        let method = Self.method(line[start..<methodEnd])
        let target = line[targetStart..<targetEnd]
        if target.first == UInt8(ascii: "*") {
            guard target.count == 1 else {
                return .badRequest("a request target must start with '/'")
            }
            guard method == .OPTIONS else {
                return .badRequest("the target '*' is only allowed with OPTIONS")
            }
        } else if target.first != UInt8(ascii: "/") && HTTPSyntax.absoluteFormAuthorityStart(target) == nil {
            return .badRequest("a request target must start with '/'")
        }

        head.method = method
        // Typical requests carry 5-12 fields: one allocation instead of growing 1, 2, 4, 8, 16.
        head.headers = HTTPHeaders(minimumCapacity: 12)
        head.target = String(decoding: UnsafeBufferPointer(rebasing: target), as: UTF8.self)
        let parts = HTTPSyntax.splitTarget(target)
        head.path = parts.path
        head.query = parts.query
        head.version = version
        return nil
    }

    private static func parseVersion(_ text: Slice<UnsafeBufferPointer<UInt8>>) -> Result<HTTPVersion, HTTPParseError> {
        let s = text.startIndex
        guard text.count == 8,
            text[s] == UInt8(ascii: "H"), text[s + 1] == UInt8(ascii: "T"), text[s + 2] == UInt8(ascii: "T"),
            text[s + 3] == UInt8(ascii: "P"), text[s + 4] == UInt8(ascii: "/"), text[s + 6] == UInt8(ascii: "."),
            let major = digitValue(text[s + 5]), let minor = digitValue(text[s + 7])
        else {
            return .failure(.badRequest("the request line must end with 'HTTP/1.1' or 'HTTP/1.0'"))
        }
        guard major == 1 && (minor == 0 || minor == 1) else {
            return .failure(.versionNotSupported("HTTP/\(major).\(minor)"))
        }
        return .success(HTTPVersion(major: major, minor: minor))
    }

    /// The shared static for common methods (no String is built for them), else a new method.
    private static func method(_ token: Slice<UnsafeBufferPointer<UInt8>>) -> HTTPMethod {
        switch token.count {
        case 3:
            if token.elementsEqual("GET".utf8) { return .GET }
            if token.elementsEqual("PUT".utf8) { return .PUT }
        case 4:
            if token.elementsEqual("POST".utf8) { return .POST }
            if token.elementsEqual("HEAD".utf8) { return .HEAD }
        case 5:
            if token.elementsEqual("PATCH".utf8) { return .PATCH }
        case 6:
            if token.elementsEqual("DELETE".utf8) { return .DELETE }
        case 7:
            if token.elementsEqual("OPTIONS".utf8) { return .OPTIONS }
        default:
            break
        }
        return HTTPMethod(rawValue: String(decoding: UnsafeBufferPointer(rebasing: token), as: UTF8.self))
    }

    @inline(__always)
    private static func digitValue(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }

    // MARK: - Header fields

    /// `name ":" OWS value OWS` (RFC 9112 §5). Trailer fields are checked the same way but dropped.
    private mutating func parseFieldLine(_ line: Slice<UnsafeBufferPointer<UInt8>>, store: Bool) -> HTTPParseError? {
        let start = line.startIndex
        let end = line.endIndex
        if HTTPSyntax.isWhitespace(line[start]) {
            return .badRequest("header line starts with whitespace (obsolete line folding is not accepted)")
        }
        var colon = start
        while colon < end && line[colon] != UInt8(ascii: ":") {
            guard HTTPSyntax.isTokenChar(line[colon]) else {
                return .badRequest("invalid character in a header name (no whitespace before ':')")
            }
            colon += 1
        }
        guard colon < end else {
            return .badRequest("header line without ':'")
        }
        guard colon > start else {
            return .badRequest("header line with an empty name")
        }
        var valueStart = colon + 1
        while valueStart < end && HTTPSyntax.isWhitespace(line[valueStart]) { valueStart += 1 }
        var valueEnd = end
        while valueEnd > valueStart && HTTPSyntax.isWhitespace(line[valueEnd - 1]) { valueEnd -= 1 }
        for index in valueStart..<valueEnd where !HTTPSyntax.isFieldValueChar(line[index]) {
            return .badRequest("control character in a header value")
        }
        guard store else { return nil }

        let name = line[start..<colon]
        let value = line[valueStart..<valueEnd]
        if let error = interpret(name: name, value: value) {
            return error
        }
        head.headers.add(
            name: String(decoding: UnsafeBufferPointer(rebasing: name), as: UTF8.self),
            value: String(decoding: UnsafeBufferPointer(rebasing: value), as: UTF8.self)
        )
        return nil
    }

    /// Records what the framing fields (Host, Content-Length, Transfer-Encoding, Connection, Expect) say.
    private mutating func interpret(
        name: Slice<UnsafeBufferPointer<UInt8>>,
        value: Slice<UnsafeBufferPointer<UInt8>>
    ) -> HTTPParseError? {
        var error: HTTPParseError?
        switch name.count {
        case 4 where HTTPSyntax.equalsLowercased(name, "host"):
            head.hostCount += 1

        case 14 where HTTPSyntax.equalsLowercased(name, "content-length"):
            // A list of identical values is one value (RFC 9110 §8.6); anything else is ambiguous.
            HTTPSyntax.forEachListElement(value) { digits in
                guard error == nil else { return }
                guard !digits.isEmpty, digits.allSatisfy({ Self.digitValue($0) != nil }) else {
                    error = .badRequest("Content-Length must be a decimal number")
                    return
                }
                var length = 0
                for digit in digits {
                    length = min(length * 10 + Int(digit - UInt8(ascii: "0")), Self.contentLengthCap)
                }
                if let previous = head.contentLength, previous != length {
                    error = .badRequest("conflicting Content-Length values")
                    return
                }
                head.contentLength = length
            }

        case 17 where HTTPSyntax.equalsLowercased(name, "transfer-encoding"):
            head.hasTransferEncoding = true
            HTTPSyntax.forEachListElement(value) { coding in
                guard error == nil, !coding.isEmpty else { return }
                if HTTPSyntax.equalsLowercased(coding, "chunked") {
                    head.chunkedCount += 1
                    head.lastCodingIsChunked = true
                } else {
                    // The coding name may carry parameters (`gzip;q=1`): report the name only.
                    let nameEnd = coding.firstIndex { !HTTPSyntax.isTokenChar($0) } ?? coding.endIndex
                    guard nameEnd > coding.startIndex else {
                        error = .badRequest("invalid Transfer-Encoding value")
                        return
                    }
                    head.unsupportedCoding = head.unsupportedCoding
                        ?? String(decoding: UnsafeBufferPointer(rebasing: coding[..<nameEnd]), as: UTF8.self)
                    head.lastCodingIsChunked = false
                }
            }

        case 10 where HTTPSyntax.equalsLowercased(name, "connection"):
            HTTPSyntax.forEachListElement(value) { token in
                if HTTPSyntax.equalsLowercased(token, "close") {
                    head.connectionClose = true
                } else if HTTPSyntax.equalsLowercased(token, "keep-alive") {
                    head.connectionKeepAlive = true
                }
            }

        case 6 where HTTPSyntax.equalsLowercased(name, "expect"):
            if HTTPSyntax.equalsLowercased(value, "100-continue") {
                head.expectsContinue = true
            } else if head.unsupportedExpectation == nil {
                head.unsupportedExpectation = String(decoding: UnsafeBufferPointer(rebasing: value), as: UTF8.self)
            }

        default:
            break
        }
        return error
    }

    // MARK: - Body framing

    /// Decides how the body is framed once the head is complete (RFC 9112 §6.3).
    private mutating func headComplete(_ bytes: UnsafeBufferPointer<UInt8>) -> Step {
        let isHTTP11 = head.version == .http1_1
        if isHTTP11 && head.hostCount == 0 {
            return .failure(.badRequest("HTTP/1.1 requests need a Host header"))
        }
        if head.hostCount > 1 {
            return .failure(.badRequest("more than one Host header"))
        }

        var chunked = false
        if head.hasTransferEncoding {
            // Both framings at once is the classic request-smuggling vector: refuse, don't guess.
            if head.contentLength != nil {
                return .failure(.badRequest("both Content-Length and Transfer-Encoding are present"))
            }
            if !isHTTP11 {
                return .failure(.badRequest("Transfer-Encoding is not allowed in HTTP/1.0 requests"))
            }
            if let coding = head.unsupportedCoding {
                return .failure(.notImplemented(coding))
            }
            guard head.chunkedCount == 1 && head.lastCodingIsChunked else {
                return .failure(.badRequest("Transfer-Encoding must be 'chunked' exactly once"))
            }
            chunked = true
        }
        let contentLength = head.contentLength ?? 0
        if contentLength > limits.maxBodyBytes {
            return .failure(.bodyTooLarge(limit: limits.maxBodyBytes))
        }
        // HTTP/1.0 clients cannot know 100 Continue, so their Expect is ignored (RFC 9110 §10.1.1).
        if isHTTP11 {
            if let expectation = head.unsupportedExpectation {
                return .failure(.expectationFailed(expectation))
            }
            continuePending = head.expectsContinue && (chunked || contentLength > 0)
        }

        if chunked {
            state = .chunkSizeLine
            return .continueParsing
        }
        if contentLength > 0 {
            state = .fixedBody(length: contentLength)
            return .continueParsing
        }
        return .request(completeRequest())
    }

    /// `1*HEXDIG [ BWS ";" extensions ]`; extensions are ignored but must be printable.
    private func parseChunkSize(_ line: Slice<UnsafeBufferPointer<UInt8>>) -> Result<Int, HTTPParseError> {
        var index = line.startIndex
        var size = 0
        while index < line.endIndex, let digit = PercentDecoding.hexValue(line[index]) {
            // Checked before it can overflow, even with a huge configured limit.
            guard size <= (Int.max - 15) / 16 else {
                return .failure(.bodyTooLarge(limit: limits.maxBodyBytes))
            }
            size = size * 16 + Int(digit)
            if size > limits.maxBodyBytes - body.count {
                return .failure(.bodyTooLarge(limit: limits.maxBodyBytes))
            }
            index += 1
        }
        guard index > line.startIndex else {
            return .failure(.badRequest("chunk size is not a hexadecimal number"))
        }
        while index < line.endIndex && HTTPSyntax.isWhitespace(line[index]) { index += 1 }
        if index < line.endIndex {
            guard line[index] == UInt8(ascii: ";") else {
                return .failure(.badRequest("chunk size is not a hexadecimal number"))
            }
            for byte in line[index...] where !HTTPSyntax.isFieldValueChar(byte) {
                return .failure(.badRequest("control character in a chunk extension"))
            }
        }
        return .success(size)
    }

    /// Builds the request and resets for the next one on the connection.
    private mutating func completeRequest() -> HTTPRequest {
        let finished = head
        let requestBody = body
        let keepAlive =
            !finished.connectionClose && (finished.version == .http1_1 || finished.connectionKeepAlive)
        head = PendingHead()
        body = []
        state = .requestLine
        headerBytes = 0
        leadingEmptyLines = 0
        continuePending = false
        return HTTPRequest(
            method: finished.method,
            target: finished.target,
            path: finished.path,
            query: finished.query,
            version: finished.version,
            headers: finished.headers,
            body: requestBody,
            keepAlive: keepAlive
        )
    }

    /// Drops consumed bytes when that is cheap relative to the work already done.
    /// - Parameter releasingStorage: free the storage of a fully consumed buffer, so a connection
    ///   idling between requests holds no buffer; otherwise (about to append) keep small storage.
    private mutating func compactIfNeeded(releasingStorage: Bool = false) {
        guard readIndex > 0 else { return }
        if readIndex == buffer.count {
            if releasingStorage || buffer.capacity > Self.retainedCapacity {
                buffer = []
            } else {
                buffer.removeAll(keepingCapacity: true)
            }
            readIndex = 0
        } else if readIndex >= Self.compactionThreshold || readIndex * 2 >= buffer.count {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
    }
}
