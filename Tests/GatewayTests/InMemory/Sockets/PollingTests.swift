import Testing
@testable import Gateway
@testable import Shared

/// Engine.IO v4 HTTP long-polling (`/socket.io/?EIO=4&transport=polling`) and CORS over the real
/// front door: the handshake, CONNECT and events by `POST`, answers by `GET` (packets separated by
/// U+001E), the reference server's errors (`{"code", "message"}`), overlapping polls, the origin
/// allowlist for polling and REST, the upgrade to WebSocket (`2probe`/`3probe`, `noop`, `5`) and
/// the payload limit. A held `GET` is a request sent on a connection of its own and read later.
@Suite struct PollingTests {
    init() { EventLoop.shared.startInBackground() }

    private static let base = "/socket.io/?EIO=4&transport=polling"
    private static let separator: UInt8 = 0x1E

    // MARK: Client helpers

    /// A polling path for `sid`.
    private static func path(_ sid: String) -> String { base + "&sid=" + sid }

    /// The packets of a polling body, split on U+001E.
    private static func packets(_ body: [UInt8]) -> [String] {
        body.split(separator: separator, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A POST body of several packets joined by U+001E.
    private static func payload(_ packets: [String]) -> [UInt8] {
        var out: [UInt8] = []
        for packet in packets {
            if !out.isEmpty { out.append(separator) }
            out += Array(packet.utf8)
        }
        return out
    }

    /// The reference server's error body `{"code": n, "message": "..."}`.
    private static func engineError(_ response: TestResponse) -> (code: Int64?, message: String?) {
        (response.json?["code"]?.int64Value, response.json?["message"]?.stringValue)
    }

    /// The handshake `GET`: the response and the open packet's JSON.
    @LoopActor private static func handshake(_ gateway: GatewayHarness, headers: [(String, String)] = []) async throws
        -> (response: TestResponse, open: JSONValue, sid: String) {
        let response = try await gateway.request(.GET, base, headers: headers)
        guard response.status == 200, response.body.first == UInt8(ascii: "0"),
              let open = try? JSONParser.parse(Array(response.body.dropFirst())), let sid = open["sid"]?.stringValue else {
            throw GatewayHarness.SetupFailure(description: "handshake answered \(response.status): \(response.text)")
        }
        return (response, open, sid)
    }

    /// A `GET` of `sid` sent on a connection of its own and not read yet (it may be held).
    @LoopActor private static func startPoll(_ gateway: GatewayHarness, _ sid: String) async -> TestHTTPClient {
        let client = gateway.http()
        client.send(TestHTTPClient.encode(.GET, path(sid), token: nil, headers: [], body: nil))
        // Let the server take the request (and hold it) before the test goes on.
        await EventLoop.shared.sleep(for: .milliseconds(20))
        return client
    }

    /// A `POST` of `body` for `sid`.
    @LoopActor private static func post(_ gateway: GatewayHarness, _ sid: String, _ body: [UInt8]) async throws -> TestResponse {
        try await gateway.request(.POST, path(sid), headers: [("Content-Type", "text/plain;charset=UTF-8")], body: body)
    }

    /// Polls until packets matching every predicate of `wanted` arrived; returns every packet seen.
    @LoopActor private static func pollUntil(_ gateway: GatewayHarness, _ sid: String, polls: Int = 5,
                                             _ wanted: [(String) -> Bool]) async throws -> [String] {
        var seen: [String] = []
        for _ in 0..<polls {
            let response = try await gateway.request(.GET, path(sid))
            guard response.status == 200 else {
                throw GatewayHarness.SetupFailure(description: "poll answered \(response.status): \(response.text)")
            }
            seen += packets(response.body)
            if wanted.allSatisfy({ predicate in seen.contains(where: predicate) }) { return seen }
        }
        throw GatewayHarness.SetupFailure(description: "not every packet wanted arrived; saw \(seen)")
    }

    /// A session connected to `/` with `account`'s token, its CONNECT answer and the `onlineUsers`
    /// that follows fetched (nothing waits for the next poll).
    @LoopActor private static func connectedSession(_ gateway: GatewayHarness, _ account: GatewayHarness.Account) async throws -> String {
        let sid = try await handshake(gateway).sid
        let posted = try await post(gateway, sid, Array("40{\"token\":\"\(account.token)\"}".utf8))
        guard posted.status == 200 else { throw GatewayHarness.SetupFailure(description: "CONNECT POST answered \(posted.status)") }
        _ = try await pollUntil(gateway, sid, [{ $0.hasPrefix("40{") }, { $0.hasPrefix("42[\"onlineUsers\"") }])
        return sid
    }

    private static let upgradeHeaders: [(String, String)] = [
        ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
    ]

    // MARK: Handshake and exchange

    @Test @LoopActor func theHandshakeAnswersTheOpenPacketOfferingTheWebSocketUpgrade() async throws {
        try await SocketPeer.withGateway { gateway in
            let response = try await gateway.request(.GET, Self.base)
            #expect(response.status == 200)
            #expect(response.header("Content-Type")?.lowercased().hasPrefix("text/plain") == true)
            #expect(response.body.first == UInt8(ascii: "0"))
            let open = try #require(try? JSONParser.parse(Array(response.body.dropFirst())))
            let sid = try #require(open["sid"]?.stringValue)
            #expect(sid.contains("."))
            #expect(open["upgrades"] == ["websocket"])
            #expect(open["pingInterval"]?.int64Value == gateway.configuration.realtime.pingInterval.wholeMilliseconds)
            #expect(open["pingTimeout"]?.int64Value == gateway.configuration.realtime.pingTimeout.wholeMilliseconds)
            #expect(open["maxPayload"]?.int64Value == Int64(gateway.configuration.realtime.maxPayloadBytes))
            // One packet only: no separator in the body.
            #expect(!response.body.contains(Self.separator))
            let second = try await Self.handshake(gateway)
            #expect(second.sid != sid)
        }
    }

    @Test @LoopActor func aWholeExchangeOverPollingConnectsAndAnswersAnAckedWhoami() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let sid = try await Self.handshake(gateway).sid
            let connect = try await Self.post(gateway, sid, Array("40{\"token\":\"\(alice.token)\"}".utf8))
            #expect(connect.status == 200)
            #expect(connect.text == "ok")
            #expect(connect.header("Content-Type")?.lowercased().hasPrefix("text/html") == true)
            let afterConnect = try await Self.pollUntil(gateway, sid, [{ $0.hasPrefix("40{") }])
            let answer = try #require(afterConnect.first { $0.hasPrefix("40{") })
            let connected = try #require(try? JSONParser.parse(Array(answer.utf8.dropFirst(2))))
            let socketID = try #require(connected["sid"]?.stringValue)
            #expect(!socketID.isEmpty)
            #expect(connected["pid"]?.stringValue?.isEmpty == false)

            let whoami = try await Self.post(gateway, sid, Array("421[\"whoami\"]".utf8))
            #expect(whoami.status == 200)
            #expect(whoami.text == "ok")
            let seen = try await Self.pollUntil(gateway, sid, [{ $0.hasPrefix("431[") }])
            let ack = try #require(seen.first { $0.hasPrefix("431[") })
            let arguments = try #require(try? JSONParser.parse(Array(ack.utf8.dropFirst(3))))
            #expect(arguments == [["userId": .int(alice.id), "socketId": .string(socketID)]])
            #expect(gateway.services.realtime.session(engineID: sid)?.userID == alice.id)
        }
    }

