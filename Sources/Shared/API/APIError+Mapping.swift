import JSON
import Postgres
import Redis
import Runtime

extension APIError {
    /// The client-facing form of any error a handler throws: infrastructure failures become 503
    /// with a code saying which dependency, validation problems 422, the rest 500 (logged).
    package static func from(_ error: any Error) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as JSONFieldError:
            return .invalidField(error.field, error.message)
        case let error as PostgresError:
            switch error {
            case .server:
                return .internalError("the database rejected the operation")
            case .invalidParameter:
                // A value the database cannot take (text with NUL): the request's fault, never a
                // reason to retry. Validation should have named the field already.
                return .validation("a text value contains a NUL character (U+0000), which cannot be stored")
            default:
                return .databaseUnavailable
            }
        case is RedisError:
            return .redisUnavailable
        case let error as ThreadPoolError:
            if case .overloaded(let retryAfter) = error { return .overloaded(retryAfter: retryAfter) }
            return .internalError()
        default:
            return .internalError()
        }
    }
}
