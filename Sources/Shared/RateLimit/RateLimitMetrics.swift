import Runtime
import Support

/// The rate limiters' metric families in `MetricsRegistry.shared`.
@LoopActor
package enum RateLimitMetrics {
    /// Requests refused by a rate limit.
    package static let rejections = MetricsRegistry.shared.counter(
        "chat_rate_limit_rejections_total", help: "Requests and events refused by a rate limit, by limit.",
        labelName: "limit", initialLabels: ["api", "messages", "login", "login-ip"])

    /// Limiter decisions taken without Redis (the configured failure mode), by limit.
    package static let fallbacks = MetricsRegistry.shared.counter(
        "chat_rate_limit_fallbacks_total", help: "Rate-limit decisions made without Redis (failure mode allow, deny or local), by limit.",
        labelName: "limit", initialLabels: ["api", "messages", "login", "login-ip"])
}
