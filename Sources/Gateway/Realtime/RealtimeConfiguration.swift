import Shared

/// Socket settings of the gateway.
struct RealtimeConfiguration: Sendable {
    var pingInterval: Duration
    var pingTimeout: Duration
    var connectTimeout: Duration
    var maxPayloadBytes: Int
    var maxConnectionsPerIP: Int
    var origins: OriginPolicy
    var webSocket: WebSocketConfiguration
    /// Events per socket (token bucket) and when a flood closes the socket.
    var eventBudget: SocketEventBudget.Configuration
    /// What every Engine.IO session id of this gateway starts with (`<route>.`), so a polling
    /// request is relayed to it, or routed to it by a load balancer; nil: random per process.
    var route: String?
    /// How long after a disconnection a client may recover its session (issue 15); zero: off.
    var recoveryWindow: Duration
    /// The seed dialects served and the sockets' default one (issue 16).
    var dialects: DialectConfiguration
    /// On shutdown, the window over which the sockets are closed (evenly, in random order), so
    /// their reconnections reach the other gateways as a stream rather than a spike (issue 18).
    var drainSpread: Duration

    /// Its own settings and the dialects' (which it reads).
    static let settings: [Setting] = DialectConfiguration.settings + [
        Setting("SOCKET_EVENT_RATE", "50", "events per second one socket may send, sustained (rate_limited beyond)"),
        Setting("SOCKET_EVENT_BURST", "100", "events one socket may send at once after a quiet period"),
        Setting("RECOVERY_WINDOW_MS", "120000", "how long a disconnected Socket.IO client may recover its session (pid + offset) and get what it missed; 0 turns connection state recovery off"),
        Setting("GATEWAY_ROUTE", nil, "prefix of this gateway's Engine.IO session ids (1-32 of A-Z a-z 0-9 - _), unique in the cluster; set it when the load balancer routes long-polling on it [random]"),
        Setting("SOCKET_EVENT_FLOOD_CLOSE", "200", "refused events within 10 s that close the socket (event_flood, close 1008); 0 never closes"),
        Setting("DRAIN_SPREAD_MS", "0", "on SIGTERM, close the sockets evenly over this window (their clients reconnect to other gateways at N/window per second) before SHUTDOWN_GRACE_MS; 0 closes all at once"),
    ]

    init(reader: SettingsReader, isDevelopment: Bool) throws(ConfigurationError) {
        pingInterval = try reader.milliseconds("SOCKETIO_PING_INTERVAL_MS", in: 100...600_000)
        pingTimeout = try reader.milliseconds("SOCKETIO_PING_TIMEOUT_MS", in: 100...600_000)
        connectTimeout = try reader.milliseconds("SOCKETIO_CONNECT_TIMEOUT_MS", in: 100...600_000)
        maxPayloadBytes = try reader.int("SOCKETIO_MAX_PAYLOAD_BYTES", in: 1024...(64 << 20))
        maxConnectionsPerIP = try reader.int("MAX_CONNECTIONS_PER_IP", in: 1...1_000_000)
        origins = try OriginPolicy(list: reader.optionalString("ALLOWED_ORIGINS") ?? (isDevelopment ? "*" : ""))
        if origins.allowsAny && !isDevelopment {
            throw ConfigurationError("ALLOWED_ORIGINS", "'*' is only allowed with CHAT_ENV=development; list the web app's origins")
        }
        var webSocket = WebSocketConfiguration()
        webSocket.limits.maxMessageBytes = maxPayloadBytes
        webSocket.limits.maxFrameBytes = maxPayloadBytes
        webSocket.maxPendingWriteBytes = try reader.int("WS_MAX_PENDING_BYTES", in: 4096...(256 << 20))
        webSocket.idleTimeout = nil  // Engine.IO pings decide liveness.
        self.webSocket = webSocket
        recoveryWindow = try reader.milliseconds("RECOVERY_WINDOW_MS", in: 0...86_400_000)
        drainSpread = try reader.milliseconds("DRAIN_SPREAD_MS", in: 0...600_000)
        dialects = try DialectConfiguration(reader: reader)
        route = reader.optionalString("GATEWAY_ROUTE")
        if let route, !Self.isValidRoute(route) {
            throw ConfigurationError("GATEWAY_ROUTE", "must be 1 to \(Self.maxRouteLength) characters of A-Z a-z 0-9 - _")
        }
        eventBudget = SocketEventBudget.Configuration(
            ratePerSecond: try reader.int("SOCKET_EVENT_RATE", in: SocketEventBudget.Configuration.rateRange),
            burst: try reader.int("SOCKET_EVENT_BURST", in: SocketEventBudget.Configuration.burstRange),
            floodRefusals: try reader.int("SOCKET_EVENT_FLOOD_CLOSE", in: SocketEventBudget.Configuration.floodRange))
    }

    /// Longest `GATEWAY_ROUTE`.
    static let maxRouteLength = 32

    /// Whether `route` may name a gateway (`GATEWAY_ROUTE`): 1 to 32 of `A-Z a-z 0-9 - _`.
    static func isValidRoute(_ route: String) -> Bool {
        !route.isEmpty && route.utf8.count <= maxRouteLength && route.utf8.allSatisfy(isURLSafe)
    }

    /// `A-Z a-z 0-9 - _`: what a session id is made of.
    static func isURLSafe(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"): true
        default: false
        }
    }
}
