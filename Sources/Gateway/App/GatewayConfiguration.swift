import Shared

/// Everything the gateway reads from its environment.
struct GatewayConfiguration: Sendable {
    var common: CommonConfiguration
    var gatewayID: String
    var http: HTTPServerConfiguration
    /// The admin server (`/metrics`, `/health`, `/ready`), kept off the public port.
    var admin: HTTPServerConfiguration
    var jwtSecret: [UInt8]
    /// `JWT_ACCEPTED_SECRETS`: verified, never used to sign (a key rotation in progress).
    var jwtAcceptedSecrets: [[UInt8]]
    /// True when the secret was generated because none was given (development only).
    var jwtSecretGenerated: Bool
    var jwtIssuer: String?
    var jwtAudience: String?
    var jwtLeewaySeconds: Int64
    var accessTokenTTLSeconds: Int64
    var refreshTokenTTLSeconds: Int64
    var scrypt: ScryptParameters
    var hashThreads: Int
    var hashQueueDepth: Int
    /// Sign-ups and logins whose hash would wait longer than this are refused (503 `overloaded`
    /// with `Retry-After`), admitted by expected wait rather than queue depth (issue 17).
    var hashMaxWait: Duration
    var realtime: RealtimeConfiguration
    var messaging: MessagingConfiguration
    var limits: LimitsConfiguration
    var presence: PresenceConfiguration
    /// Whether the web client is served at /app/ (issue 15).
    var webApp: Bool

    static let settings: [Setting] = [
        Setting("HOST", "0.0.0.0", "address the HTTP/WebSocket server binds (numeric)"),
        Setting("PORT", "3000", "HTTP/WebSocket port; several gateways on one host may share it (SO_REUSEPORT)"),
        Setting("ADMIN_HOST", "0.0.0.0", "address of the admin HTTP server (/metrics, /health, /ready); keep it off the internet"),
        Setting("ADMIN_PORT", "9095", "admin HTTP port; give each gateway on a host its own (0 = any free port, logged)"),
        Setting("GATEWAY_ID", nil, "unique id of this gateway in the cluster [generated: hostname-pid-random]"),
        Setting("JWT_SECRET", nil, "HS256 signing secret, at least 32 bytes; required unless CHAT_ENV=development"),
        Setting("JWT_ACCEPTED_SECRETS", nil, "other HS256 secrets whose tokens are accepted but never issued, comma-separated (at most 3, each at least 32 bytes): the next or previous secret during a rotation (docs/OPERATIONS.md, \"JWT secret rotation\")"),
        Setting("JWT_ISSUER", "swift-chat", "the 'iss' claim issued and required"),
        Setting("JWT_AUDIENCE", nil, "the 'aud' claim issued and required, if set"),
        Setting("JWT_LEEWAY_SECONDS", "5", "clock skew tolerated when checking exp/iat/nbf"),
        Setting("ACCESS_TOKEN_TTL_SECONDS", "900", "access token lifetime"),
        Setting("REFRESH_TOKEN_TTL_SECONDS", "2592000", "refresh token lifetime (each rotation starts a new one)"),
        Setting("SCRYPT_LOG_N", "17", "scrypt cost: N = 2^SCRYPT_LOG_N (r=8, p=1); 17 uses 128 MiB per hash"),
        Setting("WEB_APP", nil, "serve the web client at /app/ (on/off) [on with CHAT_ENV=development, else off]"),
        Setting("HASH_THREADS", "2", "threads hashing passwords (off the event loop)"),
        Setting("HASH_QUEUE_DEPTH", "1000", "password hashes waiting beyond this are refused with 503 (a memory bound; HASH_MAX_WAIT_MS usually refuses first)"),
        Setting("HASH_MAX_WAIT_MS", "10000", "a sign-up or login whose hash would wait longer than this (queued hashes x their recent duration / HASH_THREADS) is refused with 503 overloaded and Retry-After"),
        Setting("HTTP_MAX_BODY_BYTES", "1048576", "largest request body (413 beyond)"),
        Setting("HTTP_MAX_HEADER_BYTES", "16384", "largest request head (431 beyond)"),
        Setting("HTTP_HEADER_TIMEOUT_MS", "10000", "a request must arrive whole within this time of its first byte (408)"),
        Setting("HTTP_IDLE_TIMEOUT_MS", "60000", "idle keep-alive connections are closed after this"),
        Setting("PROXY_PROTOCOL", "off", "on: every connection to PORT starts with a PROXY protocol header (v1 or v2) from an L4 load balancer (haproxy send-proxy-v2, cloud NLBs), whose client address stands for the TCP peer; with TRUSTED_PROXIES set, only those peers may connect"),
        Setting("MAX_CONNECTIONS", "100000", "open connections (HTTP and sockets) per gateway process (503 beyond)"),
        Setting("MAX_CONNECTIONS_PER_IP", "1000", "open sockets per client IP (429 beyond)"),
        Setting("ALLOWED_ORIGINS", nil, "browser origins allowed to open sockets, comma-separated; '*' only with CHAT_ENV=development [development: *; production: none, i.e. only clients that send no Origin]"),
        Setting("SOCKETIO_PING_INTERVAL_MS", "25000", "Engine.IO ping interval"),
        Setting("SOCKETIO_PING_TIMEOUT_MS", "20000", "Engine.IO pong deadline after each ping"),
        Setting("SOCKETIO_CONNECT_TIMEOUT_MS", "45000", "time a socket has to send its Socket.IO CONNECT"),
        Setting("SOCKETIO_MAX_PAYLOAD_BYTES", "1000000", "largest Engine.IO packet (WebSocket message) accepted (close 1009 beyond)"),
        Setting("WS_MAX_PENDING_BYTES", "1048576", "output queued for one socket beyond this disconnects it (slow consumer); from a quarter of it on, its input waits"),
    ] + RealtimeConfiguration.settings + MessagingConfiguration.settings + LimitsConfiguration.settings + PresenceConfiguration.settings + CommonConfiguration.settings(poolSize: 8)

