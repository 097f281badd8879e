import Testing

@testable import Shared

/// `APIRouter` behind an `HTTPServer` over in-memory connections, with a token authenticator and a
/// rate limiter played by test doubles: routing (404, 405 with `Allow`, path and query parameters),
/// authentication, the house error body for thrown errors, the limiter's headers and refusals, JSON
/// bodies, and the health routes.
@Suite struct APIRouterTests {
    init() { EventLoop.shared.startInBackground() }

    /// `good` is user 42, `expired` is refused as expired, any other token as badly signed.
    @LoopActor
    final class TokenAuthenticator: RequestAuthenticator {
        static let principal = Principal(userID: 42, tokenID: "jti-42", sessionID: "sid-42", expiresAt: 1_700_003_600)
        private(set) var calls = 0

        func authenticate(_ request: HTTPRequest) async throws -> Principal {
            calls += 1
            guard let token = BearerToken.parse(request.headers["Authorization"]) else { throw APIError.unauthorized(.tokenMissing) }
            switch token {
            case "good": return Self.principal
            case "expired": throw APIError.unauthorized(.tokenExpired)
            default: throw APIError.unauthorized(.tokenSignature)
            }
        }
    }

    /// Limits paths under `/limited`; admits with its headers unless `refusal` is set.
    @LoopActor
    final class ScriptedLimiter: RequestLimiter {
        static let headers: HTTPHeaders = ["RateLimit-Policy": "\"api\";q=10;w=60", "RateLimit": "\"api\";r=9;t=60"]
        var refusal: APIError?
        /// When set, each decision waits until `releaseHeld()`.
        var holdsDecisions = false
        private(set) var held: CheckedContinuation<Void, Never>?
        /// Paths the router asked about, and paths it asked to admit.
        private(set) var asked: [String] = []
        private(set) var admitted: [String] = []

        func releaseHeld() {
            held?.resume()
            held = nil
        }

        func limits(path: String) -> Bool {
            asked.append(path)
            return path.hasPrefix("/limited")
        }

        func admit(_ request: HTTPRequest, context: HTTPRequestContext) async -> RequestAdmission {
            admitted.append(request.path)
            if holdsDecisions { await withCheckedContinuation { held = $0 } }
            return RequestAdmission(headers: Self.headers, refusal: refusal)
        }
    }

    /// An error whose text must never reach a client.
    struct LeakyFailure: Error, CustomStringConvertible {
        var description: String { "connection to db.internal:5432 failed for user admin password hunter2" }
    }

    /// The handlers that ran, by route.
    @LoopActor
    final class HandlerLog {
        var runs: [String] = []
    }

    @LoopActor
    final class Fixture {
        let clock = ManualClock(wallMilliseconds: fixedWallMilliseconds)
        let authenticator = TokenAuthenticator()
        let limiter = ScriptedLimiter()
        let log = HandlerLog()
        let router: APIRouter
        let server: HTTPServer

        init(limited: Bool = false) {
            router = APIRouter(authenticator: authenticator, logger: quietLogger)
            if limited { router.limiter = limiter }
            server = HTTPServer(configuration: HTTPServerConfiguration(), responder: router, logger: quietLogger, clock: clock)
            let log = log
            router.add(.GET, "/items") { _ in
                log.runs.append("list")
                return .json(.ok, ["items": []])
            }
            router.add(.POST, "/items") { _ in
                log.runs.append("create")
                return .json(.created, ["created": true])
            }
            router.add(.GET, "/items/:id") { request in
                log.runs.append("item")
                return .json(.ok, ["id": .int(try request.idParameter("id"))])
            }
            router.add(.GET, "/search") { request in
                .json(.ok, ["q": request.http.queryParameter("q").map(JSONValue.string) ?? .null,
                            "page": request.http.queryParameter("page").map(JSONValue.string) ?? .null])
            }
            router.add(.POST, "/echo") { request in
                let body = try request.jsonObject()
                return .json(.ok, ["name": .string(try body.requiredString("name"))])
            }
            router.add(.GET, "/me", authenticated: true) { request in
                log.runs.append("me")
                let caller = try request.caller
                return .json(.ok, ["userId": .int(caller.userID), "tokenId": .string(caller.tokenID)])
            }
            router.add(.GET, "/public") { request in
                .json(.ok, ["authenticated": .bool(request.principal != nil)])
            }
            router.add(.DELETE, "/fail/api") { _ in
                throw APIError(ErrorCode("test_conflict", .conflict, "conflict"), message: "the item is locked",
                               headers: ["X-Lock-Owner": "7"], details: ["itemId": 9, "lockedUntil": "later"])
            }
            router.add(.GET, "/fail/unexpected") { _ in
                throw LeakyFailure()
            }
            router.addImmediate(.GET, "/ping") { request in
                .text(.ok, "pong \(request.http.queryParameter("n") ?? "")")
            }
            router.add(.GET, "/limited/items") { _ in
                log.runs.append("limited")
                return .json(.ok, ["ok": true])
            }
            router.add(.GET, "/limited/me", authenticated: true) { _ in
                log.runs.append("limited-me")
                return .json(.ok, ["ok": true])
            }
        }

