import HTTP
import Security

// The API layer's error codes: requests, validation, tokens, dependencies, limits.
extension ErrorCode {
    /// A route that does not exist, or a resource with no more specific code.
    package static let notFound = ErrorCode("not_found", .notFound, "no such resource")
    /// An argument or body field is missing, has the wrong type or breaks a rule (the message names it).
    package static let validationFailed = ErrorCode("validation_failed", .unprocessableContent, "the request is not valid")
    /// The body is not JSON (the message gives line and column).
    package static let invalidJSON = ErrorCode("invalid_json", .badRequest, "invalid JSON")
    /// The body is not `application/json`.
    package static let unsupportedMediaType = ErrorCode("unsupported_media_type", .unsupportedMediaType, "send the body as application/json")
    /// Anything unexpected (logged).
    package static let internalError = ErrorCode("internal_error", .internalServerError, "internal error")
    /// PostgreSQL cannot be reached.
    package static let databaseUnavailable = ErrorCode("database_unavailable", .serviceUnavailable, "the database is unavailable, retry shortly")
    /// Redis cannot be reached.
    package static let redisUnavailable = ErrorCode("redis_unavailable", .serviceUnavailable, "the message bus is unavailable, retry shortly")
    /// The password-hashing queue is full.
    package static let overloaded = ErrorCode("overloaded", .serviceUnavailable, "the server is busy, retry shortly")
    /// `/ready` while a dependency is down.
    package static let notReady = ErrorCode("not_ready", .serviceUnavailable, "a dependency is unavailable")
    /// A rate limit refused the request (`limit` and `retryAfterMs` say which and how long).
    package static let rateLimited = ErrorCode("rate_limited", .tooManyRequests, "rate limit exceeded")
    /// A limiter set to deny cannot reach Redis.
    package static let rateLimiterUnavailable = ErrorCode("rate_limiter_unavailable", .serviceUnavailable, "the rate limiter is unavailable, retry shortly")

    // Tokens (401).

    /// No `Authorization: Bearer` header or socket `auth.token`.
    package static let tokenMissing = ErrorCode("token_missing", .unauthorized, "this endpoint needs a bearer token")
    /// Not a JWT of ours, or absurd claims.
    package static let tokenMalformed = ErrorCode("token_malformed", .unauthorized, "the token is malformed")
    /// An algorithm other than HS256.
    package static let tokenAlgorithm = ErrorCode("token_algorithm", .unauthorized, "only HS256 tokens are accepted")
    /// The signature does not verify.
    package static let tokenSignature = ErrorCode("token_signature", .unauthorized, "the token signature is invalid")
    /// `exp` passed.
    package static let tokenExpired = ErrorCode("token_expired", .unauthorized, "the token has expired")
    /// `iat` or `nbf` in the future.
    package static let tokenNotYetValid = ErrorCode("token_not_yet_valid", .unauthorized, "the token is not valid yet")
    /// Another issuer.
    package static let tokenIssuer = ErrorCode("token_issuer", .unauthorized, "the token was issued by another issuer")
    /// Another audience.
    package static let tokenAudience = ErrorCode("token_audience", .unauthorized, "the token is intended for another audience")
    /// The token or its session was revoked, or its account no longer exists.
    package static let tokenRevoked = ErrorCode("token_revoked", .unauthorized, "this token has been revoked; log in again")

    /// The code for a token the verifier refused.
    package static func token(_ error: JWTError) -> ErrorCode {
        switch error {
        case .malformed: .tokenMalformed
        case .unsupportedAlgorithm: .tokenAlgorithm
        case .badSignature: .tokenSignature
        case .expired: .tokenExpired
        case .notYetValid: .tokenNotYetValid
        case .wrongIssuer: .tokenIssuer
        case .wrongAudience: .tokenAudience
        }
    }
}