    init(reader: SettingsReader) throws(ConfigurationError) {
        common = try CommonConfiguration(reader: reader)
        gatewayID = reader.optionalString("GATEWAY_ID") ?? InstanceID.generate(prefix: "gw")
        var http = HTTPServerConfiguration()
        http.host = try reader.string("HOST")
        http.port = UInt16(try reader.int("PORT", in: 0...65535))
        http.parserLimits.maxBodyBytes = try reader.int("HTTP_MAX_BODY_BYTES", in: 1024...(64 << 20))
        http.parserLimits.maxHeaderBytes = try reader.int("HTTP_MAX_HEADER_BYTES", in: 1024...(1 << 20))
        http.requestReadTimeout = try reader.milliseconds("HTTP_HEADER_TIMEOUT_MS", in: 100...600_000)
        http.idleTimeout = try reader.milliseconds("HTTP_IDLE_TIMEOUT_MS", in: 100...3_600_000)
        http.maxConnections = try reader.int("MAX_CONNECTIONS", in: 1...1_000_000)
        self.http = http
        admin = try .admin(reader: reader)

        if let secret = reader.optionalString("JWT_SECRET") {
            guard secret.utf8.count >= JWTSigner.minimumSecretLength else {
                throw ConfigurationError("JWT_SECRET", "must be at least \(JWTSigner.minimumSecretLength) bytes (got \(secret.utf8.count)); generate one with: openssl rand -base64 48")
            }
            jwtSecret = Array(secret.utf8)
            jwtSecretGenerated = false
        } else if common.isDevelopment {
            jwtSecret = SecureRandom.bytes(48)
            jwtSecretGenerated = true
        } else {
            throw ConfigurationError("JWT_SECRET", "is required in production (set CHAT_ENV=development to generate a throwaway one); generate one with: openssl rand -base64 48")
        }
        var accepted: [[UInt8]] = []
        for entry in (reader.optionalString("JWT_ACCEPTED_SECRETS") ?? "").split(separator: ",") {
            let secret = entry.trimmingSpaces()
            if secret.isEmpty { continue }
            guard secret.utf8.count >= JWTSigner.minimumSecretLength else {
                throw ConfigurationError("JWT_ACCEPTED_SECRETS", "each secret must be at least \(JWTSigner.minimumSecretLength) bytes")
            }
            accepted.append(Array(secret.utf8))
        }
        guard accepted.count < JWTSigner.maximumKeys else {
            throw ConfigurationError("JWT_ACCEPTED_SECRETS", "at most \(JWTSigner.maximumKeys - 1) secrets")
        }
        jwtAcceptedSecrets = accepted
        jwtIssuer = reader.optionalString("JWT_ISSUER")
        jwtAudience = reader.optionalString("JWT_AUDIENCE")
        jwtLeewaySeconds = Int64(try reader.int("JWT_LEEWAY_SECONDS", in: 0...300))
        accessTokenTTLSeconds = Int64(try reader.int("ACCESS_TOKEN_TTL_SECONDS", in: 1...86_400))
        refreshTokenTTLSeconds = Int64(try reader.int("REFRESH_TOKEN_TTL_SECONDS", in: 60...31_536_000))
        let logN = try reader.int("SCRYPT_LOG_N", in: ScryptParameters.logNRange)
        guard let scrypt = ScryptParameters(logN: logN, r: ScryptParameters.default.r, p: ScryptParameters.default.p) else {
            throw ConfigurationError("SCRYPT_LOG_N", "gives scrypt parameters out of range")
        }
        self.scrypt = scrypt
        hashThreads = try reader.int("HASH_THREADS", in: 1...64)
        hashQueueDepth = try reader.int("HASH_QUEUE_DEPTH", in: 1...100_000)
        hashMaxWait = try reader.milliseconds("HASH_MAX_WAIT_MS", in: 100...600_000)
        realtime = try RealtimeConfiguration(reader: reader, isDevelopment: common.isDevelopment)
        messaging = try MessagingConfiguration(reader: reader, isDevelopment: common.isDevelopment)
        limits = try LimitsConfiguration(reader: reader)
        if try reader.flag("PROXY_PROTOCOL") {
            self.http.proxyProtocol = ProxyProtocolPolicy(trustedPeers: limits.trustedProxies)
        }
        presence = try PresenceConfiguration(reader: reader)
        webApp = reader.optionalString("WEB_APP") == nil ? common.isDevelopment : try reader.flag("WEB_APP")
    }
}
