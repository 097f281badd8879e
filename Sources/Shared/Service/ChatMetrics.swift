import Glibc
import HTTP
import Postgres
import RateLimit
import Redis
import Runtime
import Support

/// The metric families both services export, declared by the layer each belongs to
/// (`HTTPMetrics`, `PostgresMetrics`, `RedisMetrics`, `RateLimitMetrics`), registered together so
/// they appear at zero from the start, and the `GET /metrics` response.
@LoopActor
package enum ChatMetrics {
    /// Registers the families both services export, and the process metrics; call once, at startup
    /// (it sets `process_start_time_seconds`).
    package static func registerCommon() {
        _ = HTTPMetrics.requests
        _ = HTTPMetrics.unavailable
        _ = PostgresMetrics.queryDuration
        _ = RedisMetrics.commandDuration
        _ = RateLimitMetrics.rejections
        _ = RateLimitMetrics.fallbacks
        ProcessMetrics.register(in: MetricsRegistry.shared)
    }

    /// The `GET /metrics` response: the shared registry in the text format.
    package static func response() -> HTTPResponse {
        HTTPResponse(status: .ok, headers: ["Content-Type": PrometheusText.contentType],
                     body: Array(MetricsRegistry.shared.render().utf8))
    }
}
