import Glibc
import Shared

/// What one ChatLoad run does, from the command line (and a few environment variables, so the
/// signing secret need not appear in `ps`).
struct LoadOptions: Sendable {
    /// Gateway address: numeric IPv4/IPv6 host and port.
    var host = "127.0.0.1"
    var port: UInt16 = 3000
    /// Connections to open and hold.
    var connections = 1000
    /// Local addresses to bind before `connect`, used round-robin. Empty: the kernel picks.
    var sourceAddresses: [String] = []
    /// New connections started per second.
    var rate = 5000
    /// Most connections between `socket()` and the Socket.IO CONNECT answer at once.
    var maxInFlight = 1000
    /// Seconds to hold once every connection is resolved; nil holds until SIGINT/SIGTERM.
    var holdSeconds: Int? = 30
    /// HS256 secret the gateway verifies with (its `JWT_SECRET`).
    var jwtSecret = ""
    var jwtIssuer: String? = "swift-chat"
    var jwtAudience: String?
    /// Connection `i` authenticates as user `userBase + i`.
    var userBase: Int64 = 1_000_000
    /// Lifetime of the minted tokens, seconds.
    var tokenLifetimeSeconds: Int64 = 3600
    /// A connection not authenticated within this time counts as failed (`handshake_timeout`).
    var handshakeTimeout = Duration.seconds(30)
    /// After sending our close, how long to wait for the server's before closing the sockets anyway.
    var closeTimeout = Duration.seconds(5)
    /// Request path and query of the Engine.IO WebSocket endpoint.
    var path = "/socket.io/?EIO=4&transport=websocket"
    /// A numeric field of received events' data holding the sender's monotonic clock (nanoseconds):
    /// each such event's delivery latency is measured (the fan-out benchmark). Nil: not measured.
    var latencyField: String?
    /// The fan-out benchmark's reference: instead of gateway sockets, `connections` plain Redis
    /// subscribers of `redisChannel` at this Redis URL (no token needed).
    var redisURL: String?
    /// After CONNECT, each connection subscribes to the presence of this many users
    /// (`presenceSubscribe`): the next ones after it among `watchCount` users from `watchBase`
    /// (default: this run's own users), wrapping around. 0: none.
    var watch = 0
    var watchBase: Int64?
    var watchCount: Int?
    var redisChannel = ""
    /// The messages benchmark (issue 17): connection 2k sends to connection 2k+1's user at this
    /// many messages per second in all, open loop (each message has an intended send time; its
    /// latencies count from that time, so a stalled sender does not hide the stall); 0: no messages.
    var messageRate = 0
    /// Seconds of sending once every connection is connected.
    var messageSeconds = 10
    /// The receivers' (odd connections') gateway, when not `--url`'s.
    var receiverHost: String?
    /// Tokens for the seeds' stack peer (`--peer-tokens`): the user id in an `id` claim.
    var peerTokens = false
    var receiverPort: UInt16 = 3000
    /// Rooms instead of pairs (`--room-size M`): connections `[r*M, (r+1)*M)` are the members of
    /// room `roomBase + r` (rooms the benchmark seeded); message k goes to room `k mod rooms`, sent
    /// by its members in turn, and reaches the other M-1. 0: direct pairs.
    var roomSize = 0
    var roomBase: Int64 = 0
    /// Seconds between interval reports (one JSON line each, for the soak's p99 per minute); 0: none.
    var intervalSeconds = 0

