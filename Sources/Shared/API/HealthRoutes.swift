import HTTP
import JSON
import Runtime
import Support

/// Whether a process can take traffic, as `GET /ready` reports it (issue 18).
///
/// Three answers, so that a balancer or Kubernetes takes a process out of rotation only when
/// another one could do better:
/// - **not ready** (503): the process cannot serve at all: it is starting (waiting for Postgres,
///   applying or waiting for the schema; the reason says which), draining, or one of its
///   dependencies has been down for longer than `grace` (a partition of this process alone, or an
///   outage long enough that answering errors fast beats keeping clients connected);
/// - **degraded** (200): a dependency is down for less than `grace`. Postgres and Redis are shared
///   by every process, so a short blip (a Redis failover, a Postgres restart) hits them all at
///   once: taking every gateway out of rotation would turn a few seconds of failed sends into a
///   full outage and a reconnect storm;
/// - **ready** (200): every dependency answers.
@LoopActor
package final class Readiness {
    /// Where the process is in its life.
    package enum Phase: Equatable, Sendable {
        /// Not serving yet; the text says what it waits for.
        case starting(String)
        case serving
        case draining
    }

    /// A dependency and its probe (each probe has its own timeout).
    package typealias Check = (name: String, probe: @LoopActor () async -> Bool)

    package var phase: Phase = .starting("starting")
    /// Probed while serving; set once the clients exist.
    package var checks: [Check] = []
    /// How long a dependency may be down before the process reports it cannot serve.
    package let grace: Duration
    /// When each dependency's current outage was first seen (monotonic nanoseconds).
    private var downSince: [String: UInt64] = [:]
    /// Whether the last probe found a dependency down past the grace.
    private var failing = false

    /// What `/ready` would answer, as of the last probe of the dependencies: 200 (ready or
    /// degraded) or not (`chat_ready`).
    package var isReady: Bool { phase == .serving && !failing }

    package init(grace: Duration) {
        self.grace = grace
    }

    /// The `/ready` answer.
    package func response() async -> HTTPResponse {
        switch phase {
        case .starting(let reason):
            return notReady(reason: reason, checks: nil)
        case .draining:
            return notReady(reason: "draining", checks: nil)
        case .serving:
            break
        }
        var results = JSONObject()
        var degraded: [String] = []
        var failed: [String] = []
        for check in checks {
            let up = await check.probe()
            results[check.name] = .string(up ? "up" : "down")
            Self.dependencyUp.set(check.name, up ? 1 : 0)
            let now = MonotonicClock.now()
            guard !up else {
                downSince[check.name] = nil
                continue
            }
            let since = downSince[check.name] ?? now
            downSince[check.name] = since
            if Duration.between(since, now) >= grace { failed.append(check.name) } else { degraded.append(check.name) }
        }
        failing = !failed.isEmpty
        if !failed.isEmpty {
            return notReady(reason: "unavailable: \(failed.joined(separator: ", "))", checks: results)
        }
        if !degraded.isEmpty {
            return .json(.ok, ["status": "degraded", "checks": .object(results),
                               "degraded": .array(degraded.map { .string($0) })])
        }
        return .json(.ok, ["status": "ready", "checks": .object(results)])
    }

    /// Per dependency: 1 if it answered the last probe (`chat_dependency_up`).
    package static let dependencyUp = MetricsRegistry.shared.labeledGauge(
        "chat_dependency_up", help: "Whether a dependency (postgres, redis) answered the last readiness probe.", labelName: "dependency")

    private func notReady(reason: String, checks: JSONObject?) -> HTTPResponse {
        var body: JSONObject = [
            // The readiness status and the error code are the same word.
            "status": .string(ErrorCode.notReady.name),
            "reason": .string(reason),
            "error": APIError(.notReady, message: reason).json,
        ]
        if let checks { body["checks"] = .object(checks) }
        var response = HTTPResponse.json(.serviceUnavailable, .object(body))
        response.headers.replaceOrAdd(name: "Retry-After", value: "1")
        return response
    }
}

/// `GET /health` (the process and its loop answer: liveness, from the first moment the process
/// listens) and `GET /ready` (`Readiness`).
@LoopActor
package enum HealthRoutes {
    /// Adds both routes.
    package static func register(on router: APIRouter, service: String, readiness: Readiness) {
        router.addImmediate(.GET, "/health") { _ in
            .json(.ok, ["status": "ok", "service": .string(service)])
        }
        router.add(.GET, "/ready") { _ in await readiness.response() }
    }
}