    @Test @LoopActor func everyPacketOfOnePostBodyIsHandledInOrder() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let sid = try await Self.connectedSession(gateway, alice)
            let posted = try await Self.post(gateway, sid, Self.payload(["421[\"ping\"]", "422[\"whoami\"]"]))
            #expect(posted.status == 200)
            #expect(posted.text == "ok")
            let seen = try await Self.pollUntil(gateway, sid, [{ $0.hasPrefix("431[") }, { $0.hasPrefix("432[") }])
            let pong = try #require(seen.first { $0.hasPrefix("431[") })
            #expect(try JSONParser.parse(Array(pong.utf8.dropFirst(3)))[0]?["pong"] == true)
            let who = try #require(seen.first { $0.hasPrefix("432[") })
            #expect(try JSONParser.parse(Array(who.utf8.dropFirst(3)))[0]?["userId"]?.int64Value == alice.id)
            // Answered in the order sent.
            let pongIndex = try #require(seen.firstIndex { $0.hasPrefix("431[") })
            let whoIndex = try #require(seen.firstIndex { $0.hasPrefix("432[") })
            #expect(pongIndex < whoIndex)
        }
    }

    @Test @LoopActor func aHeldPollIsAnsweredWhenAPacketIsSent() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let sid = try await Self.connectedSession(gateway, alice)
            let held = await Self.startPoll(gateway, sid)
            #expect(held.unread().isEmpty)
            let posted = try await Self.post(gateway, sid, Array("427[\"whoami\"]".utf8))
            #expect(posted.status == 200)
            let answer = try await held.response()
            #expect(answer.status == 200)
            #expect(Self.packets(answer.body).contains { $0.hasPrefix("437[") })
        }
    }

    // MARK: Errors

    @Test @LoopActor func aSecondPollWhileOneIsHeldClosesTheSession() async throws {
        try await SocketPeer.withGateway { gateway in
            let sid = try await Self.handshake(gateway).sid
            let held = await Self.startPoll(gateway, sid)
            #expect(held.unread().isEmpty)
            let second = try await gateway.request(.GET, Self.path(sid))
            #expect(second.status == 400)
            #expect(Self.engineError(second).code == 3)
            #expect(Self.engineError(second).message == "Bad request")
            let first = try await held.response()
            #expect(first.status == 200)
            #expect(Self.packets(first.body).contains("1"))
            let after = try await gateway.request(.GET, Self.path(sid))
            #expect(after.status == 400)
            #expect(Self.engineError(after).code == 1)
            #expect(Self.engineError(after).message == "Session ID unknown")
            #expect(gateway.services.realtime.pollingLinks[sid] == nil)
        }
    }

    @Test @LoopActor func anUnknownSessionIdIsRefusedForGetAndPost() async throws {
        try await SocketPeer.withGateway { gateway in
            let route = try #require(gateway.services.realtime.relay?.route)
            // Another gateway's (nobody owns it) and this gateway's own route.
            for sid in ["zzzzzzzz.aaaaaaaaaaaaaaaaaaaa", route + ".aaaaaaaaaaaaaaaaaaaa"] {
                let get = try await gateway.request(.GET, Self.path(sid))
                #expect(get.status == 400, "\(sid)")
                #expect(get.header("Content-Type")?.hasPrefix("application/json") == true)
                #expect(Self.engineError(get).code == 1, "\(sid)")
                #expect(Self.engineError(get).message == "Session ID unknown", "\(sid)")
                let post = try await Self.post(gateway, sid, Array("3".utf8))
                #expect(post.status == 400, "\(sid)")
                #expect(Self.engineError(post).code == 1, "\(sid)")
                #expect(Self.engineError(post).message == "Session ID unknown", "\(sid)")
            }
        }
    }

    @Test @LoopActor func aMissingOrOldEngineIOVersionIsRefusedWithCode5() async throws {
        try await SocketPeer.withGateway { gateway in
            for path in ["/socket.io/?transport=polling", "/socket.io/?EIO=3&transport=polling"] {
                let response = try await gateway.request(.GET, path)
                #expect(response.status == 400, "\(path)")
                #expect(Self.engineError(response).code == 5, "\(path): \(response.text)")
                #expect(Self.engineError(response).message == "Unsupported protocol version", "\(path)")
            }
            #expect(gateway.services.realtime.pollingLinks.isEmpty)
        }
    }

    @Test @LoopActor func anUnknownTransportIsRefusedWithCode0() async throws {
        try await SocketPeer.withGateway { gateway in
            // A plain request (no Upgrade) naming a transport the server does not have: the reference
            // server answers {"code":0,"message":"Transport unknown"}.
            let response = try await gateway.request(.GET, "/socket.io/?EIO=4&transport=foo")
            #expect(response.status == 400)
            #expect(Self.engineError(response).code == 0, "\(response.text)")
            #expect(Self.engineError(response).message == "Transport unknown", "\(response.text)")
        }
    }

    @Test @LoopActor func aPostWithoutSessionIdIsABadHandshakeMethod() async throws {
        try await SocketPeer.withGateway { gateway in
            let response = try await gateway.request(.POST, Self.base, body: Array("40".utf8))
            #expect(response.status == 400)
            #expect(Self.engineError(response).code == 2)
            #expect(Self.engineError(response).message == "Bad handshake method")
            #expect(gateway.services.realtime.pollingLinks.isEmpty)
        }
    }

    @Test @LoopActor func aMalformedPostBodyClosesTheSession() async throws {
        try await SocketPeer.withGateway { gateway in
            let sid = try await Self.handshake(gateway).sid
            // An empty packet between two separators.
            let body = Array("4x".utf8) + [Self.separator, Self.separator] + Array("4y".utf8)
            let response = try await Self.post(gateway, sid, body)
            #expect(response.status == 400)
            #expect(Self.engineError(response).code == 3)
            #expect(Self.engineError(response).message == "Bad request")
            let after = try await gateway.request(.GET, Self.path(sid))
            #expect(after.status == 400)
            #expect(Self.engineError(after).code == 1)
            #expect(gateway.services.realtime.pollingLinks[sid] == nil)
        }
    }

    @Test @LoopActor func aPostLargerThanTheMaximumPayloadIsRefusedWith413() async throws {
        try await SocketPeer.withGateway(settings: ["SOCKETIO_MAX_PAYLOAD_BYTES": "2048"]) { gateway in
            let alice = try await gateway.account("alice")
            let (_, open, sid) = try await Self.handshake(gateway)
            #expect(open["maxPayload"]?.int64Value == 2048)
            let big = "42[\"typing\",\"" + String(repeating: "x", count: 2100) + "\"]"
            let response = try await Self.post(gateway, sid, Array(big.utf8))
            #expect(response.status == 413)
            // As the reference server, the refusal does not end the session.
            let connect = try await Self.post(gateway, sid, Array("40{\"token\":\"\(alice.token)\"}".utf8))
            #expect(connect.status == 200)
            _ = try await Self.pollUntil(gateway, sid, [{ $0.hasPrefix("40{") }])
        }
    }

    // MARK: Origins and CORS

    @Test @LoopActor func pollingFromAnOriginOutsideTheAllowlistIsForbidden() async throws {
        try await SocketPeer.withGateway(settings: ["ALLOWED_ORIGINS": "https://app.example.com"]) { gateway in
            let allowed = try await Self.handshake(gateway, headers: [("Origin", "https://app.example.com")])
            #expect(allowed.response.status == 200)
            #expect(allowed.response.header("Access-Control-Allow-Origin") == "https://app.example.com")
            #expect(allowed.response.header("Vary")?.contains("Origin") == true)

            let refused = try await gateway.request(.GET, Self.base, headers: [("Origin", "https://evil.example.com")])
            #expect(refused.status == 403)
            #expect(refused.header("Access-Control-Allow-Origin") == nil)
            #expect(gateway.services.realtime.pollingLinks.count == 1)
            // The reference server's refusal: {"code":4,"message":"Forbidden"}.
            #expect(Self.engineError(refused).code == 4, "\(refused.text)")
            #expect(Self.engineError(refused).message == "Forbidden", "\(refused.text)")
        }
    }

    @Test @LoopActor func corsOnTheRestAPIEchoesAnAllowedOriginAndRefusesOthers() async throws {
        try await SocketPeer.withGateway(settings: ["ALLOWED_ORIGINS": "https://app.example.com"]) { gateway in
            let app = "https://app.example.com"
            let preflight = try await gateway.request(.OPTIONS, "/api/auth/login", headers: [
                ("Origin", app), ("Access-Control-Request-Method", "POST"), ("Access-Control-Request-Headers", "authorization, content-type"),
            ])
            #expect(preflight.status == 204)
            #expect(preflight.header("Access-Control-Allow-Origin") == app)
            #expect(preflight.header("Vary")?.contains("Origin") == true)
            #expect(preflight.header("Access-Control-Allow-Methods")?.contains("POST") == true)
            #expect(preflight.header("Access-Control-Allow-Headers")?.lowercased().contains("authorization") == true)
            #expect(preflight.header("Access-Control-Allow-Headers")?.lowercased().contains("content-type") == true)
            #expect(Int(preflight.header("Access-Control-Max-Age") ?? "") ?? 0 > 0)

            let health = try await gateway.request(.GET, "/health", headers: [("Origin", app)])
            #expect(health.status == 200)
            #expect(health.header("Access-Control-Allow-Origin") == app)
            #expect(health.header("Vary")?.contains("Origin") == true)
            let exposed = (health.header("Access-Control-Expose-Headers") ?? "").split(separator: ",").map {
                $0.trimmingPrefix(" ").lowercased()
            }
            for name in ["ratelimit", "ratelimit-policy", "retry-after", "x-request-id"] {
                #expect(exposed.contains(name), "\(name) in \(exposed)")
            }

            // An API answer (a refusal included) carries the headers too.
            let me = try await gateway.request(.GET, "/api/users/me", headers: [("Origin", app)])
            #expect(me.header("Access-Control-Allow-Origin") == app)
            for response in [preflight, health, me] {
                #expect(response.headers.allSatisfy { $0.name.lowercased() != "access-control-allow-origin" || $0.value != "*" })
            }

            let evil = try await gateway.request(.GET, "/health", headers: [("Origin", "https://evil.example.com")])
            #expect(evil.status == 403)
            #expect(evil.errorCode == "origin_not_allowed")
            #expect(evil.header("Access-Control-Allow-Origin") == nil)
            let evilPreflight = try await gateway.request(.OPTIONS, "/api/auth/login", headers: [
                ("Origin", "https://evil.example.com"), ("Access-Control-Request-Method", "POST"),
            ])
            #expect(evilPreflight.status == 403)
            #expect(evilPreflight.header("Access-Control-Allow-Origin") == nil)
            #expect(evilPreflight.header("Access-Control-Allow-Methods") == nil)
            // A refused origin does not act: a login from it is not attempted.
            let evilLogin = try await gateway.request(.POST, "/api/auth/login", headers: [("Origin", "https://evil.example.com")],
                                                      json: ["email": "nobody@example.com", "password": "x"])
            #expect(evilLogin.status == 403)
            #expect(evilLogin.errorCode == "origin_not_allowed")

            let plain = try await gateway.request(.GET, "/health")
            #expect(plain.status == 200)
            #expect(plain.headers.allSatisfy { !$0.name.lowercased().hasPrefix("access-control-") })
        }
    }

    // MARK: Upgrade

    @Test @LoopActor func aPollingSessionUpgradesToWebSocket() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let sid = try await Self.connectedSession(gateway, alice)
            let held = await Self.startPoll(gateway, sid)
            #expect(held.unread().isEmpty)

            // The probe WebSocket: no open packet for an upgrade.
            let connection = gateway.connect()
            let http = TestHTTPClient(connection: connection)
            let accepted = try await http.request(.GET, "/socket.io/?EIO=4&transport=websocket&sid=\(sid)", headers: Self.upgradeHeaders)
            #expect(accepted.status == 101)
            #expect(http.unread().isEmpty)
            let socket = TestSocket(connection: connection)
            socket.send("2probe")
            #expect(try await socket.next() == "3probe")

            // The held poll is released with a noop; a poll now is answered with a noop at once.
            let released = try await held.response()
            #expect(released.status == 200)
            #expect(Self.packets(released.body) == ["6"])
            let noop = try await gateway.request(.GET, Self.path(sid))
            #expect(noop.status == 200)
            #expect(Self.packets(noop.body) == ["6"])

            socket.send("5")
            socket.emit(SocketEvent.whoami.name, [], ack: 1)
            let whoami = try await socket.ack(1)
            #expect(whoami.first?["userId"]?.int64Value == alice.id)
            #expect(gateway.services.realtime.session(engineID: sid)?.userID == alice.id)
            #expect(gateway.services.realtime.pollingLinks[sid] == nil)

            let after = try await gateway.request(.GET, Self.path(sid))
            #expect(after.status == 400)
        }
    }

    @Test @LoopActor func aPollAfterTheUpgradeIsABadRequestAsInTheReferenceServer() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let sid = try await Self.connectedSession(gateway, alice)
            let connection = gateway.connect()
            let http = TestHTTPClient(connection: connection)
            let accepted = try await http.request(.GET, "/socket.io/?EIO=4&transport=websocket&sid=\(sid)", headers: Self.upgradeHeaders)
            #expect(accepted.status == 101)
            let socket = TestSocket(connection: connection)
            socket.send("2probe")
            #expect(try await socket.next() == "3probe")
            socket.send("5")
            socket.emit(SocketEvent.whoami.name, [], ack: 2)
            _ = try await socket.ack(2)
            // The session lives on over WebSocket: a poll of it is a transport mismatch (code 3),
            // not an unknown session (engine.io `verify`: BAD_REQUEST when the transport differs).
            let get = try await gateway.request(.GET, Self.path(sid))
            #expect(get.status == 400)
            #expect(Self.engineError(get).code == 3, "\(get.text)")
            let post = try await Self.post(gateway, sid, Array("3".utf8))
            #expect(post.status == 400)
            #expect(Self.engineError(post).code == 3, "\(post.text)")
        }
    }

    @Test @LoopActor func aProbeFromAnOriginOutsideTheAllowlistOrForAnUnknownSessionIsRefused() async throws {
        try await SocketPeer.withGateway(settings: ["ALLOWED_ORIGINS": "https://app.example.com"]) { gateway in
            let sid = try await Self.handshake(gateway).sid
            let forbidden = try await gateway.http().request(.GET, "/socket.io/?EIO=4&transport=websocket&sid=\(sid)",
                                                             headers: Self.upgradeHeaders + [("Origin", "https://evil.example.com")])
            #expect(forbidden.status == 403)
            #expect(Self.engineError(forbidden).code == 4)
            let route = try #require(gateway.services.realtime.relay?.route)
            let unknown = try await gateway.http().request(.GET, "/socket.io/?EIO=4&transport=websocket&sid=\(route).bbbbbbbbbbbbbbbbbbbb",
                                                           headers: Self.upgradeHeaders)
            #expect(unknown.status == 400)
            #expect(Self.engineError(unknown).code == 1)
            // The session is untouched: polling goes on.
            #expect(gateway.services.realtime.pollingLinks[sid] != nil)
        }
    }
}
