/// Checks a request's credentials and returns the caller, or throws the 401/503 to send.
@LoopActor
package protocol RequestAuthenticator: AnyObject {
    func authenticate(_ request: HTTPRequest) async throws -> Principal
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
        let method = request.method == .HEAD ? HTTPMethod.GET : request.method
        switch router.match(method, path: request.path) {
        case .notFound:
            completion(APIError.notFound("no route for \(request.method.rawValue) \(request.path)").response)
        case .methodNotAllowed(let allowed):
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            completion(APIError(.methodNotAllowed, code: "method_not_allowed",
                                message: "\(request.method.rawValue) is not allowed here; use \(allow)",
                                headers: ["Allow": allow]).response)
        case .found(let endpoint, let parameters):
            let apiRequest = APIRequest(http: request, context: context, parameters: parameters)
            switch endpoint {
            case .immediate(let handler):
                completion(handler(apiRequest))
            case .suspending(let handler, let authenticated):
                Task { @LoopActor in
                    completion(await self.run(handler, apiRequest, authenticated: authenticated))
                }
            }
        }
    }

    private func run(_ handler: Handler, _ request: APIRequest, authenticated: Bool) async -> HTTPResponse {
        var request = request
        do {
            if authenticated, let authenticator {
                request.principal = try await authenticator.authenticate(request.http)
            }
            return try await handler(request)
        } catch {
            let apiError = APIError.from(error)
            if apiError.status.code >= 500 {
                logger.warn("request failed", ["path": .string(request.http.path), "code": .string(apiError.code),
                                               "error": .string(String(describing: error)),
                                               "requestId": .string(request.context.requestID)])
            }
            return apiError.response
        }
    }
}

extension HTTPResponse {
    /// A JSON response from a value.
    package static func json(_ status: HTTPStatus = .ok, _ value: JSONValue) -> HTTPResponse {
        .json(status, value.serialized())
    }
}
