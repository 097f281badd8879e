// Value types of HTTP/1.1 messages (RFC 9110, RFC 9112). Pure: no I/O, no Foundation.

/// An HTTP request method. Methods are case-sensitive tokens (RFC 9110 §9.1), so `get` is not `GET`.
package struct HTTPMethod: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The method token exactly as it appears on the request line.
    package let rawValue: String

    /// Wraps a method token; the parser has already checked that it is a token.
    package init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// `GET`: read a resource.
    package static let GET = HTTPMethod(rawValue: "GET")
    /// `HEAD`: like `GET` without the body.
    package static let HEAD = HTTPMethod(rawValue: "HEAD")
    /// `POST`: create or submit.
    package static let POST = HTTPMethod(rawValue: "POST")
    /// `PUT`: replace.
    package static let PUT = HTTPMethod(rawValue: "PUT")
    /// `PATCH`: partial update.
    package static let PATCH = HTTPMethod(rawValue: "PATCH")
    /// `DELETE`: remove.
    package static let DELETE = HTTPMethod(rawValue: "DELETE")
    /// `OPTIONS`: ask what the server allows (also the only method allowed with target `*`).
    package static let OPTIONS = HTTPMethod(rawValue: "OPTIONS")

    /// Orders methods by name, so `Allow` headers come out in a stable order.
    package static func < (lhs: HTTPMethod, rhs: HTTPMethod) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    /// The method token.
    package var description: String { rawValue }
}

/// An HTTP response status: a three-digit code and its reason phrase.
package struct HTTPStatus: Sendable, Equatable, CustomStringConvertible {
    /// The status code, 100...599.
    package let code: Int
    /// The reason phrase written on the status line (informational only for clients).
    package let reasonPhrase: String

    /// A status with an explicit reason phrase.
    package init(code: Int, reasonPhrase: String) {
        self.code = code
        self.reasonPhrase = reasonPhrase
    }

    /// `100 Continue`: the client may send the body it announced with `Expect: 100-continue`.
    package static let `continue` = HTTPStatus(code: 100, reasonPhrase: "Continue")
    /// `101 Switching Protocols`: answer to a WebSocket upgrade.
    package static let switchingProtocols = HTTPStatus(code: 101, reasonPhrase: "Switching Protocols")
    /// `200 OK`.
    package static let ok = HTTPStatus(code: 200, reasonPhrase: "OK")
    /// `201 Created`.
    package static let created = HTTPStatus(code: 201, reasonPhrase: "Created")
    /// `204 No Content`: sent without a body and without `Content-Length`.
    package static let noContent = HTTPStatus(code: 204, reasonPhrase: "No Content")
    /// `304 Not Modified`: sent without a body and without `Content-Length`.
    package static let notModified = HTTPStatus(code: 304, reasonPhrase: "Not Modified")
    /// `400 Bad Request`.
    package static let badRequest = HTTPStatus(code: 400, reasonPhrase: "Bad Request")
    /// `401 Unauthorized`.
    package static let unauthorized = HTTPStatus(code: 401, reasonPhrase: "Unauthorized")
    /// `403 Forbidden`.
    package static let forbidden = HTTPStatus(code: 403, reasonPhrase: "Forbidden")
    /// `404 Not Found`.
    package static let notFound = HTTPStatus(code: 404, reasonPhrase: "Not Found")
    /// `405 Method Not Allowed`: send an `Allow` header with it.
    package static let methodNotAllowed = HTTPStatus(code: 405, reasonPhrase: "Method Not Allowed")
    /// `408 Request Timeout`: the request did not arrive in time.
    package static let requestTimeout = HTTPStatus(code: 408, reasonPhrase: "Request Timeout")
    /// `409 Conflict`.
    package static let conflict = HTTPStatus(code: 409, reasonPhrase: "Conflict")
    /// `411 Length Required`.
    package static let lengthRequired = HTTPStatus(code: 411, reasonPhrase: "Length Required")
    /// `413 Content Too Large`.
    package static let contentTooLarge = HTTPStatus(code: 413, reasonPhrase: "Content Too Large")
    /// `414 URI Too Long`.
    package static let uriTooLong = HTTPStatus(code: 414, reasonPhrase: "URI Too Long")
    /// `415 Unsupported Media Type`.
    package static let unsupportedMediaType = HTTPStatus(code: 415, reasonPhrase: "Unsupported Media Type")
    /// `417 Expectation Failed`.
    package static let expectationFailed = HTTPStatus(code: 417, reasonPhrase: "Expectation Failed")
    /// `422 Unprocessable Content`.
    package static let unprocessableContent = HTTPStatus(code: 422, reasonPhrase: "Unprocessable Content")
    /// `426 Upgrade Required`.
    package static let upgradeRequired = HTTPStatus(code: 426, reasonPhrase: "Upgrade Required")
    /// `429 Too Many Requests`: send `Retry-After` with it.
    package static let tooManyRequests = HTTPStatus(code: 429, reasonPhrase: "Too Many Requests")
    /// `431 Request Header Fields Too Large`.
    package static let requestHeaderFieldsTooLarge = HTTPStatus(code: 431, reasonPhrase: "Request Header Fields Too Large")
    /// `500 Internal Server Error`.
    package static let internalServerError = HTTPStatus(code: 500, reasonPhrase: "Internal Server Error")
    /// `501 Not Implemented`.
    package static let notImplemented = HTTPStatus(code: 501, reasonPhrase: "Not Implemented")
    /// `503 Service Unavailable`.
    package static let serviceUnavailable = HTTPStatus(code: 503, reasonPhrase: "Service Unavailable")
    /// `505 HTTP Version Not Supported`.
    package static let httpVersionNotSupported = HTTPStatus(code: 505, reasonPhrase: "HTTP Version Not Supported")

    /// True for statuses whose responses never carry a body or `Content-Length` (RFC 9110 §8.6).
    package var forbidsContentLength: Bool {
        (100..<200).contains(code) || code == 204 || code == 304
    }

    /// "404 Not Found".
    package var description: String { "\(code) \(reasonPhrase)" }
}

