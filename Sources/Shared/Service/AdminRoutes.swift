import API
import HTTP
import Support
import Runtime

/// The admin port's routes (`/health`, `/ready`, `/metrics`) of either process. The admin server
/// starts before anything else, so probes get an answer while the process waits for Postgres or
/// the schema: alive, not ready, and why (issue 18).
@LoopActor
package enum AdminRoutes {
    package static func router(service: String, readiness: Readiness, logger: Logger) -> APIRouter {
        let router = APIRouter(authenticator: nil, logger: logger)
        HealthRoutes.register(on: router, service: service, readiness: readiness)
        router.addImmediate(.GET, "/metrics") { _ in ChatMetrics.response() }
        _ = MetricsRegistry.shared.gauge("chat_ready", help: "1 when /ready answers 200 (ready or degraded), as of its last probe; 0 while starting, draining or failing.") {
            [weak readiness] in readiness?.isReady == true ? 1 : 0
        }
        _ = Readiness.dependencyUp
        return router
    }
}
