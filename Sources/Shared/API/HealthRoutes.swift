import HTTP
import JSON
import Runtime

/// `GET /health` (the process answers) and `GET /ready` (its dependencies answer too).
@LoopActor
package enum HealthRoutes {
    /// Adds both routes. `checks` name each dependency and probe it; each probe has its own timeout.
    package static func register(on router: APIRouter, service: String, checks: [(name: String, probe: @LoopActor () async -> Bool)]) {
        router.addImmediate(.GET, "/health") { _ in
            .json(.ok, ["status": "ok", "service": .string(service)])
        }
        router.add(.GET, "/ready") { _ in
            var results = JSONObject()
            var ready = true
            for check in checks {
                let up = await check.probe()
                results[check.name] = .string(up ? "up" : "down")
                ready = ready && up
            }
            if ready { return .json(.ok, ["status": "ready", "checks": .object(results)]) }
            let down = results.filter { $0.value == .string("down") }.map(\.key).joined(separator: ", ")
            return .json(.serviceUnavailable, [
                // The readiness status and the error code are the same word.
                "status": .string(ErrorCode.notReady.name),
                "checks": .object(results),
                "error": APIError(.notReady, message: "unavailable: \(down)").json,
            ])
        }
    }
}
