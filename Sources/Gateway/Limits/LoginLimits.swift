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

    /// A login attempt for `account` (the email or username as typed; normalised here).
    func checkLogin(account: String, request: APIRequest) async throws(APIError) {
        let address = clientAddress(request)
        // Both decisions are in flight at once; each counts the attempt.
        let accountDecision = perAccount.map { limiter in
            Task { @LoopActor in (limiter.policy, await limiter.check(Self.accountKey(account))) }
        }
        if let perAddress { try Self.enforce(perAddress.policy, await perAddress.check(address)) }
        if let (policy, decision) = await accountDecision?.value { try Self.enforce(policy, decision) }
    }

    /// A sign-up attempt (per address only).
    func checkSignup(request: APIRequest) async throws(APIError) {
        guard let perAddress else { return }
        try Self.enforce(perAddress.policy, await perAddress.check(clientAddress(request)))
    }

    private func clientAddress(_ request: APIRequest) -> String {
        trustedProxies.client(of: request.http, peer: request.context.peerAddress)
    }

    /// One key per account however it is typed: trimmed and lowercased (emails and usernames are
    /// both matched case-insensitively at login).
    static func accountKey(_ account: String) -> String {
        String(Substring(account).trimmingSpaces()).lowercased()
    }

    private static func enforce(_ policy: RateLimitPolicy, _ decision: RateLimitDecision) throws(APIError) {
        guard var error = decision.refusal(policy, what: "too many login attempts") else { return }
        // One name for clients: both limits are "login"; the policy name stays in the metric.
        if error.status == .tooManyRequests { error.details["limit"] = "login" }
        throw error
    }
}
