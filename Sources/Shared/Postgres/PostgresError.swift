/// What PostgreSQL itself reported about a failed statement (an `ErrorResponse`).
///
/// The fields come from `PQresultErrorField` (`PG_DIAG_*`); which ones are present depends on the
/// error: constraint violations carry `constraint` and `table`, syntax errors do not.
package struct PostgresServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Five-character SQLSTATE code, e.g. `23505` (see `PostgresSQLState`).
    package var sqlState: String
    /// `ERROR`, `FATAL` or `PANIC` (never localized).
    package var severity: String
    /// The primary message.
    package var message: String
    /// Secondary detail, e.g. `Key (username)=(alice) already exists.`
    package var detail: String?
    /// A suggestion from the server, if any.
    package var hint: String?
    /// The violated constraint, e.g. `users_username_key`.
    package var constraint: String?
    /// Schema of the object involved, if any.
    package var schema: String?
    /// Table of the object involved, if any.
    package var table: String?
    /// Column involved, if any (e.g. not-null violations).
    package var column: String?

    /// Creates a server error (tests and synthesized errors).
    package init(
        sqlState: String, severity: String = "ERROR", message: String, detail: String? = nil, hint: String? = nil,
        constraint: String? = nil, schema: String? = nil, table: String? = nil, column: String? = nil
    ) {
        self.sqlState = sqlState
        self.severity = severity
        self.message = message
        self.detail = detail
        self.hint = hint
        self.constraint = constraint
        self.schema = schema
        self.table = table
        self.column = column
    }

    /// A unique constraint or unique index was violated (`23505`).
    package var isUniqueViolation: Bool { sqlState == PostgresSQLState.uniqueViolation }

    package var description: String {
        var text = "\(severity) \(sqlState): \(message)"
        if let detail { text += " (\(detail))" }
        if let constraint { text += " [constraint \(constraint)]" }
        return text
    }
}

/// SQLSTATE codes that callers branch on. Full list: PostgreSQL manual, appendix A.
package enum PostgresSQLState {
    /// `23505`: a unique constraint was violated (answer 409 naming the field).
    package static let uniqueViolation = "23505"
    /// `23503`: a foreign key does not match (the referenced row is missing).
    package static let foreignKeyViolation = "23503"
    /// `23502`: a NOT NULL column got NULL.
    package static let notNullViolation = "23502"
    /// `23514`: a CHECK constraint failed.
    package static let checkViolation = "23514"
    /// `22P02`: text could not be converted to the column's type (e.g. `'abc'::bigint`).
    package static let invalidTextRepresentation = "22P02"
    /// `40001`: serialization failure; the transaction may be retried.
    package static let serializationFailure = "40001"
    /// `40P01`: deadlock detected; the transaction may be retried.
    package static let deadlockDetected = "40P01"
    /// `57014`: the statement was cancelled (e.g. `statement_timeout`).
    package static let queryCanceled = "57014"
    /// `57P01`: the server is shutting down and terminated the session.
    package static let adminShutdown = "57P01"
    /// `25P02`: a statement failed earlier in the transaction, so `COMMIT` rolled back.
    package static let inFailedSQLTransaction = "25P02"
}

/// Everything that can go wrong talking to PostgreSQL.
///
/// The cases tell a caller what it may do next: `unavailable` means the statement never reached
/// the server (safe to retry; answer 503), `connectionLost` means it may or may not have run.
package enum PostgresError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Could not connect, or the connection was found broken before the statement was sent.
    /// Nothing ran. Callers answer 503 `database_unavailable`.
    case unavailable(String)
    /// The connection broke while a statement was in flight: it may or may not have been applied.
    case connectionLost(String)
    /// The statement did not finish within the query timeout; its connection was closed.
    case timeout
    /// No pooled connection became free within the acquire timeout (or too many callers wait).
    case poolExhausted
    /// PostgreSQL rejected the statement.
    case server(PostgresServerError)
    /// A result column is missing, NULL where a value was required, or not in the expected format.
    case decoding(column: String, reason: String)
    /// libpq returned something this client does not handle (e.g. a `COPY` result).
    case `protocol`(String)
    /// A parameter cannot be sent (e.g. text containing a NUL byte, which PostgreSQL cannot store).
    /// `index` is zero-based; `$1` is index 0.
    case invalidParameter(index: Int, reason: String)
    /// The client was used in a way it does not support (a second query on a busy connection,
    /// migrations out of order). A programming error.
    case misuse(String)

    /// Whether this is a unique violation (`23505`).
    package var isUniqueViolation: Bool {
        if case .server(let error) = self { return error.isUniqueViolation }
        return false
    }

    /// The server error's SQLSTATE, if the server reported one.
    package var sqlState: String? {
        if case .server(let error) = self { return error.sqlState }
        return nil
    }

    /// The violated constraint's name, if the server reported one.
    package var constraint: String? {
        if case .server(let error) = self { return error.constraint }
        return nil
    }

    /// Whether the database (not the request) is at fault and the request may succeed later:
    /// callers answer 503.
    package var isTransient: Bool {
        switch self {
        case .unavailable, .connectionLost, .timeout, .poolExhausted: return true
        case .server(let error):
            return [PostgresSQLState.serializationFailure, PostgresSQLState.deadlockDetected,
                    PostgresSQLState.adminShutdown].contains(error.sqlState)
        case .decoding, .protocol, .invalidParameter, .misuse: return false
        }
    }

    /// A stable machine-readable code for logs and API error bodies.
    package var code: String {
        switch self {
        case .unavailable: return "database_unavailable"
        case .connectionLost: return "database_connection_lost"
        case .timeout: return "database_timeout"
        case .poolExhausted: return "database_busy"
        case .server(let error): return error.isUniqueViolation ? "unique_violation" : "database_error"
        case .decoding: return "database_decoding_error"
        case .protocol: return "database_protocol_error"
        case .invalidParameter: return "invalid_parameter"
        case .misuse: return "database_misuse"
        }
    }

    package var description: String {
        switch self {
        case .unavailable(let reason):
            return "PostgreSQL unavailable: \(reason) (check DATABASE_URL and that the server is running)"
        case .connectionLost(let reason):
            return "connection to PostgreSQL lost during a statement, outcome unknown: \(reason)"
        case .timeout:
            return "PostgreSQL statement timed out (raise the query timeout or make the statement cheaper)"
        case .poolExhausted:
            return "no PostgreSQL connection free within the acquire timeout (raise the pool size or lower the load)"
        case .server(let error):
            return "PostgreSQL error \(error)"
        case .decoding(let column, let reason):
            return "cannot decode column \"\(column)\": \(reason)"
        case .protocol(let reason):
            return "unexpected PostgreSQL response: \(reason)"
        case .invalidParameter(let index, let reason):
            return "parameter $\(index + 1) cannot be sent: \(reason)"
        case .misuse(let reason):
            return "PostgreSQL client misuse: \(reason)"
        }
    }
}
