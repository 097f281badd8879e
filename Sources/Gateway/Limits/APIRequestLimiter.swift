import Shared

/// The API limit (default 100 requests per minute) for every request under `/api/`: per user
/// when the request carries a valid access token, per client address otherwise. Every limited
/// response carries `RateLimit-Policy` and `RateLimit`; a refused one is 429 with `Retry-After`.
///
/// The subject comes from the token's signature and expiry alone (no revocation lookup): a revoked
/// but unexpired token still spends its own user's budget, which is what it should do.
@LoopActor
final class APIRequestLimiter: RequestLimiter {
    private let limiter: RateLimiter
    private let signer: JWTSigner
    private let trustedProxies: TrustedProxies
    private let clock: any LoopClock

    init(limiter: RateLimiter, signer: JWTSigner, trustedProxies: TrustedProxies, clock: any LoopClock = SystemClock.shared) {
        self.limiter = limiter
        self.clock = clock
        self.signer = signer
        self.trustedProxies = trustedProxies
    }

    /// Health, readiness, metrics and socket upgrades are never limited (probes, scrapers).
    func limits(path: String) -> Bool { path.hasPrefix("/api/") || path == "/api" }

    func admit(_ request: HTTPRequest, context: HTTPRequestContext) async -> RequestAdmission {
        let decision = await limiter.check(subject(of: request, context: context))
        let policy = limiter.policy
        let headers: HTTPHeaders = ["RateLimit-Policy": policy.policyHeader, "RateLimit": decision.header(for: policy)]
        return RequestAdmission(headers: headers, refusal: decision.refusal(policy, what: "too many requests"))
    }

    /// One unit of `userID`'s budget for a database-backed socket request (the same budget as the
    /// user's REST requests); the refusal when there is none left.
    func admit(userID: Int64) async -> APIError? {
        let decision = await limiter.check(Self.userSubject(userID))
        return decision.refusal(limiter.policy, what: "too many requests")
    }

    /// The subject of a user's requests, REST and socket alike.
    static func userSubject(_ userID: Int64) -> String { "user:\(userID)" }

    /// `user:<id>` for a valid token, else `ip:<client address>`.
    func subject(of request: HTTPRequest, context: HTTPRequestContext) -> String {
        if let token = BearerToken.parse(request.headers["Authorization"]),
           let claims = try? signer.verify(token, now: clock.wallSeconds()),
           let principal = try? Principal(verified: claims) {
            return Self.userSubject(principal.userID)
        }
        return "ip:" + trustedProxies.client(of: request, peer: context.peerAddress)
    }
}
