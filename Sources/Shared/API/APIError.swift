import HTTP
import JSON
import Runtime
import Security

/// An error a client can act on: a stable machine `code` (which carries the HTTP status) and a human
/// `message`. Serialized as `{"error":{"code":"...","message":"..."}}`, plus any `details` fields
/// inside `error`; the same object is the socket `error` event and the ack error.
package struct APIError: Error, Sendable, Equatable {
    package var code: ErrorCode
    package var message: String
    /// Extra response headers (`Allow`, `Retry-After`, `WWW-Authenticate`).
    package var headers: HTTPHeaders
    /// Extra machine-readable fields of the error object (`retryAfterMs`, `limit`, `field`).
    package var details: JSONObject

    /// An error with `code`; `message` defaults to the code's own.
    package init(_ code: ErrorCode, message: String? = nil, headers: HTTPHeaders = HTTPHeaders(), details: JSONObject = [:]) {
        self.code = code
        self.message = message ?? code.defaultMessage
        self.headers = headers
        self.details = details
    }

    /// The HTTP status REST answers with.
    package var status: HTTPStatus { code.status }

    /// The error object: `{"code", "message", ...details}`.
    package var json: JSONValue { Self.errorObject(code: code.name, message: message, details: details) }

    /// An error object as clients see it, in REST bodies, socket `error` events and ack errors:
    /// `{code, message, ...details}`.
    package static func errorObject(code: String, message: String, details: JSONObject) -> JSONValue {
        var object: JSONObject = ["code": .string(code), "message": .string(message)]
        for (key, value) in details where key != "code" && key != "message" { object[key] = value }
        return .object(object)
    }

    /// The response carrying this error.
    package var response: HTTPResponse {
        var response = details.isEmpty ? HTTPResponse.error(code, message: message)
                                        : HTTPResponse.json(status, JSONValue.object(["error": json]))
        response.headers.replaceOrAdd(contentsOf: headers)
        return response
    }

    package static func validation(_ message: String) -> APIError {
        APIError(.validationFailed, message: message)
    }

    /// 422 `validation_failed` about one field: the message names it for people, `field` for programs.
    package static func invalidField(_ field: String, _ message: String) -> APIError {
        APIError(.validationFailed, message: message, details: ["field": .string(field)])
    }

    package static func notFound(_ message: String = ErrorCode.notFound.defaultMessage) -> APIError {
        APIError(.notFound, message: message)
    }

    /// 401 with `WWW-Authenticate: Bearer`.
    package static func unauthorized(_ code: ErrorCode, _ message: String? = nil) -> APIError {
        APIError(code, message: message, headers: ["WWW-Authenticate": "Bearer"])
    }

    /// 401 for a token the verifier refused, with the verifier's reason.
    package static func unauthorized(_ error: JWTError) -> APIError {
        unauthorized(.token(error), error.message)
    }

    package static func internalError(_ message: String = ErrorCode.internalError.defaultMessage) -> APIError {
        APIError(.internalError, message: message)
    }

    /// A dependency is down: 503 with `Retry-After: 1`.
    package static func unavailable(_ code: ErrorCode) -> APIError {
        APIError(code, headers: ["Retry-After": "1"])
    }

    package static let databaseUnavailable = unavailable(.databaseUnavailable)

    package static let redisUnavailable = unavailable(.redisUnavailable)

    package static let overloaded = unavailable(.overloaded)

    /// 503 `overloaded` with when to come back: `Retry-After` (seconds, rounded up) and
    /// `retryAfterMs` (exact), so clients neither hammer nor give up.
    package static func overloaded(retryAfter: Duration, message: String? = nil) -> APIError {
        let wait = max(.milliseconds(1), retryAfter)
        return APIError(.overloaded, message: message, headers: ["Retry-After": String(retryAfterSeconds(wait))],
                        details: ["retryAfterMs": .int(wait.millisecondsRoundedUp)])
    }
}

extension APIError {
    /// 429 `rate_limited` with the limit's name and the wait (`retryAfterMs`, whole milliseconds, at least 1).
    package static func rateLimited(limit: String, retryAfter: Duration, message: String) -> APIError {
        let wait = max(.milliseconds(1), retryAfter)
        return APIError(.rateLimited, message: message,
                        headers: ["Retry-After": String(retryAfterSeconds(wait))],
                        details: ["limit": .string(limit), "retryAfterMs": .int(wait.millisecondsRoundedUp)])
    }

    /// A wait as `Retry-After` seconds: rounded up, at least 1 (0 would invite an instant retry).
    /// Any wait is accepted: it may come from a Redis reply or a worker's JSON.
    package static func retryAfterSeconds(_ wait: Duration) -> Int64 {
        max(1, wait.secondsRoundedUp)
    }

    /// 503 when a limiter set to `deny` cannot reach Redis.
    package static let rateLimiterUnavailable = unavailable(.rateLimiterUnavailable)
}
