import Glibc

/// Where and how to reach Redis, with the client's limits.
///
/// Built from a URL (`redis://[[user]:password@]host[:port][/db]`) and then adjusted in code;
/// every limit has a named default in `Defaults`.
package struct RedisConfiguration: Sendable, Equatable {
    /// The defaults, in one place.
    package enum Defaults {
        /// Redis's standard port.
        package static let port = 6379
        /// Database selected after connecting (no `SELECT` when 0).
        package static let database = 0
        /// Name resolution, TCP connect and the AUTH/SELECT handshake together.
        package static let connectTimeout = Duration.seconds(2)
        /// How late the oldest outstanding reply may be before the connection is reset.
        package static let commandTimeout = Duration.seconds(5)
        /// First reconnect delay's upper bound.
        package static let backoffMinimum = Duration.milliseconds(100)
        /// Reconnect delay cap.
        package static let backoffMaximum = Duration.seconds(5)
        /// Random fraction of each reconnect delay.
        package static let backoffJitter = 0.5
        /// Replies one connection may owe before new commands fail fast with `.unavailable`.
        package static let maxPendingReplies = 100_000
        /// Unwritten command bytes one connection may hold before new commands fail fast with `.unavailable`.
        package static let maxOutputBufferBytes = 32 << 20
        /// TCP keepalive idle time: detects a dead peer on the pub/sub connection, which never writes.
        package static let keepAliveSeconds: CInt = 15
    }

    /// Host name or numeric address (IPv6 without brackets).
    package var host: String
    /// TCP port.
    package var port: Int
    /// Database index for `SELECT`.
    package var database: Int
    /// ACL user for `AUTH user password` (Redis 6+); nil means `AUTH password`.
    package var username: String?
    /// Password for `AUTH`; nil means no `AUTH`.
    package var password: String?
    /// Sent with `CLIENT SETNAME` after connecting, so `CLIENT LIST` shows who is who.
    package var clientName: String?
    /// Deadline for resolve + connect + handshake.
    package var connectTimeout = Defaults.connectTimeout
    /// Per-command reply deadline.
    package var commandTimeout = Defaults.commandTimeout
    /// Reconnect delays.
    package var backoff = RedisBackoff()
    /// Bound on outstanding replies per connection.
    package var maxPendingReplies = Defaults.maxPendingReplies
    /// Bound on unwritten command bytes per connection.
    package var maxOutputBufferBytes = Defaults.maxOutputBufferBytes
    /// TCP keepalive idle seconds (0 disables).
    package var keepAliveSeconds = Defaults.keepAliveSeconds
    /// When set, `host`/`port` are only a placeholder: each connection asks these sentinels for the
    /// current primary first (`redis+sentinel://`), so a failover is followed by reconnecting.
    package var sentinel: RedisSentinelConfiguration?
    /// TLS to the server (`rediss://`, `rediss+sentinel://`: the sentinels too); nil: plain TCP.
    package var tls: RedisTLSConfiguration?

    /// A configuration for `host:port`, database `database`, no authentication.
    package init(host: String, port: Int = Defaults.port, database: Int = Defaults.database,
                 username: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]` or
    /// `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<primary name>[/db]`. User
    /// and password are percent-decoded; an IPv6 host goes in brackets. Error messages never repeat
    /// the URL (it may hold a password).
    package init(url: String) throws(RedisError) {
        let parsed = try RedisURLParser.parse(url)
        self.init(host: parsed.host, port: parsed.port, database: parsed.database,
                  username: parsed.username, password: parsed.password)
        if let primaryName = parsed.primaryName {
            sentinel = RedisSentinelConfiguration(nodes: parsed.sentinels, primaryName: primaryName)
        }
        if parsed.tls { tls = RedisTLSConfiguration() }
    }

    /// `host:port` for messages (never the password).
    package var endpointDescription: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// Redis Sentinel discovery: the sentinels to ask and the name they monitor the primary under.
package struct RedisSentinelConfiguration: Sendable, Equatable {
    /// A sentinel's address.
    package struct Node: Sendable, Equatable {
        package var host: String
        package var port: Int
        package init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    /// Sentinel's standard port.
    package static let defaultPort = 26379
    /// At most this many sentinels in a URL.
    package static let maximumNodes = 16

    package var nodes: [Node]
    /// `sentinel monitor <name> ...` on the sentinels.
    package var primaryName: String

    package init(nodes: [Node], primaryName: String) {
        self.nodes = nodes
        self.primaryName = primaryName
    }
}

/// The pure URL parser behind `RedisConfiguration(url:)`.
enum RedisURLParser {
    struct Parsed: Equatable {
        var host: String
        var port: Int
        var database: Int
        var username: String?
        var password: String?
        /// `redis+sentinel://` only: the sentinels (host and port above are the first of them).
        var sentinels: [RedisSentinelConfiguration.Node] = []
        var primaryName: String?
        /// `rediss://` or `rediss+sentinel://`.
        var tls = false
    }

    static func parse(_ url: String) throws(RedisError) -> Parsed {
        let lowered = url.lowercased()
        for (scheme, tls) in [("redis+sentinel://", false), ("rediss+sentinel://", true)] where lowered.hasPrefix(scheme) {
            var parsed = try parseSentinel(Array(url.utf8.dropFirst(scheme.utf8.count)))
            parsed.tls = tls
            return parsed
        }
        guard let scheme = ["redis://", "rediss://"].first(where: { lowered.hasPrefix($0) }) else {
            if lowered.hasPrefix("unix:") || lowered.hasPrefix("redis+unix:") {
                throw .invalidURL("Unix socket URLs are not supported; use redis://host:port")
            }
            throw .invalidURL("the scheme must be redis://, rediss:// (TLS), redis+sentinel:// or rediss+sentinel://")
        }
        var rest = Array(url.utf8.dropFirst(scheme.utf8.count))
        try checkCharacters(rest)

        // Path: "" or "/" or "/<db>".
        var database = RedisConfiguration.Defaults.database
        if let slash = rest.firstIndex(of: UInt8(ascii: "/")) {
            let path = Array(rest[(slash + 1)...])
            rest = Array(rest[..<slash])
            if !path.isEmpty { database = try parseDatabase(path) }
        }
        let (username, password) = try parseUserinfo(&rest)
        let (host, port) = try parseHostPort(rest, defaultPort: RedisConfiguration.Defaults.port)
        return Parsed(host: host, port: port, database: database, username: username, password: password,
                      tls: scheme == "rediss://")
    }

    /// `[[user]:password@]host[:port][,host[:port]...]/<primary name>[/db]` (after the scheme).
    private static func parseSentinel(_ bytes: [UInt8]) throws(RedisError) -> Parsed {
        var rest = bytes
        try checkCharacters(rest)
        guard let slash = rest.firstIndex(of: UInt8(ascii: "/")) else {
            throw .invalidURL("redis+sentinel:// needs the primary's name as its path, like /mymaster")
        }
        let path = Array(rest[(slash + 1)...])
        rest = Array(rest[..<slash])
        let segments = path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard let name = segments.first, !name.isEmpty, segments.count <= 2 else {
            throw .invalidURL("redis+sentinel:// needs the primary's name as its path, like /mymaster or /mymaster/0")
        }
        let primaryName = try percentDecode(Array(name), what: "primary name")
        var database = RedisConfiguration.Defaults.database
        if segments.count == 2, !segments[1].isEmpty { database = try parseDatabase(Array(segments[1])) }
        let (username, password) = try parseUserinfo(&rest)
        var nodes: [RedisSentinelConfiguration.Node] = []
        for part in rest.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            guard nodes.count < RedisSentinelConfiguration.maximumNodes else {
                throw .invalidURL("at most \(RedisSentinelConfiguration.maximumNodes) sentinels")
            }
            let (host, port) = try parseHostPort(Array(part), defaultPort: RedisSentinelConfiguration.defaultPort)
            nodes.append(RedisSentinelConfiguration.Node(host: host, port: port))
        }
        guard let first = nodes.first else { throw .invalidURL("the host is missing") }
        return Parsed(host: first.host, port: first.port, database: database, username: username, password: password,
                      sentinels: nodes, primaryName: primaryName)
    }

    private static func checkCharacters(_ rest: [UInt8]) throws(RedisError) {
        if rest.contains(UInt8(ascii: "?")) || rest.contains(UInt8(ascii: "#")) {
            throw .invalidURL("query parameters and fragments are not supported")
        }
        for byte in rest where byte <= 0x20 || byte == 0x7F {
            throw .invalidURL("spaces and control characters must be percent-encoded")
        }
    }

    private static func parseDatabase(_ path: [UInt8]) throws(RedisError) -> Int {
        guard path.count <= 9, path.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let value = Int(String(decoding: path, as: UTF8.self)) else {
            throw .invalidURL("the path must be a database number, like /0")
        }
        return value
    }

    /// Userinfo: everything before the last '@' (an unencoded '@' in a password is tolerated);
    /// removed from `rest`.
    private static func parseUserinfo(_ rest: inout [UInt8]) throws(RedisError) -> (username: String?, password: String?) {
        guard let at = rest.lastIndex(of: UInt8(ascii: "@")) else { return (nil, nil) }
        let userinfo = Array(rest[..<at])
        rest = Array(rest[(at + 1)...])
        guard let colon = userinfo.firstIndex(of: UInt8(ascii: ":")) else {
            throw .invalidURL("credentials must be ':password@' or 'user:password@'")
        }
        let user = try percentDecode(Array(userinfo[..<colon]), what: "user name")
        let secret = try percentDecode(Array(userinfo[(colon + 1)...]), what: "password")
        guard !secret.isEmpty else { throw .invalidURL("the password is empty") }
        return (user.isEmpty ? nil : user, secret)
    }

    private static func parseHostPort(_ authority: [UInt8], defaultPort: Int) throws(RedisError) -> (host: String, port: Int) {
        var rest = authority
        var host: String
        var portText: [UInt8]?
        if rest.first == UInt8(ascii: "[") {
            guard let close = rest.firstIndex(of: UInt8(ascii: "]")) else {
                throw .invalidURL("an IPv6 address lacks its closing ']'")
            }
            host = String(decoding: rest[1..<close], as: UTF8.self)
            var address = in6_addr()
            guard inet_pton(AF_INET6, host, &address) == 1 else {
                throw .invalidURL("'\(host)' is not an IPv6 address")
            }
            let after = Array(rest[(close + 1)...])
            if !after.isEmpty {
                guard after.first == UInt8(ascii: ":") else { throw .invalidURL("unexpected text after ']'") }
                portText = Array(after.dropFirst())
            }
        } else {
            let colons = rest.filter { $0 == UInt8(ascii: ":") }.count
            if colons > 1 { throw .invalidURL("an IPv6 address must be written in brackets, like [::1]") }
            if let colon = rest.firstIndex(of: UInt8(ascii: ":")) {
                portText = Array(rest[(colon + 1)...])
                rest = Array(rest[..<colon])
            }
            host = String(decoding: rest, as: UTF8.self)
            let allowed = rest.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
            }
            guard allowed else { throw .invalidURL("the host may only contain letters, digits, '-', '.' and '_'") }
        }
        guard !host.isEmpty else { throw .invalidURL("the host is missing") }

        var port = defaultPort
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let value = Int(String(decoding: portText, as: UTF8.self)), (1...65_535).contains(value) else {
                throw .invalidURL("the port must be a number from 1 to 65535")
            }
            port = value
        }
        return (host, port)
    }

    /// Decodes `%XX` escapes; the result must be UTF-8.
    static func percentDecode(_ bytes: [UInt8], what: String) throws(RedisError) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) else {
                    throw .invalidURL("the \(what) has a malformed %-escape")
                }
                output.append(high << 4 | low)
                index += 3
            } else {
                output.append(byte)
                index += 1
            }
        }
        guard let text = String(validating: output, as: UTF8.self) else {
            throw .invalidURL("the \(what) is not valid UTF-8 after %-decoding")
        }
        return text
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }
}
