import Shared

/// Limits against password guessing: attempts per account (whatever the address) and per client
/// address (whatever the account; sign-ups count too, since each costs a password hash). Both are
/// decided before any hashing, so a flood costs the server one script call per attempt.
@LoopActor
final class LoginLimits {
    private let perAccount: RateLimiter?
    private let perAddress: RateLimiter?
    private let trustedProxies: TrustedProxies

    init(perAccount: RateLimiter?, perAddress: RateLimiter?, trustedProxies: TrustedProxies) {
        self.perAccount = perAccount
        self.perAddress = perAddress
        self.trustedProxies = trustedProxies
    }

    /// A login attempt from the request's address (checked before the account is looked up).
    func checkLoginAddress(request: APIRequest) async throws(APIError) {
        guard let perAddress else { return }
        try Self.enforce(perAddress.policy, await perAddress.check(clientAddress(request)))
    }

    /// A login attempt for an account: `accountKey(userID:)` when the identifier names one, else
    /// `unknownAccountKey(_:)`, so an account has one budget whether it is named by email or by
    /// username, and guesses at accounts that do not exist are limited too.
    func checkLoginAccount(_ key: String) async throws(APIError) {
        guard let perAccount else { return }
        try Self.enforce(perAccount.policy, await perAccount.check(key))
    }

    /// A sign-up attempt (per address only).
    func checkSignup(request: APIRequest) async throws(APIError) {
        guard let perAddress else { return }
        try Self.enforce(perAddress.policy, await perAddress.check(clientAddress(request)))
    }

    private func clientAddress(_ request: APIRequest) -> String {
        trustedProxies.client(of: request.http, peer: request.context.peerAddress)
    }

    /// The per-account key of an existing account: its id, however the login named it.
    static func accountKey(userID: Int64) -> String { "user:\(userID)" }

    /// The per-account key of an identifier that names no account: trimmed and lowercased
    /// (emails and usernames are both matched case-insensitively at login).
    static func unknownAccountKey(_ identifier: String) -> String {
        "name:" + String(Substring(identifier).trimmingSpaces()).lowercased()
    }

    private static func enforce(_ policy: RateLimitPolicy, _ decision: RateLimitDecision) throws(APIError) {
        guard var error = decision.refusal(policy, what: "too many login attempts") else { return }
        // One name for clients: both limits are "login"; the policy name stays in the metric.
        if error.status == .tooManyRequests { error.details["limit"] = "login" }
        throw error
    }
}
