import Shared

/// Socket settings of the gateway.
struct RealtimeConfiguration: Sendable {
    var pingIntervalMilliseconds: Int64
    var pingTimeoutMilliseconds: Int64
    var connectTimeoutMilliseconds: Int64
    var maxPayloadBytes: Int
    var maxConnectionsPerIP: Int
    var origins: OriginPolicy
    var webSocket: WebSocketConfiguration

    init(reader: SettingsReader, isDevelopment: Bool) throws(ConfigurationError) {
        pingIntervalMilliseconds = Int64(try reader.int("SOCKETIO_PING_INTERVAL_MS", in: 100...600_000))
        pingTimeoutMilliseconds = Int64(try reader.int("SOCKETIO_PING_TIMEOUT_MS", in: 100...600_000))
        connectTimeoutMilliseconds = Int64(try reader.int("SOCKETIO_CONNECT_TIMEOUT_MS", in: 100...600_000))
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
        webSocket.idleTimeoutMilliseconds = nil  // Engine.IO pings decide liveness.
        self.webSocket = webSocket
    }
}