    static let usage = """
        ChatLoad: opens N authenticated Socket.IO (Engine.IO v4, WebSocket transport) connections to a
        gateway, answers its pings, holds them, then closes them gracefully.

        Options:
          --url ws://HOST:PORT         gateway address, numeric host (default ws://127.0.0.1:3000)
          --connections N              connections to open (default 1000)
          --source-ips LIST            local addresses bound round-robin, e.g. 127.0.0.2-127.0.0.9 or
                                       127.0.0.2,127.0.0.3 (each gives its own ephemeral port range)
          --rate R                     new connections per second (default 5000)
          --max-in-flight M            handshakes in progress at most (default 1000)
          --hold SECONDS|forever       hold time once all are resolved (default 30); SIGINT/SIGTERM
                                       ends the hold early
          --jwt-secret S               HS256 secret (default: $JWT_SECRET)
          --jwt-issuer I               'iss' claim (default: $JWT_ISSUER or swift-chat; '' for none)
          --jwt-audience A             'aud' claim (default: $JWT_AUDIENCE, none if unset)
          --user-base B                connection i authenticates as user B+i (default 1000000)
          --ttl SECONDS                token lifetime (default 3600)
          --handshake-timeout MS       per-connection authentication deadline (default 30000)
          --close-timeout MS           wait for the server's close frames at the end (default 5000)
          --path P                     request target (default /socket.io/?EIO=4&transport=websocket)
          --latency-field NAME         measure every received event whose data has NAME = the sender's
                                       CLOCK_MONOTONIC in nanoseconds (same host): counts and latency
                                       quantiles in the status lines and the summary
          --watch K                    after CONNECT, emit presenceSubscribe for the K users after this
                                       one (wrapping within --watch-range, default this run's users)
          --watch-range BASE:COUNT     the users --watch picks from
          --message-rate R             messages benchmark: connection 2k sends to 2k+1's user, R messages/s
                                       in all, open loop; ack and delivery latency from each message's
                                       intended send time (coordinated omission corrected)
          --message-seconds S          seconds of sending once all are connected (default 10)
          --receiver-url ws://H:P      the receivers' gateway (default --url)
          --room-size M --room-base ID rooms instead of pairs: connections [r*M, (r+1)*M) are the members
                                       of room ID+r (seeded beforehand); message k goes to room k mod
                                       rooms from its members in turn; every delivery is measured and
                                       acknowledged (as python-socketio does)
          --interval S                 with --message-rate: a JSON line every S seconds with that
                                       interval's acknowledged count, latency quantiles and errors
          --peer-tokens                tokens as the seeds' stack peer (../shared/peer) reads them: the
                                       user id in an integer 'id' claim, HS256, no issuer
          --redis-url URL --channel C  the fan-out benchmark's reference: N plain Redis subscribers of
                                       channel C instead of gateway sockets (each message's payload is
                                       its data: measured with --latency-field like events)

        Output: one status line per second, a line starting 'ramp complete' once every connection is
        connected, refused or failed, and a final JSON summary line. Exit status 0 when every
        connection was authenticated and none was lost before the end of the hold; 1 otherwise;
        2 for bad arguments.
        """

