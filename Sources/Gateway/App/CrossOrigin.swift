import Shared

/// CORS for the REST API and long-polling (issue 15), with the sockets' `ALLOWED_ORIGINS`: a
/// preflight from an allowed origin is answered with the methods, headers and max age; every
/// answer to an allowed origin echoes it (never `*`, so credentials would work too) with
/// `Vary: Origin` and exposes the headers a client reads (rate limits, `Retry-After`, the request
/// id). A request from an origin that is not allowed is refused (403 `origin_not_allowed`) before it
/// runs: a browser would not let the page read the answer, and the request must not act either.
/// Pure: request headers in, headers or a refusal out.
struct CrossOrigin: Sendable {
    let origins: OriginPolicy

    static let allowedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    static let allowedHeaders = "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
    static let exposedHeaders = "RateLimit, RateLimit-Policy, Retry-After, X-Request-ID"
    /// How long a browser may cache a preflight (seconds).
    static let maxAgeSeconds = 600

    enum Decision: Sendable, Equatable {
        /// Not a cross-origin request (no `Origin`): nothing to add.
        case none
        /// Allowed: add these headers to the answer.
        case allow(HTTPHeaders)
        /// A preflight from an allowed origin: answer 204 with these headers.
        case preflight(HTTPHeaders)
        /// The origin is not allowed.
        case refuse
    }

    func decide(method: HTTPMethod, origin: String?, host: String?, requestsMethod: String?) -> Decision {
        guard let origin else { return .none }
        guard origins.allows(origin, host: host) else { return .refuse }
        var headers: HTTPHeaders = ["Access-Control-Allow-Origin": origin, "Vary": "Origin"]
        if method == .OPTIONS, requestsMethod != nil {
            headers.add(name: "Access-Control-Allow-Methods", value: Self.allowedMethods)
            headers.add(name: "Access-Control-Allow-Headers", value: Self.allowedHeaders)
            headers.add(name: "Access-Control-Max-Age", value: String(Self.maxAgeSeconds))
            return .preflight(headers)
        }
        headers.add(name: "Access-Control-Expose-Headers", value: Self.exposedHeaders)
        return .allow(headers)
    }
}

/// The public port's responder: CORS around everything, long-polling to the socket hub, the seed
/// dialects' REST paths rewritten to native ones, the rest to the API router.
@LoopActor
final class GatewayFrontDoor: HTTPResponder {
    private let router: APIRouter
    private let realtime: RealtimeHub
    private let crossOrigin: CrossOrigin
    /// The seed dialects' REST paths (issue 16).
    private let dialectRoutes: DialectRoutes

    init(router: APIRouter, realtime: RealtimeHub, origins: OriginPolicy, dialects: Set<Dialect>) {
        self.router = router
        self.realtime = realtime
        crossOrigin = CrossOrigin(origins: origins)
        dialectRoutes = DialectRoutes(enabled: dialects)
    }

    func respond(to request: HTTPRequest, context: HTTPRequestContext, completion: @escaping @LoopActor (HTTPResponse) -> Void) {
        var added = HTTPHeaders()
        switch crossOrigin.decide(method: request.method, origin: request.headers["Origin"], host: request.headers["Host"],
                                  requestsMethod: request.headers["Access-Control-Request-Method"]) {
        case .none:
            break
        case .refuse:
            // Long-polling answers in the reference server's shape (`{"code": 4, "message": "Forbidden"}`).
            var response = RealtimeHub.isEngineIOPath(request.path)
                ? PollingAnswer.engineError(.forbidden, status: .forbidden).response
                : APIError(.originNotAllowed, message: "this origin may not call this API (ALLOWED_ORIGINS)").response
            response.headers.add(name: "Vary", value: "Origin")
            return completion(response)
        case .preflight(let headers):
            return completion(HTTPResponse(status: .noContent, headers: headers))
        case .allow(let headers):
            added = headers
        }
        let finish: @LoopActor (HTTPResponse) -> Void = { response in
            guard !added.isEmpty else { return completion(response) }
            var response = response
            response.headers.replaceOrAdd(contentsOf: added)
            completion(response)
        }
        if RealtimeHub.isEngineIOPath(request.path) {
            realtime.respondPolling(request, context: context, completion: finish)
        } else if let rewrite = dialectRoutes.rewrite(request) {
            router.respond(to: rewrite.request, context: context) { finish(DialectRoutes.reshape($0, rewrite.reshape)) }
        } else {
            router.respond(to: request, context: context, completion: finish)
        }
    }
}
