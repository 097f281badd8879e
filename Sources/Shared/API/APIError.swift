import HTTP
import JSON
import Runtime

/// An error a client can act on: HTTP status, a stable machine `code`, a human `message`.
/// Serialized as `{"error":{"code":"...","message":"..."}}`, plus any `details` fields inside `error`.
package struct APIError: Error, Sendable, Equatable {
    package var status: HTTPStatus
    package var code: String
    package var message: String
    /// Extra response headers (`Allow`, `Retry-After`, `WWW-Authenticate`).
    package var headers: HTTPHeaders
    /// Extra machine-readable fields of the error object (`retryAfterMs`, `limit`).
    package var details: JSONObject

    package init(_ status: HTTPStatus, code: String, message: String, headers: HTTPHeaders = HTTPHeaders(),
                 details: JSONObject = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.details = details
    }

    /// The error object: `{"code", "message", ...details}`.
    package var json: JSONValue {
        var object: JSONObject = ["code": .string(code), "message": .string(message)]
        for (key, value) in details where key != "code" && key != "message" { object[key] = value }
        return .object(object)
    }

    /// The response carrying this error.
    package var response: HTTPResponse {
        var response = details.isEmpty ? HTTPResponse.error(status, code: code, message: message)
                                        : HTTPResponse.json(status, JSONValue.object(["error": json]))
        response.headers.replaceOrAdd(contentsOf: headers)
        return response
    }

    package static func validation(_ message: String) -> APIError {
        APIError(.unprocessableContent, code: "validation_failed", message: message)
    }

    /// 422 `validation_failed` about one field: the message names it for people, `field` for programs.
    package static func invalidField(_ field: String, _ message: String) -> APIError {
        APIError(.unprocessableContent, code: "validation_failed", message: message, details: ["field": .string(field)])
    }

    package static func notFound(_ message: String = "no such resource") -> APIError {
        APIError(.notFound, code: "not_found", message: message)
    }

    package static func unauthorized(_ code: String, _ message: String) -> APIError {
        APIError(.unauthorized, code: code, message: message, headers: ["WWW-Authenticate": "Bearer"])
    }

    package static func internalError(_ message: String = "internal error") -> APIError {
        APIError(.internalServerError, code: "internal_error", message: message)
    }

    package static let databaseUnavailable = APIError(
        .serviceUnavailable, code: "database_unavailable",
        message: "the database is unavailable, retry shortly", headers: ["Retry-After": "1"])

    package static let redisUnavailable = APIError(
        .serviceUnavailable, code: "redis_unavailable",
        message: "the message bus is unavailable, retry shortly", headers: ["Retry-After": "1"])

    package static let overloaded = APIError(
        .serviceUnavailable, code: "overloaded",
        message: "the server is busy, retry shortly", headers: ["Retry-After": "1"])
}

extension APIError {
    /// 429 `rate_limited` with the limit's name and the wait in milliseconds.
    package static func rateLimited(limit: String, retryAfterMilliseconds: Int64, message: String) -> APIError {
        let wait = max(1, retryAfterMilliseconds)
        return APIError(.tooManyRequests, code: "rate_limited", message: message,
                        headers: ["Retry-After": String(retryAfterSeconds(milliseconds: wait))],
                        details: ["limit": .string(limit), "retryAfterMs": .int(wait)])
    }

    /// A wait as `Retry-After` seconds: rounded up, at least 1 (0 would invite an instant retry).
    /// Any `Int64` is accepted: the wait may come from a Redis reply or a worker's JSON.
    package static func retryAfterSeconds(milliseconds: Int64) -> Int64 {
        max(1, milliseconds.dividedRoundingUp(by: 1000))
    }

    /// 503 when a limiter set to `deny` cannot reach Redis.
    package static let rateLimiterUnavailable = APIError(
        .serviceUnavailable, code: "rate_limiter_unavailable",
        message: "the rate limiter is unavailable, retry shortly", headers: ["Retry-After": "1"])
}