/// The protocol version of a request line, `HTTP/<major>.<minor>`.
package struct HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    /// Major version digit.
    package var major: Int
    /// Minor version digit.
    package var minor: Int

    /// A version from its two digits.
    package init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// HTTP/1.0: connections close after each response unless the client asks for keep-alive.
    package static let http1_0 = HTTPVersion(major: 1, minor: 0)
    /// HTTP/1.1: connections persist unless either side says `Connection: close`.
    package static let http1_1 = HTTPVersion(major: 1, minor: 1)

    /// "HTTP/1.1".
    package var description: String { "HTTP/\(major).\(minor)" }
}

/// Header fields in arrival order. Names keep their original case; every lookup ignores ASCII case
/// (RFC 9110 §5.1). Repeated fields stay separate entries.
package struct HTTPHeaders: Sendable, Sequence, Equatable, ExpressibleByDictionaryLiteral {
    /// One field as it was received or added.
    package typealias Element = (name: String, value: String)

    private var fields: [Element]

    /// No fields.
    package init() {
        fields = []
    }

    /// No fields, with room for `minimumCapacity` without reallocating.
    package init(minimumCapacity: Int) {
        fields = []
        fields.reserveCapacity(minimumCapacity)
    }

    /// Fields in the given order.
    package init(_ fields: [(String, String)]) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    /// `["Content-Type": "application/json"]`; order is the literal's order.
    package init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// Number of fields, counting repeats.
    package var count: Int { fields.count }

    /// True when there are no fields.
    package var isEmpty: Bool { fields.isEmpty }

    /// Iterates the fields in order.
    package func makeIterator() -> IndexingIterator<[Element]> {
        fields.makeIterator()
    }

    /// The value of the first field called `name`, ignoring case; nil when absent.
    package subscript(_ name: String) -> String? {
        for field in fields where HTTPSyntax.equalsIgnoringASCIICase(field.name, name) {
            return field.value
        }
        return nil
    }

    /// The values of every field called `name`, in order.
    package func values(_ name: String) -> [String] {
        fields.compactMap { HTTPSyntax.equalsIgnoringASCIICase($0.name, name) ? $0.value : nil }
    }

    /// True when a field called `name` is present.
    package func contains(_ name: String) -> Bool {
        fields.contains { HTTPSyntax.equalsIgnoringASCIICase($0.name, name) }
    }

    /// True when some field called `name` lists `token` among its comma-separated elements, ignoring
    /// case: `Connection: keep-alive, Upgrade` contains `upgrade`.
    package func containsToken(_ token: String, inField name: String) -> Bool {
        for field in fields where HTTPSyntax.equalsIgnoringASCIICase(field.name, name) {
            for element in field.value.utf8.split(separator: UInt8(ascii: ",")) {
                let trimmed = HTTPSyntax.trimmingWhitespace(element)
                if HTTPSyntax.equalsIgnoringASCIICase(trimmed, token.utf8) {
                    return true
                }
            }
        }
        return false
    }

    /// Appends a field, keeping any existing ones of the same name.
    package mutating func add(name: String, value: String) {
        fields.append((name: name, value: value))
    }

    /// Replaces the first field called `name` (and drops later repeats), or appends it.
    /// `replaceOrAdd` for every field of `other`, in order.
    package mutating func replaceOrAdd(contentsOf other: HTTPHeaders) {
        for field in other { replaceOrAdd(name: field.name, value: field.value) }
    }

    package mutating func replaceOrAdd(name: String, value: String) {
        if let index = fields.firstIndex(where: { HTTPSyntax.equalsIgnoringASCIICase($0.name, name) }) {
            fields[index] = (name: name, value: value)
            var later = index + 1
            while later < fields.count {
                if HTTPSyntax.equalsIgnoringASCIICase(fields[later].name, name) {
                    fields.remove(at: later)
                } else {
                    later += 1
                }
            }
        } else {
            fields.append((name: name, value: value))
        }
    }

    /// Removes every field called `name`.
    package mutating func remove(name: String) {
        fields.removeAll { HTTPSyntax.equalsIgnoringASCIICase($0.name, name) }
    }

    /// Same fields in the same order; names compare ignoring case, values exactly.
    package static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        guard lhs.fields.count == rhs.fields.count else { return false }
        for (left, right) in zip(lhs.fields, rhs.fields) {
            guard HTTPSyntax.equalsIgnoringASCIICase(left.name, right.name), left.value == right.value else {
                return false
            }
        }
        return true
    }
}

