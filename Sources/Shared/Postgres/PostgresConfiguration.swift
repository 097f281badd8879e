/// Default limits of the PostgreSQL client, in one place. Every one is overridable through the
/// configuration structs below.
package enum PostgresDefaults {
    /// Time allowed to establish a connection (TCP, TLS, authentication).
    package static let connectTimeout = Duration.seconds(5)
    /// Time allowed for one statement, from send to the last result. On expiry the connection is closed.
    package static let queryTimeout = Duration.seconds(10)
    /// Connections per pool (per process: scale the total with processes × size ≤ max_connections).
    package static let poolSize = 4
    /// Time a caller waits for a free pooled connection before `.poolExhausted`.
    package static let acquireTimeout = Duration.seconds(2)
    /// Callers allowed to queue for a connection; beyond this they fail at once with `.poolExhausted`.
    package static let maxWaiters = 1_000
    /// After a failed connect attempt, new connects are refused with `.unavailable` for this long
    /// (so a dead server costs each request microseconds, not a connect timeout).
    package static let failFast = Duration.seconds(1)
    /// Timeout of `PostgresPool.ping()` (readiness probes must answer quickly).
    package static let pingTimeout = Duration.seconds(1)
    /// Timeout of each migration statement, including the wait for the migration lock.
    package static let migrationTimeout = Duration.seconds(600)
    /// `application_name` shown in `pg_stat_activity`.
    package static let applicationName = "swiftchat"
}

