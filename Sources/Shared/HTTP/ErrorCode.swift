/// A machine-readable error code of the REST API and the socket protocol, declared once, as a static
/// member, by the layer that owns the error (HTTP here; WebSocket, API, Chat and the Gateway in
/// extensions of their own), with the HTTP status it is answered with and a default message.
/// Clients see `name` (`{"error": {"code": "<name>", ...}}`, the socket `error` event, ack errors);
/// the status and message travel with it, so REST and sockets cannot disagree. Open, like
/// valkey-swift's `ErrorCode`: a code read from a peer (a worker's reply) that this version does not
/// declare is still a code, answered as 500.
package struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
    /// The wire name, `lower_snake_case`.
    package let name: String
    /// The status REST answers with; sockets send no status.
    package let status: HTTPStatus
    /// The message when the error site has nothing more specific to say.
    package let defaultMessage: String

    /// Declares a code (only in the declarations of the owning layer).
    package init(_ name: String, _ status: HTTPStatus, _ defaultMessage: String) {
        self.name = name
        self.status = status
        self.defaultMessage = defaultMessage
    }

    /// Codes are their name.
    package static func == (lhs: ErrorCode, rhs: ErrorCode) -> Bool { lhs.name == rhs.name }

    package func hash(into hasher: inout Hasher) { hasher.combine(name) }

    package var description: String { name }

    /// The code named `name` among `known`.
    package static func named(_ name: String, in known: [ErrorCode]) -> ErrorCode? {
        known.first { $0.name == name }
    }
}

// MARK: - The HTTP layer's codes

extension ErrorCode {
    /// The request is not well-formed HTTP/1.1.
    package static let badRequest = ErrorCode("bad_request", .badRequest, "the request is malformed")
    /// The request target is longer than the parser accepts.
    package static let uriTooLong = ErrorCode("uri_too_long", .uriTooLong, "the request target is too long")
    /// The request head (or its number of fields) is larger than the parser accepts.
    package static let headersTooLarge = ErrorCode("headers_too_large", .requestHeaderFieldsTooLarge, "the request headers are too large")
    /// The body is larger than `HTTP_MAX_BODY_BYTES`.
    package static let bodyTooLarge = ErrorCode("body_too_large", .contentTooLarge, "the request body is too large")
    /// A body without `Content-Length` or chunked framing.
    package static let lengthRequired = ErrorCode("length_required", .lengthRequired, "send Content-Length")
    /// A transfer coding or method this server does not implement.
    package static let notImplemented = ErrorCode("not_implemented", .notImplemented, "not implemented")
    /// An HTTP version other than 1.0 / 1.1.
    package static let versionNotSupported = ErrorCode("version_not_supported", .httpVersionNotSupported, "use HTTP/1.1")
    /// An `Expect` other than `100-continue`.
    package static let expectationFailed = ErrorCode("expectation_failed", .expectationFailed, "only Expect: 100-continue is supported")
    /// A known path with another method (answered with `Allow`).
    package static let methodNotAllowed = ErrorCode("method_not_allowed", .methodNotAllowed, "this method is not allowed here")
    /// The process is at `MAX_CONNECTIONS`.
    package static let serverBusy = ErrorCode("server_busy", .serviceUnavailable, "too many connections, retry later")
    /// The request did not arrive whole within `HTTP_HEADER_TIMEOUT_MS`.
    package static let requestTimeout = ErrorCode("request_timeout", .requestTimeout, "the request did not arrive in time")
    /// `PROXY_PROTOCOL=on` and the connection did not start with a valid PROXY protocol header.
    package static let proxyHeaderInvalid = ErrorCode("proxy_header_invalid", .badRequest,
                                                      "this port expects a PROXY protocol header from the load balancer first")
}

extension HTTPResponse {
    /// The house error body `{"error":{"code","message"}}` with the code's status.
    package static func error(_ code: ErrorCode, message: String? = nil) -> HTTPResponse {
        .error(code.status, code: code.name, message: message ?? code.defaultMessage)
    }
}