        func connect() -> HTTPPeer {
            let peer = HTTPPeer()
            server.accept(peer.connection)
            return peer
        }
    }

    // MARK: Routing

    @Test @LoopActor func anUnknownPathIs404WithTheHouseErrorBody() async throws {
        let fixture = Fixture()
        let response = try await fixture.connect().exchange("GET", "/nowhere")
        #expect(response.status == 404)
        #expect(response.header("Content-Type") == "application/json; charset=utf-8")
        #expect(response.text == #"{"error":{"code":"not_found","message":"no route for GET /nowhere"}}"#)
        #expect(response.header("X-Request-ID") != nil)
    }

    @Test @LoopActor func aKnownPathWithAnotherMethodIs405WithAllow() async throws {
        let fixture = Fixture()
        let response = try await fixture.connect().exchange("DELETE", "/items")
        #expect(response.status == 405)
        #expect(response.header("Allow") == "GET, HEAD, POST")
        #expect(response.errorCode == "method_not_allowed")
        #expect(response.errorMessage == "DELETE is not allowed here; use GET, HEAD, POST")
        #expect(fixture.log.runs.isEmpty)
    }

    @Test @LoopActor func headIsRoutedToTheGetHandlerWithoutABody() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        let head = try await peer.exchange("HEAD", "/items")
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == "12")
        #expect(head.body.isEmpty)
        let get = try await peer.exchange("GET", "/items")
        #expect(get.text == #"{"items":[]}"#)
        #expect(fixture.log.runs == ["list", "list"])
    }

    @Test @LoopActor func eachMethodOfAPathReachesItsOwnHandler() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        let created = try await peer.exchange("POST", "/items", body: "")
        #expect(created.status == 201)
        #expect(created.json == ["created": true])
        #expect(try await peer.exchange("GET", "/items").status == 200)
        #expect(fixture.log.runs == ["create", "list"])
    }

    @Test @LoopActor func pathParametersReachTheHandler() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        let found = try await peer.exchange("GET", "/items/17")
        #expect(found.status == 200)
        #expect(found.json == ["id": 17])

        let invalid = try await peer.exchange("GET", "/items/abc")
        #expect(invalid.status == 422)
        #expect(invalid.errorCode == "validation_failed")
        #expect(invalid.errorMessage == "path parameter 'id' must be a positive integer")
        #expect(invalid.json?["error"]?["field"] == "id")
    }

    @Test @LoopActor func queryParametersArePercentDecoded() async throws {
        let fixture = Fixture()
        let response = try await fixture.connect().exchange("GET", "/search?q=caf%C3%A9+au+lait&page=2")
        #expect(response.status == 200)
        #expect(response.json == ["q": "café au lait", "page": "2"])

        let absent = try await fixture.connect().exchange("GET", "/search")
        #expect(absent.json == ["q": nil, "page": nil])
    }

    @Test @LoopActor func anImmediateRouteIsAnsweredWithinTheRequest() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        peer.send("GET", "/ping?n=7")
        // No task: the response is written before `receive` returns.
        let responses = peer.responses()
        #expect(responses.map(\.status) == [200])
        #expect(responses.first?.text == "pong 7")
    }

    // MARK: Authentication

    @Test @LoopActor func anAuthenticatedRouteWithoutATokenIs401TokenMissing() async throws {
        let fixture = Fixture()
        let response = try await fixture.connect().exchange("GET", "/me")
        #expect(response.status == 401)
        #expect(response.errorCode == "token_missing")
        #expect(response.errorMessage == "this endpoint needs a bearer token")
        #expect(response.header("WWW-Authenticate") == "Bearer")
        #expect(fixture.log.runs.isEmpty)
    }

    @Test @LoopActor func aRefusedTokenIs401WithTheAuthenticatorsCode() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        let expired = try await peer.exchange("GET", "/me", headers: [("Authorization", "Bearer expired")])
        #expect(expired.status == 401)
        #expect(expired.errorCode == "token_expired")
        #expect(expired.header("WWW-Authenticate") == "Bearer")

        let forged = try await peer.exchange("GET", "/me", headers: [("Authorization", "Bearer forged")])
        #expect(forged.status == 401)
        #expect(forged.errorCode == "token_signature")
        #expect(fixture.log.runs.isEmpty)
        #expect(fixture.authenticator.calls == 2)
    }

    @Test @LoopActor func aGoodTokenGivesTheHandlerItsPrincipal() async throws {
        let fixture = Fixture()
        let response = try await fixture.connect().exchange("GET", "/me", headers: [("Authorization", "bearer good")])
        #expect(response.status == 200)
        #expect(response.json == ["userId": 42, "tokenId": "jti-42"])
        #expect(fixture.log.runs == ["me"])
    }

    @Test @LoopActor func aPublicRouteNeverAsksTheAuthenticator() async throws {
        let fixture = Fixture()
        let response = try await fixture.connect().exchange("GET", "/public", headers: [("Authorization", "Bearer good")])
        #expect(response.json == ["authenticated": false])
        #expect(fixture.authenticator.calls == 0)
    }

    // MARK: Errors

    @Test @LoopActor func aThrownAPIErrorIsAnsweredWithItsStatusCodeMessageHeadersAndDetails() async throws {
        let fixture = Fixture()
        let response = try await fixture.connect().exchange("DELETE", "/fail/api")
        #expect(response.status == 409)
        #expect(response.reason == "Conflict")
        #expect(response.header("X-Lock-Owner") == "7")
        #expect(response.header("Content-Type") == "application/json; charset=utf-8")
        #expect(response.json == ["error": ["code": "test_conflict", "message": "the item is locked", "itemId": 9, "lockedUntil": "later"]])
    }

    @Test @LoopActor func anUnexpectedErrorIs500InternalErrorWithoutItsDetails() async throws {
        let fixture = Fixture()
        let response = try await fixture.connect().exchange("GET", "/fail/unexpected")
        #expect(response.status == 500)
        #expect(response.text == #"{"error":{"code":"internal_error","message":"internal error"}}"#)
        #expect(!response.text.contains("hunter2"))
        #expect(!response.text.contains("db.internal"))
    }

    // MARK: Rate limits

    @Test @LoopActor func everyLimitedResponseCarriesTheLimitersHeaders() async throws {
        let fixture = Fixture(limited: true)
        let peer = fixture.connect()
        let ok = try await peer.exchange("GET", "/limited/items")
        let unknown = try await peer.exchange("GET", "/limited/nothing")
        let wrongMethod = try await peer.exchange("POST", "/limited/items", body: "")
        let unauthenticated = try await peer.exchange("GET", "/limited/me")

        #expect([ok, unknown, wrongMethod, unauthenticated].map(\.status) == [200, 404, 405, 401])
        for response in [ok, unknown, wrongMethod, unauthenticated] {
            #expect(response.header("RateLimit-Policy") == "\"api\";q=10;w=60")
            #expect(response.header("RateLimit") == "\"api\";r=9;t=60")
        }
        #expect(fixture.limiter.admitted == ["/limited/items", "/limited/nothing", "/limited/items", "/limited/me"])
        #expect(fixture.log.runs == ["limited"])
    }

    @Test @LoopActor func aRefusalIs429WithRetryAfterAndTheHandlerNeverRuns() async throws {
        let fixture = Fixture(limited: true)
        fixture.limiter.refusal = .rateLimited(limit: "api", retryAfter: .milliseconds(1_500), message: "slow down")
        let response = try await fixture.connect().exchange("GET", "/limited/items")

        #expect(response.status == 429)
        #expect(response.header("Retry-After") == "2")
        #expect(response.header("RateLimit") == "\"api\";r=9;t=60")
        #expect(response.json == ["error": ["code": "rate_limited", "message": "slow down", "limit": "api", "retryAfterMs": 1_500]])
        #expect(fixture.log.runs.isEmpty)
    }

    @Test @LoopActor func aRefusalWinsOverAFailedAuthentication() async throws {
        let fixture = Fixture(limited: true)
        fixture.limiter.refusal = .rateLimited(limit: "auth", retryAfter: .milliseconds(200), message: "slow down")
        let response = try await fixture.connect().exchange("GET", "/limited/me", headers: [("Authorization", "Bearer forged")])
        #expect(response.status == 429)
        #expect(response.errorCode == "rate_limited")
        #expect(response.header("Retry-After") == "1")
        #expect(fixture.log.runs.isEmpty)
    }

    @Test @LoopActor func aLimitedHandlerRunsOnlyOnceAdmittedWhileAuthenticationOverlapsTheDecision() async throws {
        let fixture = Fixture(limited: true)
        fixture.limiter.holdsDecisions = true
        let peer = fixture.connect()
        peer.send("GET", "/limited/me", headers: [("Authorization", "Bearer good")])
        try await until("the limiter to be asked") { fixture.limiter.held != nil }
        try await until("the token to be checked meanwhile") { fixture.authenticator.calls == 1 }
        #expect(fixture.log.runs.isEmpty)
        #expect(peer.takeUnread().isEmpty)

        fixture.limiter.releaseHeld()
        let response = try await peer.nextResponse()
        #expect(response.status == 200)
        #expect(response.header("RateLimit") == "\"api\";r=9;t=60")
        #expect(fixture.log.runs == ["limited-me"])
    }

    @Test @LoopActor func unlimitedPathsAreAnsweredWithoutAnAdmission() async throws {
        let fixture = Fixture(limited: true)
        fixture.limiter.refusal = .rateLimited(limit: "api", retryAfter: .milliseconds(1_000), message: "slow down")
        let peer = fixture.connect()
        let items = try await peer.exchange("GET", "/items")
        let unknown = try await peer.exchange("GET", "/unknown")

        #expect(items.status == 200)
        #expect(unknown.status == 404)
        #expect(items.header("RateLimit") == nil)
        #expect(fixture.limiter.asked == ["/items", "/unknown"])
        #expect(fixture.limiter.admitted.isEmpty)
    }

    // MARK: JSON bodies

    @Test @LoopActor func aJSONBodyReachesTheHandlerAsAnObject() async throws {
        let fixture = Fixture()
        let response = try await fixture.connect().exchange("POST", "/echo", headers: [("Content-Type", "application/json; charset=utf-8")],
                                                            body: #"{"name":"Ada","extra":[1,2]}"#)
        #expect(response.status == 200)
        #expect(response.json == ["name": "Ada"])
    }

    @Test @LoopActor func malformedJSONIs400InvalidJSON() async throws {
        let fixture = Fixture()
        let response = try await fixture.connect().exchange("POST", "/echo", headers: [("Content-Type", "application/json")],
                                                            body: #"{"name": "Ada""#)
        #expect(response.status == 400)
        #expect(response.errorCode == "invalid_json")
        #expect(response.errorMessage?.hasPrefix("invalid JSON: ") == true)
    }

    @Test @LoopActor func aBodyThatIsNotJSONIs415() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        let typed = try await peer.exchange("POST", "/echo", headers: [("Content-Type", "text/plain")], body: "name=Ada")
        #expect(typed.status == 415)
        #expect(typed.errorCode == "unsupported_media_type")
        #expect(typed.errorMessage == "send the body as application/json, not text/plain")

        let untyped = try await peer.exchange("POST", "/echo", body: #"{"name":"Ada"}"#)
        #expect(untyped.status == 415)
        #expect(untyped.errorMessage == "send the body as application/json (Content-Type is missing)")
    }

    @Test @LoopActor func aJSONBodyThatIsNotAnObjectOrLacksAFieldIs422() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        let array = try await peer.exchange("POST", "/echo", headers: [("Content-Type", "application/json")], body: "[1]")
        #expect(array.status == 422)
        #expect(array.errorCode == "validation_failed")
        #expect(array.errorMessage == "the request body must be a JSON object")

        let missing = try await peer.exchange("POST", "/echo", headers: [("Content-Type", "application/json")], body: #"{"nom":"Ada"}"#)
        #expect(missing.status == 422)
        #expect(missing.errorCode == "validation_failed")
        #expect(missing.json?["error"]?["field"] == "name")
    }

    // MARK: Health

    @LoopActor
    final class Dependency {
        var up: Bool
        init(up: Bool) { self.up = up }
    }

    @Test @LoopActor func healthAnswersOkWithTheServiceName() async throws {
        let router = APIRouter(authenticator: nil, logger: quietLogger)
        let readiness = Readiness(grace: .zero)
        readiness.checks = [("postgres", { false })]
        HealthRoutes.register(on: router, service: "gateway-test", readiness: readiness)
        let server = HTTPServer(configuration: HTTPServerConfiguration(), responder: router, logger: quietLogger,
                                clock: ManualClock(wallMilliseconds: fixedWallMilliseconds))
        let peer = HTTPPeer()
        server.accept(peer.connection)
        peer.send("GET", "/health")
        // Immediate, and independent of the dependencies.
        let responses = peer.responses()
        #expect(responses.map(\.status) == [200])
        #expect(responses.first?.json == ["status": "ok", "service": "gateway-test"])
    }

    @Test @LoopActor func readyIs503NotReadyUntilEveryCheckPasses() async throws {
        let postgres = Dependency(up: true)
        let redis = Dependency(up: false)
        let router = APIRouter(authenticator: nil, logger: quietLogger)
        let readiness = Readiness(grace: .zero)
        readiness.phase = .serving
        readiness.checks = [("postgres", { postgres.up }), ("redis", { redis.up })]
        HealthRoutes.register(on: router, service: "gateway-test", readiness: readiness)
        let server = HTTPServer(configuration: HTTPServerConfiguration(), responder: router, logger: quietLogger,
                                clock: ManualClock(wallMilliseconds: fixedWallMilliseconds))
        let peer = HTTPPeer()
        server.accept(peer.connection)

        let down = try await peer.exchange("GET", "/ready")
        #expect(down.status == 503)
        #expect(down.json == [
            "status": "not_ready",
            "reason": "unavailable: redis",
            "checks": ["postgres": "up", "redis": "down"],
            "error": ["code": "not_ready", "message": "unavailable: redis"],
        ])

        postgres.up = false
        let bothDown = try await peer.exchange("GET", "/ready")
        #expect(bothDown.json?["error"]?["message"] == "unavailable: postgres, redis")

        postgres.up = true
        redis.up = true
        let ready = try await peer.exchange("GET", "/ready")
        #expect(ready.status == 200)
        #expect(ready.json == ["status": "ready", "checks": ["postgres": "up", "redis": "up"]])
    }

    @Test @LoopActor func readyIsNotReadyWithTheReasonWhileStartingAndDraining() async throws {
        let router = APIRouter(authenticator: nil, logger: quietLogger)
        let readiness = Readiness(grace: .seconds(30))
        readiness.checks = [("postgres", { true })]
        HealthRoutes.register(on: router, service: "gateway-test", readiness: readiness)
        let server = HTTPServer(configuration: HTTPServerConfiguration(), responder: router, logger: quietLogger,
                                clock: ManualClock(wallMilliseconds: fixedWallMilliseconds))
        let peer = HTTPPeer()
        server.accept(peer.connection)

        readiness.phase = .starting("waiting for schema version 13 (the database is at 12; run --migrate-only)")
        let starting = try await peer.exchange("GET", "/ready")
        #expect(starting.status == 503)
        #expect(starting.json?["status"] == "not_ready")
        #expect(starting.json?["reason"] == "waiting for schema version 13 (the database is at 12; run --migrate-only)")
        // Alive all the while: liveness never depends on the database.
        #expect(try await peer.exchange("GET", "/health").status == 200)

        readiness.phase = .serving
        #expect(try await peer.exchange("GET", "/ready").status == 200)

        readiness.phase = .draining
        let draining = try await peer.exchange("GET", "/ready")
        #expect(draining.status == 503)
        #expect(draining.header("Retry-After") == "1")
        #expect(draining.json?["reason"] == "draining")
    }

    @Test @LoopActor func aDependencyDownForLessThanTheGraceIsDegradedNotUnready() async throws {
        let redis = Dependency(up: false)
        let router = APIRouter(authenticator: nil, logger: quietLogger)
        let readiness = Readiness(grace: .seconds(3600))
        readiness.phase = .serving
        readiness.checks = [("postgres", { true }), ("redis", { redis.up })]
        HealthRoutes.register(on: router, service: "gateway-test", readiness: readiness)
        let server = HTTPServer(configuration: HTTPServerConfiguration(), responder: router, logger: quietLogger,
                                clock: ManualClock(wallMilliseconds: fixedWallMilliseconds))
        let peer = HTTPPeer()
        server.accept(peer.connection)

        let degraded = try await peer.exchange("GET", "/ready")
        #expect(degraded.status == 200)
        #expect(degraded.json == ["status": "degraded", "checks": ["postgres": "up", "redis": "down"], "degraded": ["redis"]])
        redis.up = true
        #expect(try await peer.exchange("GET", "/ready").json?["status"] == "ready")
    }
}