    /// Parses `arguments` (without the program name). `environment` supplies the JWT defaults.
    init(arguments: [String], environment: (String) -> String?) throws(LoadOptionsError) {
        jwtSecret = environment("JWT_SECRET") ?? ""
        if let issuer = environment("JWT_ISSUER") { jwtIssuer = issuer.isEmpty ? nil : issuer }
        if let audience = environment("JWT_AUDIENCE"), !audience.isEmpty { jwtAudience = audience }

        var remaining = arguments[...]
        while let flag = remaining.popFirst() {
            if flag == "--help" || flag == "-h" { throw .helpRequested }
            if flag == "--peer-tokens" {
                peerTokens = true
                continue
            }
            // Accept both `--flag value` and `--flag=value`.
            let name: String
            let value: String
            if let equals = flag.firstIndex(of: "="), flag.hasPrefix("--") {
                name = String(flag[..<equals])
                value = String(flag[flag.index(after: equals)...])
            } else {
                guard let next = remaining.popFirst() else { throw .missingValue(flag) }
                name = flag
                value = next
            }
            switch name {
            case "--url": (host, port) = try Self.parseURL(value)
            case "--connections": connections = try Self.integer(value, name, in: 1...10_000_000)
            case "--source-ips": sourceAddresses = try Self.parseSourceAddresses(value)
            case "--rate": rate = try Self.integer(value, name, in: 1...1_000_000)
            case "--max-in-flight": maxInFlight = try Self.integer(value, name, in: 1...1_000_000)
            case "--hold":
                holdSeconds = value == "forever" || value == "-1" ? nil : try Self.integer(value, name, in: 0...31_536_000)
            case "--jwt-secret": jwtSecret = value
            case "--jwt-issuer": jwtIssuer = value.isEmpty ? nil : value
            case "--jwt-audience": jwtAudience = value.isEmpty ? nil : value
            case "--user-base": userBase = Int64(try Self.integer(value, name, in: 1...Int(Int64.max / 2)))
            case "--ttl": tokenLifetimeSeconds = Int64(try Self.integer(value, name, in: 1...31_536_000))
            case "--handshake-timeout": handshakeTimeout = .milliseconds(try Self.integer(value, name, in: 1...3_600_000))
            case "--close-timeout": closeTimeout = .milliseconds(try Self.integer(value, name, in: 0...3_600_000))
            case "--latency-field":
                guard !value.isEmpty, value.utf8.count <= 64 else { throw .invalidValue(name, value, "a field name of 1-64 bytes") }
                latencyField = value
            case "--watch": watch = try Self.integer(value, name, in: 0...500)
            case "--message-rate": messageRate = try Self.integer(value, name, in: 0...10_000_000)
            case "--message-seconds": messageSeconds = try Self.integer(value, name, in: 1...86_400)
            case "--room-size": roomSize = try Self.integer(value, name, in: 2...100_000)
            case "--room-base": roomBase = Int64(try Self.integer(value, name, in: 1...Int(Int64.max / 2)))
            case "--interval": intervalSeconds = try Self.integer(value, name, in: 1...86_400)
            case "--receiver-url":
                let (receiverHost, receiverPort) = try Self.parseURL(value)
                self.receiverHost = receiverHost
                self.receiverPort = receiverPort
            case "--watch-range":
                let parts = value.split(separator: ":")
                guard parts.count == 2, let base = Int64(parts[0]), base > 0, let count = Int(parts[1]), count > 0 else {
                    throw .invalidValue(name, value, "BASE:COUNT with positive integers")
                }
                watchBase = base
                watchCount = count
            case "--redis-url":
                guard value.hasPrefix("redis://") else { throw .invalidValue(name, value, "a redis:// URL") }
                redisURL = value
            case "--channel":
                guard !value.isEmpty, value.utf8.count <= 256 else { throw .invalidValue(name, value, "a channel name of 1-256 bytes") }
                redisChannel = value
            case "--path":
                guard value.hasPrefix("/"), !value.contains(" "), !value.contains("\r"), !value.contains("\n") else {
                    throw .invalidValue(name, value, "a request target starting with '/' and without spaces")
                }
                path = value
            default: throw .unknownFlag(flag)
            }
        }
        if redisURL != nil {
            guard !redisChannel.isEmpty else { throw .missingValue("--channel") }
            return
        }
        guard !jwtSecret.isEmpty else { throw .missingSecret }
        if roomSize > 0 {
            guard roomBase > 0 else { throw .missingValue("--room-base") }
            guard connections % roomSize == 0 else {
                throw .invalidValue("--connections", String(connections), "a multiple of --room-size (\(roomSize))")
            }
        } else if messageRate > 0, connections < 2 || connections % 2 != 0 {
            throw .invalidValue("--connections", String(connections), "an even number (sender/receiver pairs) with --message-rate")
        }
    }