/// A parsed request, as handlers see it.
package struct HTTPRequest: Sendable, Equatable {
    /// The method token.
    package var method: HTTPMethod
    /// The request-target exactly as received (origin-form, absolute-form or `*`).
    package var target: String
    /// The path part of the target, still percent-encoded, without the query: `/api/users/42`.
    /// An absolute-form target (`http://host/x?y`) is reduced to its path (`/x`); `*` stays `*`.
    package var path: String
    /// The query after `?`, still encoded; nil when the target has no `?`.
    package var query: String?
    /// The protocol version of the request line.
    package var version: HTTPVersion
    /// Header fields in arrival order.
    package var headers: HTTPHeaders
    /// The body, de-chunked; empty when the request had none.
    package var body: [UInt8]
    /// Whether the connection may carry another request after this one: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    package var keepAlive: Bool

    /// A request whose path, query and keep-alive flag are derived from `target`, `version` and
    /// `headers` the way the parser derives them. Meant for tests and internal dispatch.
    package init(
        method: HTTPMethod,
        target: String,
        version: HTTPVersion = .http1_1,
        headers: HTTPHeaders = HTTPHeaders(),
        body: [UInt8] = []
    ) {
        let parts = HTTPSyntax.splitTarget(Array(target.utf8))
        self.init(
            method: method,
            target: target,
            path: parts.path,
            query: parts.query,
            version: version,
            headers: headers,
            body: body,
            keepAlive: HTTPSyntax.keepAlive(
                version: version,
                connectionValues: headers.values("Connection")
            )
        )
    }

    /// Every field given explicitly (used by the parser, which has computed them already).
    package init(
        method: HTTPMethod,
        target: String,
        path: String,
        query: String?,
        version: HTTPVersion,
        headers: HTTPHeaders,
        body: [UInt8],
        keepAlive: Bool
    ) {
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }

    /// The first query parameter called `name` (compared after decoding), percent-decoded with `+`
    /// read as a space; `""` for a bare `?flag`, nil when absent.
    package func queryParameter(_ name: String) -> String? {
        guard let query else { return nil }
        for pair in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let key: Substring.UTF8View
            let value: Substring.UTF8View
            if let equals = pair.firstIndex(of: UInt8(ascii: "=")) {
                key = pair[pair.startIndex..<equals]
                value = pair[pair.index(after: equals)...]
            } else {
                key = pair
                value = pair[pair.endIndex...]
            }
            if PercentDecoding.decode(key, plusAsSpace: true) == name {
                return PercentDecoding.decode(value, plusAsSpace: true)
            }
        }
        return nil
    }

    /// The path split at `/`, each segment percent-decoded (`+` stays `+`). `/` gives `[]`, a trailing
    /// slash adds no segment, interior empty segments (`/a//b`) are kept as `""`. `*` gives `["*"]`.
    package var pathSegments: [String] {
        var utf8 = path.utf8[...]
        if utf8.first == UInt8(ascii: "/") { utf8 = utf8.dropFirst() }
        if utf8.last == UInt8(ascii: "/") { utf8 = utf8.dropLast() }
        if utf8.isEmpty { return [] }
        return utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map {
            PercentDecoding.decode($0, plusAsSpace: false)
        }
    }
}

