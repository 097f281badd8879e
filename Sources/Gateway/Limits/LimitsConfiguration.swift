import Shared

/// The gateway's rate limits and how it finds a client's address behind proxies.
struct LimitsConfiguration: Sendable {
    /// Requests per window under `/api/`, per user (valid bearer token) or per client address.
    var api: RateLimitPolicy?
    var apiFailureMode: RateLimitFailureMode
    /// Login attempts per account identifier.
    var loginAccount: RateLimitPolicy?
    /// Login and sign-up attempts per client address.
    var loginAddress: RateLimitPolicy?
    var loginFailureMode: RateLimitFailureMode
    /// Rooms a user may create per window (issue 13).
    var roomCreation: RateLimitPolicy?
    /// Peers whose `X-Forwarded-For` is believed.
    var trustedProxies: TrustedProxies

    static let settings: [Setting] = [
        Setting("RATE_LIMIT_API", "100/1m",
                "requests under /api/ per sliding window, per user (bearer token) or per client address when anonymous (<count>/<window: ms|s|m|h>, or off)"),
        Setting("RATE_LIMIT_API_ON_REDIS_ERROR", "local",
                "when the limit script fails: local (this gateway's own sliding log), allow, or deny (503 rate_limiter_unavailable)"),
        Setting("RATE_LIMIT_LOGIN_ACCOUNT", "10/15m", "login attempts per account (email or username) per sliding window, or off"),
        Setting("RATE_LIMIT_LOGIN_IP", "50/15m", "login and sign-up attempts per client address per sliding window, or off"),
        Setting("RATE_LIMIT_LOGIN_ON_REDIS_ERROR", "local", "failure mode of the two login limits: local, allow or deny"),
        Setting("RATE_LIMIT_ROOM_CREATE", "10/1h", "rooms a user may create per sliding window (createRoom, POST /api/rooms), or off"),
        Setting("TRUSTED_PROXIES", "",
                "comma-separated addresses or CIDR networks of load balancers whose X-Forwarded-For is trusted (empty: use the peer address)"),
    ]

    init(reader: SettingsReader) throws(ConfigurationError) {
        api = try reader.rateLimit("RATE_LIMIT_API", policyName: "api")
        apiFailureMode = try reader.rateLimitFailureMode("RATE_LIMIT_API_ON_REDIS_ERROR")
        loginAccount = try reader.rateLimit("RATE_LIMIT_LOGIN_ACCOUNT", policyName: "login")
        loginAddress = try reader.rateLimit("RATE_LIMIT_LOGIN_IP", policyName: "login-ip")
        loginFailureMode = try reader.rateLimitFailureMode("RATE_LIMIT_LOGIN_ON_REDIS_ERROR")
        roomCreation = try reader.rateLimit("RATE_LIMIT_ROOM_CREATE", policyName: "room-create")
        do {
            trustedProxies = try TrustedProxies(parsing: reader.optionalString("TRUSTED_PROXIES") ?? "")
        } catch {
            throw ConfigurationError("TRUSTED_PROXIES", String(describing: error))
        }
    }
}