    /// `ws://host:port[/...]`, `http://...` or bare `host:port`; IPv6 in brackets.
    static func parseURL(_ text: String) throws(LoadOptionsError) -> (String, UInt16) {
        var rest = Substring(text)
        if rest.hasPrefix("wss://") || rest.hasPrefix("https://") {
            throw .invalidValue("--url", text, "a ws:// address (TLS is not supported)")
        }
        // With a scheme the URL default applies; a bare host:port defaults to the gateway's port.
        var defaultPort: UInt16 = 3000
        for scheme in ["ws://", "http://"] where rest.hasPrefix(scheme) {
            rest = rest.dropFirst(scheme.count)
            defaultPort = 80
        }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw .invalidValue("--url", text, "a closing ']' after the IPv6 address") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty {
                throw .invalidValue("--url", text, "':PORT' after the IPv6 address")
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        if host == "localhost" { host = "127.0.0.1" }
        var port = defaultPort
        if let portText {
            guard let parsed = UInt16(portText), parsed > 0 else { throw .invalidValue("--url", text, "a port in 1-65535") }
            port = parsed
        }
        guard SocketAddress(host: String(host), port: port) != nil else {
            throw .invalidValue("--url", text, "a numeric IPv4 or IPv6 host (names are not resolved)")
        }
        return (String(host), port)
    }

    /// Comma-separated addresses and IPv4 ranges `a.b.c.d-a.b.c.e` (or `a.b.c.d-e`).
    static func parseSourceAddresses(_ text: String) throws(LoadOptionsError) -> [String] {
        var addresses: [String] = []
        for part in text.split(separator: ",") {
            let item = part.trimmingSpaces
            guard !item.isEmpty else { continue }
            if let dash = item.firstIndex(of: "-") {
                let first = String(item[..<dash])
                var last = String(item[item.index(after: dash)...])
                guard let start = IPv4(first) else { throw .invalidValue("--source-ips", String(item), "an IPv4 range like 127.0.0.2-127.0.0.9") }
                if !last.contains("."), let octet = UInt32(last), octet <= 255 {
                    last = IPv4(start.value & 0xFFFF_FF00 | octet).description
                }
                guard let end = IPv4(last), end.value >= start.value, end.value - start.value < 65536 else {
                    throw .invalidValue("--source-ips", String(item), "an ascending IPv4 range of at most 65536 addresses")
                }
                for value in start.value...end.value { addresses.append(IPv4(value).description) }
            } else {
                guard SocketAddress(host: String(item), port: 0) != nil else {
                    throw .invalidValue("--source-ips", String(item), "a numeric IP address")
                }
                addresses.append(String(item))
            }
        }
        guard !addresses.isEmpty else { throw .invalidValue("--source-ips", text, "at least one address") }
        return addresses
    }

    private static func integer(_ text: String, _ name: String, in range: ClosedRange<Int>) throws(LoadOptionsError) -> Int {
        let digits = text.replacingUnderscores
        guard let value = Int(digits), range.contains(value) else {
            throw .invalidValue(name, text, "an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}

/// A command line ChatLoad cannot run with.
enum LoadOptionsError: Error, Equatable, CustomStringConvertible {
    case helpRequested
    case unknownFlag(String)
    case missingValue(String)
    case invalidValue(String, String, String)
    case missingSecret

    var description: String {
        switch self {
        case .helpRequested: "help requested"
        case .unknownFlag(let flag): "unknown option '\(flag)' (see --help)"
        case .missingValue(let flag): "option '\(flag)' needs a value"
        case .invalidValue(let flag, let value, let expected): "\(flag) '\(value)': expected \(expected)"
        case .missingSecret: "no JWT secret: pass --jwt-secret or set JWT_SECRET (the gateway's secret)"
        }
    }
}

/// An IPv4 address as a number, for ranges.
private struct IPv4: CustomStringConvertible {
    let value: UInt32

    init(_ value: UInt32) { self.value = value }

    init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard let octet = UInt32(part), octet <= 255, !part.isEmpty, part.count <= 3 else { return nil }
            value = value << 8 | octet
        }
        self.value = value
    }

    var description: String { "\(value >> 24).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)" }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: Substring {
        let text = Substring(self)
        guard let first = text.firstIndex(where: { $0 != " " }), let last = text.lastIndex(where: { $0 != " " }) else { return "" }
        return text[first...last]
    }

    /// `100_000` reads like `100000`.
    fileprivate var replacingUnderscores: String { String(filter { $0 != "_" }) }
}
