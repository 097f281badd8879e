import HTTP
import JSON
import Runtime
import Support

/// Checks a request's credentials and returns the caller, or throws the 401/503 to send.
@LoopActor
package protocol RequestAuthenticator: AnyObject {
    func authenticate(_ request: HTTPRequest) async throws -> Principal
}

/// Decides whether an API request may run (a rate limit), before authentication and the handler.
@LoopActor
package protocol RequestLimiter: AnyObject {
    /// Which paths are limited (others are answered without asking).
    func limits(path: String) -> Bool
    /// Headers for the response (`RateLimit-Policy`, `RateLimit`), and the refusal if refused.
    func admit(_ request: HTTPRequest, context: HTTPRequestContext) async -> RequestAdmission
}

/// A limiter's answer for one request.
package struct RequestAdmission: Sendable {
    /// Added to the response whatever it is.
    package var headers: HTTPHeaders
    /// Set when the request must not run: answered with this error (429, or 503 when the limiter
    /// is set to deny without Redis).
    package var refusal: APIError?

    package init(headers: HTTPHeaders = HTTPHeaders(), refusal: APIError? = nil) {
        self.headers = headers
        self.refusal = refusal
    }
}

/// Routes requests to handlers, authenticates where asked, and turns every thrown error into the
/// house error response. Unknown path → 404, known path with another method → 405 with `Allow`.
@LoopActor
package final class APIRouter: HTTPResponder {
    /// A handler that may suspend (database, Redis, thread pool).
    package typealias Handler = @LoopActor (APIRequest) async throws -> HTTPResponse
    /// A handler that answers at once (health): no task is created for it.
    package typealias ImmediateHandler = @LoopActor (APIRequest) -> HTTPResponse

    private enum Endpoint {
        case immediate(ImmediateHandler)
        case suspending(Handler, authenticated: Bool)
    }

    private var router = Router<Endpoint>()
    private let authenticator: (any RequestAuthenticator)?
    private let logger: Logger
    /// Consulted before every limited request (its paths), routed or not.
    package var limiter: (any RequestLimiter)?

    package init(authenticator: (any RequestAuthenticator)?, logger: Logger) {
        self.authenticator = authenticator
        self.logger = logger
    }

    /// Adds a handler that answers synchronously.
    package func addImmediate(_ method: HTTPMethod, _ path: String, _ handler: @escaping ImmediateHandler) {
        router.add(method, path, .immediate(handler))
    }

    /// Adds a handler; `authenticated` routes get `request.principal` or a 401 before the handler runs.
    package func add(_ method: HTTPMethod, _ path: String, authenticated: Bool = false, _ handler: @escaping Handler) {
        precondition(!authenticated || authenticator != nil, "authenticated route \(path) needs an authenticator")
        router.add(method, path, .suspending(handler, authenticated: authenticated))
    }

    package func respond(to request: HTTPRequest, context: HTTPRequestContext, completion: @escaping @LoopActor (HTTPResponse) -> Void) {
        guard let limiter, limiter.limits(path: request.path) else {
            return route(request, context: context, admission: nil, completion: completion)
        }
        // The decision starts now; its round trip overlaps the route's authentication (both on the
        // same Redis connection, pipelined), and the handler runs only once the request is admitted.
        // Every answer is produced after the decision was awaited, so its headers are in `decided`
        // by then (no extra task hop per response).
        let decided = DecidedAdmission()
        let admission = Task.onLoop {
            let result = await limiter.admit(request, context: context)
            decided.value = result
            return result
        }
        route(request, context: context, admission: admission) { response in
            var response = response
            if let headers = decided.value?.headers { response.headers.replaceOrAdd(contentsOf: headers) }
            completion(response)
        }
    }

    /// Routes and answers; with `admission`, nothing runs past authentication before it allows.
    private func route(_ request: HTTPRequest, context: HTTPRequestContext, admission: Task<RequestAdmission, Never>?,
                       completion: @escaping @LoopActor (HTTPResponse) -> Void) {
        if let admission {
            switch router.match(request.method == .HEAD ? .GET : request.method, path: request.path) {
            case .found(.suspending, _):
                break  // `run` waits for the decision after authenticating.
            default:
                Task.onLoop {
                    if let refusal = await admission.value.refusal { return completion(refusal.response) }
                    self.route(request, context: context, admission: nil, completion: completion)
                }
                return
            }
        }
        let method = request.method == .HEAD ? HTTPMethod.GET : request.method
        switch router.match(method, path: request.path) {
        case .notFound:
            completion(APIError.notFound("no route for \(request.method.rawValue) \(request.path)").response)
        case .methodNotAllowed(let allowed):
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            completion(APIError(.methodNotAllowed,
                                message: "\(request.method.rawValue) is not allowed here; use \(allow)",
                                headers: ["Allow": allow]).response)
        case .found(let endpoint, let parameters):
            let apiRequest = APIRequest(http: request, context: context, parameters: parameters)
            switch endpoint {
            case .immediate(let handler):
                completion(handler(apiRequest))
            case .suspending(let handler, let authenticated):
                Task.onLoop {
                    completion(await self.run(handler, apiRequest, authenticated: authenticated, admission: admission))
                }
            }
        }
    }

    private func run(_ handler: Handler, _ request: APIRequest, authenticated: Bool,
                     admission: Task<RequestAdmission, Never>?) async -> HTTPResponse {
        var request = request
        do {
            var authenticationError: (any Error)?
            if authenticated, let authenticator {
                do {
                    request.principal = try await authenticator.authenticate(request.http)
                } catch {
                    authenticationError = error
                }
            }
            // A refusal wins over a failed authentication: a client guessing tokens is limited too.
            if let refusal = await admission?.value.refusal { return refusal.response }
            if let authenticationError { throw authenticationError }
            return try await handler(request)
        } catch {
            let apiError = APIError.from(error)
            if apiError.status.code >= 500 {
                logger.warn("request failed", ["path": .string(request.http.path), "code": .string(apiError.code.name),
                                               "error": .string(String(describing: error)),
                                               "requestId": .string(request.context.requestID)])
            }
            return apiError.response
        }
    }
}

/// A limiter's decision once made, readable without awaiting.
@LoopActor
private final class DecidedAdmission {
    var value: RequestAdmission?
}

extension HTTPResponse {
    /// A JSON response from a value.
    package static func json(_ status: HTTPStatus = .ok, _ value: JSONValue) -> HTTPResponse {
        .json(status, value.serialized())
    }
}