/// How to open one connection.
package struct PostgresConnectionConfiguration: Sendable, Equatable {
    /// `postgres://user:pass@host:port/db?sslmode=...` or a `key=value ...` string (libpq syntax).
    package var url: String
    /// `application_name` for `pg_stat_activity`; a value in `url` takes precedence.
    package var applicationName: String
    /// See `PostgresDefaults.connectTimeout`.
    package var connectTimeout: Duration
    /// Default per-statement timeout; see `PostgresDefaults.queryTimeout`.
    package var queryTimeout: Duration
    /// Extra libpq connection keywords (e.g. `options`, `sslmode`) that override `url`.
    package var parameters: [String: String]

    /// Creates a configuration; only `url` is required.
    package init(
        url: String,
        applicationName: String = PostgresDefaults.applicationName,
        connectTimeout: Duration = PostgresDefaults.connectTimeout,
        queryTimeout: Duration = PostgresDefaults.queryTimeout,
        parameters: [String: String] = [:]
    ) {
        self.url = url
        self.applicationName = applicationName
        self.connectTimeout = connectTimeout
        self.queryTimeout = queryTimeout
        self.parameters = parameters
    }

    /// The keyword/value pairs for `PQconnectStartParams` with `expand_dbname = 1`, in order.
    ///
    /// libpq lets later keywords override values from the expanded `dbname` string and the string
    /// override earlier ones: `application_name` goes first (the URL may override it), `parameters`
    /// last (they override the URL).
    package var connectionKeywords: [(keyword: String, value: String)] {
        var pairs: [(keyword: String, value: String)] = []
        if !applicationName.isEmpty { pairs.append(("application_name", applicationName)) }
        pairs.append(("dbname", url))
        for key in parameters.keys.sorted() where key != "dbname" {
            if let value = parameters[key] { pairs.append((key, value)) }
        }
        return pairs
    }

    /// `url` with any password replaced by `***`, safe to log.
    package var redactedURL: String { PostgresConnectionConfiguration.redact(url) }

    /// Replaces the password of a URL (`scheme://user:secret@host`, `?password=secret`) or of a
    /// `key=value` string (`password=secret`, `password='se cret'`) with `***`.
    package static func redact(_ url: String) -> String {
        var text = Array(url.utf8)
        if let schemeEnd = find(Array("://".utf8), in: text, from: 0) {
            let authorityStart = schemeEnd + 3
            let authorityEnd = text[authorityStart...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }
                ?? text.count
            if let at = text[authorityStart..<authorityEnd].lastIndex(of: UInt8(ascii: "@")),
               let colon = text[authorityStart..<at].firstIndex(of: UInt8(ascii: ":")) {
                text.replaceSubrange((colon + 1)..<at, with: Array("***".utf8))
            }
            text = redactValue(of: "password=", in: text, separators: [UInt8(ascii: "&")], quoted: false)
        } else {
            text = redactValue(of: "password", in: text, separators: [UInt8(ascii: " ")], quoted: true)
        }
        return String(decoding: text, as: UTF8.self)
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        var index = start
        while index + needle.count <= haystack.count {
            if haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    private static func redactValue(of key: String, in text: [UInt8], separators: Set<UInt8>, quoted: Bool) -> [UInt8] {
        var text = text
        var searchFrom = 0
        let keyBytes = Array(key.utf8)
        while let found = find(keyBytes, in: text, from: searchFrom) {
            // Must start a key: at the beginning, or after a separator / '?'.
            let atKeyStart = found == 0 || separators.contains(text[found - 1]) || text[found - 1] == UInt8(ascii: "?")
            var cursor = found + keyBytes.count
            if quoted {
                while cursor < text.count && text[cursor] == UInt8(ascii: " ") { cursor += 1 }
                guard atKeyStart, cursor < text.count, text[cursor] == UInt8(ascii: "=") else {
                    searchFrom = found + 1
                    continue
                }
                cursor += 1
                while cursor < text.count && text[cursor] == UInt8(ascii: " ") { cursor += 1 }
            } else if !atKeyStart {
                searchFrom = found + 1
                continue
            }
            let valueStart = cursor
            var valueEnd = cursor
            if quoted, valueEnd < text.count, text[valueEnd] == UInt8(ascii: "'") {
                valueEnd += 1
                while valueEnd < text.count && text[valueEnd] != UInt8(ascii: "'") {
                    valueEnd += text[valueEnd] == UInt8(ascii: "\\") ? 2 : 1
                }
                valueEnd = min(valueEnd + 1, text.count)
            } else {
                while valueEnd < text.count && !separators.contains(text[valueEnd]) { valueEnd += 1 }
            }
            text.replaceSubrange(valueStart..<valueEnd, with: Array("***".utf8))
            searchFrom = valueStart + 3
        }
        return text
    }
}

/// How a `PostgresPool` sizes and guards its connections.
package struct PostgresPoolConfiguration: Sendable, Equatable {
    /// How each connection is opened.
    package var connection: PostgresConnectionConfiguration
    /// Maximum open connections.
    package var size: Int
    /// See `PostgresDefaults.acquireTimeout`.
    package var acquireTimeout: Duration
    /// See `PostgresDefaults.maxWaiters`.
    package var maxWaiters: Int
    /// See `PostgresDefaults.failFast`.
    package var failFast: Duration
    /// See `PostgresDefaults.pingTimeout`.
    package var pingTimeout: Duration

    /// Creates a pool configuration; only `url` is required.
    package init(
        url: String,
        applicationName: String = PostgresDefaults.applicationName,
        size: Int = PostgresDefaults.poolSize,
        acquireTimeout: Duration = PostgresDefaults.acquireTimeout,
        connectTimeout: Duration = PostgresDefaults.connectTimeout,
        queryTimeout: Duration = PostgresDefaults.queryTimeout,
        maxWaiters: Int = PostgresDefaults.maxWaiters,
        failFast: Duration = PostgresDefaults.failFast,
        pingTimeout: Duration = PostgresDefaults.pingTimeout,
        parameters: [String: String] = [:]
    ) {
        connection = PostgresConnectionConfiguration(
            url: url, applicationName: applicationName, connectTimeout: connectTimeout,
            queryTimeout: queryTimeout, parameters: parameters)
        self.size = max(1, size)
        self.acquireTimeout = acquireTimeout
        self.maxWaiters = max(0, maxWaiters)
        self.failFast = failFast
        self.pingTimeout = pingTimeout
    }
}
