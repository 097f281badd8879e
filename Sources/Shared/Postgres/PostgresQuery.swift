/// A statement whose parameters are written where they are used: in a `PostgresQuery` literal,
/// `\(value)` binds `value` as the next parameter and writes its placeholder (`$1`, `$2`, ...), so
/// a value and its `$n` cannot drift apart however long the statement grows. SQL text the code
/// controls (column lists, table joins, `ASC`/`DESC`) goes in with `\(unescaped: ...)`.
///
/// ```swift
/// let query: PostgresQuery = "SELECT \(unescaped: columns) FROM users WHERE id = \(userID) LIMIT \(limit)"
/// // sql: "SELECT ... FROM users WHERE id = $1 LIMIT $2", parameters: [.int64(userID), .int64(limit)]
/// ```
///
/// A literal handed straight to `query(_:)` is a `String`, whose interpolation splices text: bind
/// with a value typed `PostgresQuery` (a `let` with its type, or a function returning one).
package struct PostgresQuery: Sendable, Hashable {
    /// The statement with `$n` placeholders.
    package var sql: String
    /// The parameters, `$1` first.
    package var parameters: [PostgresValue?]

    /// A statement and parameters written apart (the caller numbers the placeholders).
    package init(unsafeSQL sql: String, parameters: [PostgresValue?] = []) {
        self.sql = sql
        self.parameters = parameters
    }
}

extension PostgresQuery: ExpressibleByStringInterpolation {
    /// A statement without parameters.
    package init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    /// A statement whose interpolations were bound as parameters.
    package init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, parameters: stringInterpolation.parameters)
    }

    /// Builds the text and the parameter list side by side.
    package struct StringInterpolation: StringInterpolationProtocol {
        package typealias StringLiteralType = String

        var sql: String = ""
        var parameters: [PostgresValue?] = []

        /// Room for the literal text and a short placeholder per interpolation.
        package init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + 4 * interpolationCount)
            parameters.reserveCapacity(interpolationCount)
        }

        /// SQL text, as written.
        package mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// Binds `value` (`nil`: SQL `NULL`) and writes its placeholder.
        package mutating func appendInterpolation(_ value: PostgresValue?) {
            parameters.append(value)
            sql += "$"
            sql += String(parameters.count)
        }

        /// Binds a string (sent untyped, so it converts to what the context needs).
        package mutating func appendInterpolation(_ value: String) {
            appendInterpolation(.string(value))
        }

        /// Binds a string, or `NULL`.
        package mutating func appendInterpolation(_ value: String?) {
            appendInterpolation(value.map { .string($0) })
        }

        /// Binds a `bigint`.
        package mutating func appendInterpolation(_ value: Int64) {
            appendInterpolation(.int64(value))
        }

        /// Binds an `Int` as a `bigint`.
        package mutating func appendInterpolation(_ value: Int) {
            appendInterpolation(.int(value))
        }

        /// Binds a `bigint[]` (one array literal) and writes `$n::bigint[]`.
        package mutating func appendInterpolation(integers values: some Sequence<Int64>) {
            appendInterpolation(.string(PostgresArrayLiteral.integers(values)))
            sql += "::bigint[]"
        }

        /// Binds a `bigint[]` whose `nil` elements are `NULL`, and writes `$n::bigint[]`.
        package mutating func appendInterpolation(integers values: some Sequence<Int64?>) {
            appendInterpolation(.string(PostgresArrayLiteral.integers(values)))
            sql += "::bigint[]"
        }

        /// Binds a `text[]` (one array literal) and writes `$n::text[]`.
        package mutating func appendInterpolation(texts values: some Sequence<String>) {
            appendInterpolation(.string(PostgresArrayLiteral.texts(values)))
            sql += "::text[]"
        }

        /// Binds a `text[]` whose `nil` elements are `NULL`, and writes `$n::text[]`.
        package mutating func appendInterpolation(texts values: some Sequence<String?>) {
            appendInterpolation(.string(PostgresArrayLiteral.texts(values)))
            sql += "::text[]"
        }

        /// Writes `text` into the statement as SQL, unbound: only for text the code controls
        /// (identifiers, column lists, keywords), never for a value from outside.
        package mutating func appendInterpolation(unescaped text: String) {
            sql += text
        }
    }
}
