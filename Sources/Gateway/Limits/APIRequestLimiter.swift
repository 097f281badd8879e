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

    init(limiter: RateLimiter, signer: JWTSigner, trustedProxies: TrustedProxies) {
        self.limiter = limiter
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

    /// `user:<id>` for a valid token, else `ip:<client address>`.
    func subject(of request: HTTPRequest, context: HTTPRequestContext) -> String {
        if let token = BearerToken.parse(request.headers["Authorization"]),
           let claims = try? signer.verify(token, now: WallClock.seconds()),
           let userID = Int64(claims.subject), userID > 0 {
            return "user:\(userID)"
        }
        return "ip:" + trustedProxies.client(of: request, peer: context.peerAddress)
    }
}
