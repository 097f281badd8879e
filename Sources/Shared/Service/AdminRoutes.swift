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
        return router
    }
}