/// A response before serialization.
package struct HTTPResponse: Sendable, Equatable {
    /// Status line code and reason.
    package var status: HTTPStatus
    /// Header fields; `Content-Length`, `Connection` (when closing) and `Date` are added by
    /// `serialize`, so handlers do not set them.
    package var headers: HTTPHeaders
    /// The body bytes.
    package var body: [UInt8]

    /// A response with the given parts.
    package init(status: HTTPStatus, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response with `Content-Type: application/json; charset=utf-8` and the given encoded body.
    package static func json(_ status: HTTPStatus, _ body: [UInt8]) -> HTTPResponse {
        HTTPResponse(
            status: status,
            headers: ["Content-Type": "application/json; charset=utf-8"],
            body: body
        )
    }

    /// A `text/plain; charset=utf-8` response.
    package static func text(_ status: HTTPStatus, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(text.utf8))
    }

    /// The house error shape `{"error":{"code":"...","message":"..."}}` with the given status.
    package static func error(_ status: HTTPStatus, code: String, message: String) -> HTTPResponse {
        var body: [UInt8] = []
        body.reserveCapacity(32 + code.utf8.count + message.utf8.count)
        body.append(contentsOf: #"{"error":{"code":"#.utf8)
        HTTPSyntax.appendJSONString(code, to: &body)
        body.append(contentsOf: #","message":"#.utf8)
        HTTPSyntax.appendJSONString(message, to: &body)
        body.append(contentsOf: "}}".utf8)
        var response = HTTPResponse.json(status, body)
        // Every 503 says when to come back (one second unless the caller knows better and
        // replaces it: an overload's or a limit's own wait).
        if status == .serviceUnavailable { response.headers.replaceOrAdd(name: "Retry-After", value: "1") }
        return response
    }

    /// The bytes to write: status line (always `HTTP/1.1`, RFC 9110 §6.2), the headers, then
    /// `Content-Length` (always, even 0, except for 1xx/204/304 whose body is dropped),
    /// `Connection: close` when `keepAlive` is false (or `Connection: keep-alive` when keeping an
    /// HTTP/1.0 connection open, which such clients need to see), `Date` when given, then the body.
    ///
    /// Any `Content-Length` in `headers` is replaced by the real body length; `Connection` fields
    /// from `headers` are kept (a 101 upgrade sends `Connection: Upgrade`). CR and LF inside names
    /// or values are written as spaces so a value built from user input cannot split the response.
    /// - Parameters:
    ///   - includeBody: false for a `HEAD` request: the headers describe the body, which is omitted.
    ///   - requestVersion: the request's version, to decide whether to say `keep-alive` explicitly.
    package func serialize(
        keepAlive: Bool,
        date: String?,
        includeBody: Bool = true,
        requestVersion: HTTPVersion = .http1_1
    ) -> [UInt8] {
        let bodyAllowed = !status.forbidsContentLength
        var out: [UInt8] = []
        var estimate = 64 + (bodyAllowed && includeBody ? body.count : 0)
        for field in headers {
            estimate += field.name.utf8.count + field.value.utf8.count + 4
        }
        out.reserveCapacity(estimate)

        out.append(contentsOf: "HTTP/1.1 ".utf8)
        HTTPSyntax.appendDecimal(status.code, to: &out)
        out.append(UInt8(ascii: " "))
        HTTPSyntax.appendSanitized(status.reasonPhrase, to: &out)
        out.append(contentsOf: HTTPSyntax.crlf)

        var hasConnectionField = false
        for field in headers {
            if HTTPSyntax.equalsIgnoringASCIICase(field.name, "Content-Length") { continue }
            if HTTPSyntax.equalsIgnoringASCIICase(field.name, "Connection") {
                hasConnectionField = true
                // A handler's own Connection field must not contradict a decision to close.
                if !keepAlive { continue }
            }
            HTTPSyntax.appendSanitized(field.name, to: &out)
            out.append(contentsOf: ": ".utf8)
            HTTPSyntax.appendSanitized(field.value, to: &out)
            out.append(contentsOf: HTTPSyntax.crlf)
        }
        if bodyAllowed {
            out.append(contentsOf: "Content-Length: ".utf8)
            HTTPSyntax.appendDecimal(body.count, to: &out)
            out.append(contentsOf: HTTPSyntax.crlf)
        }
        if !keepAlive {
            out.append(contentsOf: "Connection: close\r\n".utf8)
        } else if requestVersion == .http1_0 && !hasConnectionField {
            out.append(contentsOf: "Connection: keep-alive\r\n".utf8)
        }
        if let date {
            out.append(contentsOf: "Date: ".utf8)
            HTTPSyntax.appendSanitized(date, to: &out)
            out.append(contentsOf: HTTPSyntax.crlf)
        }
        out.append(contentsOf: HTTPSyntax.crlf)
        if bodyAllowed && includeBody {
            out.append(contentsOf: body)
        }
        return out
    }
}

/// Byte-level helpers shared by the HTTP types, parser and router.
enum HTTPSyntax {
    static let crlf: [UInt8] = [0x0D, 0x0A]

    /// `tchar` of RFC 9110 §5.6.2 (the characters of method names and header field names) as a
    /// bitmap of the 128 ASCII codes: one shift and mask per byte instead of a chain of compares.
    /// Bits for ASCII 0-63: ``!#$%&'*+-.`` and digits.
    private static let tokenMaskLow: UInt64 = 0x03FF_6CFA_0000_0000
    /// Bits for ASCII 64-127: letters and ``^_`|~``.
    private static let tokenMaskHigh: UInt64 = 0x57FF_FFFF_C7FF_FFFE

    /// True for `tchar`.
    @inline(__always)
    static func isTokenChar(_ byte: UInt8) -> Bool {
        if byte < 64 { return (tokenMaskLow >> UInt64(byte)) & 1 == 1 }
        if byte < 128 { return (tokenMaskHigh >> UInt64(byte - 64)) & 1 == 1 }
        return false
    }

    /// Characters allowed in a field value: HTAB, SP, visible ASCII and obs-text (RFC 9110 §5.5).
    @inline(__always)
    static func isFieldValueChar(_ byte: UInt8) -> Bool {
        byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
    }

    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09
    }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &+ ((byte >= 0x41 && byte <= 0x5A) ? 0x20 : 0)
    }

    static func equalsIgnoringASCIICase<A: Collection<UInt8>, B: Collection<UInt8>>(_ lhs: A, _ rhs: B) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (left, right) in zip(lhs, rhs) where lowercased(left) != lowercased(right) {
            return false
        }
        return true
    }

    static func equalsIgnoringASCIICase(_ lhs: String, _ rhs: String) -> Bool {
        guard lhs.utf8.count == rhs.utf8.count else { return false }
        if lhs == rhs { return true }
        // Native strings expose contiguous UTF-8, which compares without iterator overhead.
        let contiguous = lhs.utf8.withContiguousStorageIfAvailable { left in
            rhs.utf8.withContiguousStorageIfAvailable { right in
                equalsIgnoringASCIICase(left[...], right[...])
            }
        }
        return contiguous.flatMap { $0 } ?? equalsIgnoringASCIICase(lhs.utf8, rhs.utf8)
    }

    /// Case-insensitive comparison of bytes with an all-lowercase ASCII literal.
    @inline(__always)
    static func equalsLowercased(_ bytes: Slice<UnsafeBufferPointer<UInt8>>, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        let expected = literal.utf8Start
        var offset = 0
        for byte in bytes {
            if lowercased(byte) != expected[offset] { return false }
            offset += 1
        }
        return true
    }

    static func equalsIgnoringASCIICase(_ lhs: Slice<UnsafeBufferPointer<UInt8>>, _ rhs: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var right = rhs.startIndex
        for byte in lhs {
            if lowercased(byte) != lowercased(rhs[right]) { return false }
            right += 1
        }
        return true
    }

    /// Calls `body` with each element of a comma-separated list (RFC 9110 §5.6.1), trimmed of
    /// whitespace; empty elements are passed too. Allocates nothing.
    @inline(__always)
    static func forEachListElement(
        _ value: Slice<UnsafeBufferPointer<UInt8>>,
        _ body: (Slice<UnsafeBufferPointer<UInt8>>) -> Void
    ) {
        var start = value.startIndex
        while true {
            var end = start
            while end < value.endIndex && value[end] != UInt8(ascii: ",") { end += 1 }
            var first = start
            var last = end
            while first < last && isWhitespace(value[first]) { first += 1 }
            while last > first && isWhitespace(value[last - 1]) { last -= 1 }
            body(value[first..<last])
            if end == value.endIndex { return }
            start = end + 1
        }
    }

    /// Drops leading and trailing SP/HTAB.
    static func trimmingWhitespace<C: BidirectionalCollection<UInt8>>(_ bytes: C) -> C.SubSequence {
        var slice = bytes[...]
        while let first = slice.first, isWhitespace(first) { slice = slice.dropFirst() }
        while let last = slice.last, isWhitespace(last) { slice = slice.dropLast() }
        return slice
    }

    /// Keep-alive rule of RFC 9112 §9.3 from the version and every `Connection` value.
    static func keepAlive(version: HTTPVersion, connectionValues: [String]) -> Bool {
        var close = false
        var keepAlive = false
        for value in connectionValues {
            for element in value.utf8.split(separator: UInt8(ascii: ",")) {
                let token = trimmingWhitespace(element)
                if equalsIgnoringASCIICase(token, "close".utf8) {
                    close = true
                } else if equalsIgnoringASCIICase(token, "keep-alive".utf8) {
                    keepAlive = true
                }
            }
        }
        if close { return false }
        if version == .http1_1 { return true }
        return keepAlive
    }

    /// Splits a request-target into the encoded path and the query. An absolute-form target
    /// (`scheme://authority/path?query`) is reduced to its path, `/` when the path is empty.
    static func splitTarget(_ target: [UInt8]) -> (path: String, query: String?) {
        target.withUnsafeBufferPointer { splitTarget($0[...]) }
    }

    static func splitTarget(_ target: Slice<UnsafeBufferPointer<UInt8>>) -> (path: String, query: String?) {
        var start = target.startIndex
        let end = target.endIndex
        var prefixPath = false
        if target.first != UInt8(ascii: "/"), target.first != UInt8(ascii: "*"),
            let authorityStart = absoluteFormAuthorityStart(target)
        {
            // Skip the authority: the path starts at the first "/" or "?" after it.
            start = authorityStart
            while start < end && target[start] != UInt8(ascii: "/") && target[start] != UInt8(ascii: "?") {
                start += 1
            }
            prefixPath = start == end || target[start] == UInt8(ascii: "?")
        }
        var queryStart = start
        while queryStart < end && target[queryStart] != UInt8(ascii: "?") { queryStart += 1 }
        var path = prefixPath ? "/" : ""
        path += String(decoding: UnsafeBufferPointer(rebasing: target[start..<queryStart]), as: UTF8.self)
        let query: String? =
            queryStart < end
            ? String(decoding: UnsafeBufferPointer(rebasing: target[(queryStart + 1)..<end]), as: UTF8.self)
            : nil
        return (path, query)
    }

    /// For `http://host/...` or `https://host/...` (scheme case-insensitive), the index just after
    /// `://`; nil for anything else.
    static func absoluteFormAuthorityStart(_ target: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
        for scheme in ["http://", "https://"] {
            let count = scheme.utf8.count
            if target.count >= count,
                equalsIgnoringASCIICase(target[target.startIndex..<(target.startIndex + count)], scheme.utf8)
            {
                return target.startIndex + count
            }
        }
        return nil
    }

    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        let start = out.count
        var remaining = value.magnitude
        repeat {
            out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: remaining % 10))
            remaining /= 10
        } while remaining > 0
        out[start...].reverse()
    }

    /// Appends the UTF-8 of `text`, writing CR, LF and NUL as spaces (response-splitting guard).
    static func appendSanitized(_ text: String, to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: text.utf8)
        out.withUnsafeMutableBufferPointer { buffer in
            for index in start..<buffer.count where buffer[index] <= 0x0D {
                let byte = buffer[index]
                if byte == 0x0D || byte == 0x0A || byte == 0x00 { buffer[index] = 0x20 }
            }
        }
    }

    /// Appends `text` as a JSON string literal, quotes included.
    static func appendJSONString(_ text: String, to out: inout [UInt8]) {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
