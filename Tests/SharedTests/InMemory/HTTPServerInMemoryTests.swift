import Testing

@testable import Shared

/// `HTTPServer` over in-memory connections with a manual clock: request and response framing,
/// keep-alive and pipelining, 100-continue, parse failures and size limits, the read and idle
/// timeouts, the connection cap, graceful shutdown and protocol upgrades, all without a socket.
@Suite struct HTTPServerInMemoryTests {
    init() { EventLoop.shared.startInBackground() }

    /// Answers every request with `200` and `<METHOD> <path> body=<body>`, at once, after a delay
    /// on the manual clock, or never, as the test sets per path.
    @LoopActor
    final class ScriptedResponder: HTTPResponder {
        private let clock: ManualClock
        /// Milliseconds of the manual clock before a path is answered.
        var delays: [String: Int64] = [:]
        /// Paths never answered (a stuck handler).
        var stuck: Set<String> = []
        private(set) var requests: [HTTPRequest] = []
        private(set) var contexts: [HTTPRequestContext] = []

        init(clock: ManualClock) {
            self.clock = clock
        }

        func respond(to request: HTTPRequest, context: HTTPRequestContext, completion: @escaping @LoopActor (HTTPResponse) -> Void) {
            requests.append(request)
            contexts.append(context)
            if stuck.contains(request.path) { return }
            let response = HTTPResponse.text(.ok, "\(request.method.rawValue) \(request.path) body=\(String(decoding: request.body, as: UTF8.self))")
            if let delay = delays[request.path] {
                clock.schedule(after: .milliseconds(delay)) { completion(response) }
            } else {
                completion(response)
            }
        }
    }

    /// Decides upgrades of `/upgrade` as set by the test; records what a takeover received.
    @LoopActor
    final class ScriptedUpgrader: HTTPUpgrader {
        var decision: (HTTPRequest) -> HTTPUpgradeDecision = { _ in .notAnUpgrade }

        func decide(_ request: HTTPRequest, context: HTTPRequestContext) -> HTTPUpgradeDecision {
            request.path == "/upgrade" ? decision(request) : .notAnUpgrade
        }
    }

    /// Collects what reaches the new owner of an upgraded connection.
    @LoopActor
    final class TakeoverDelegate: TransportDelegate {
        var received: [UInt8] = []
        var closed = false
        func connection(_ connection: any Transport, didRead bytes: UnsafeRawBufferPointer) { received += Array(bytes) }
        func connectionDidReadEOF(_ connection: any Transport) {}
        func connectionDidDrain(_ connection: any Transport) {}
        func connectionDidClose(_ connection: any Transport, error: SystemError?) { closed = true }
    }

    @LoopActor
    struct Fixture {
        let server: HTTPServer
        let responder: ScriptedResponder
        let clock: ManualClock

        init(_ configure: (inout HTTPServerConfiguration) -> Void = { _ in }) {
            var configuration = HTTPServerConfiguration()
            configuration.requestReadTimeout = .milliseconds(10_000)
            configuration.idleTimeout = .milliseconds(60_000)
            configure(&configuration)
            clock = ManualClock(wallMilliseconds: fixedWallMilliseconds)
            responder = ScriptedResponder(clock: clock)
            server = HTTPServer(configuration: configuration, responder: responder, logger: quietLogger, clock: clock)
        }

        /// A new client connection accepted by the server.
        func connect() -> HTTPPeer {
            let peer = HTTPPeer()
            server.accept(peer.connection)
            return peer
        }
    }

    // MARK: Requests and responses

    @Test @LoopActor func aRequestIsAnsweredWithItsStatusLineLengthDateAndRequestID() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        peer.send("POST", "/echo?x=1", headers: [("Content-Type", "text/plain")], body: "hello")

        let responses = peer.responses()
        try #require(responses.count == 1)
        let response = responses[0]
        #expect(response.status == 200)
        #expect(response.reason == "OK")
        #expect(response.text == "POST /echo body=hello")
        #expect(response.header("Content-Length") == "21")
        #expect(response.header("Content-Type") == "text/plain; charset=utf-8")
        #expect(response.header("Date") == fixedHTTPDate)
        #expect(response.header("Connection") == nil)
        let requestID = try #require(response.header("X-Request-ID"))
        #expect(requestID == fixture.responder.contexts.first?.requestID)
        let parts = requestID.split(separator: "-")
        #expect(parts.count == 2 && parts[0].count == 8 && parts[1] == "1")
        #expect(fixture.responder.requests.first?.query == "x=1")
        #expect(fixture.responder.contexts.first?.peerAddress == "127.0.0.1")
        #expect(!peer.connection.isClosed)
        #expect(fixture.server.connectionCount == 1)
    }

    @Test @LoopActor func aKeepAliveConnectionServesSeveralRequestsInTurn() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        var requestIDs: [String] = []
        for path in ["/a", "/b", "/c"] {
            peer.send("GET", path)
            let responses = peer.responses()
            try #require(responses.count == 1)
            #expect(responses[0].text == "GET \(path) body=")
            requestIDs.append(responses[0].header("X-Request-ID") ?? "")
            #expect(!peer.connection.isClosed)
        }
        #expect(fixture.responder.requests.map(\.path) == ["/a", "/b", "/c"])
        #expect(Set(requestIDs).count == 3)
        #expect(requestIDs.map { $0.split(separator: "-").last.map(String.init) } == ["1", "2", "3"])
    }

    @Test @LoopActor func pipelinedRequestsAreAnsweredInOrderEvenWhenTheFirstAnswersLater() async throws {
        let fixture = Fixture()
        fixture.responder.delays["/slow"] = 250
        let peer = fixture.connect()
        peer.send(HTTPPeer.request("GET", "/slow") + HTTPPeer.request("GET", "/fast") + HTTPPeer.request("GET", "/last"))

        // The second request waits for the first to be answered: nothing is written out of order.
        #expect(fixture.responder.requests.map(\.path) == ["/slow"])
        #expect(peer.responses().isEmpty)

        fixture.clock.advance(by: .milliseconds(250))
        let responses = peer.responses()
        #expect(responses.map(\.text) == ["GET /slow body=", "GET /fast body=", "GET /last body="])
        #expect(fixture.responder.requests.map(\.path) == ["/slow", "/fast", "/last"])
        #expect(!peer.connection.isClosed)
    }

    @Test @LoopActor func connectionCloseIsAnsweredWithConnectionCloseAndTheConnectionEnds() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        peer.send(HTTPPeer.request("GET", "/bye", headers: [("Connection", "close")]) + HTTPPeer.request("GET", "/ignored"))

        let responses = peer.responses()
        #expect(responses.map(\.text) == ["GET /bye body="])
        #expect(responses.first?.header("Connection") == "close")
        #expect(peer.connection.isClosed)
        #expect(fixture.responder.requests.map(\.path) == ["/bye"])
        #expect(fixture.server.connectionCount == 0)
    }

    @Test @LoopActor func anHTTP10RequestIsAnsweredThenClosedUnlessItAsksForKeepAlive() async throws {
        let fixture = Fixture()
        let keepAlive = fixture.connect()
        keepAlive.send(HTTPPeer.request("GET", "/one", version: "HTTP/1.0", headers: [("Connection", "keep-alive")]))
        let kept = keepAlive.responses()
        #expect(kept.map(\.status) == [200])
        #expect(kept.first?.header("Connection") == "keep-alive")
        #expect(!keepAlive.connection.isClosed)

        let plain = fixture.connect()
        plain.send(Array("GET /two HTTP/1.0\r\n\r\n".utf8))
        let closed = plain.responses()
        #expect(closed.map(\.text) == ["GET /two body="])
        #expect(closed.first?.header("Connection") == "close")
        #expect(plain.connection.isClosed)
    }

    @Test @LoopActor func aHeadResponseAnnouncesTheBodyLengthButCarriesNoBody() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        peer.send("HEAD", "/page")
        let output = String(decoding: peer.takeUnread(), as: UTF8.self)
        // `HEAD /page body=` is 16 bytes: the length a GET would carry, and nothing after the head.
        #expect(output.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(output.contains("\r\nContent-Length: 16\r\n"))
        #expect(output.hasSuffix("\r\n\r\n"))

        // The connection stays in step: the next response starts right away.
        peer.send("GET", "/page")
        #expect(peer.responses().map(\.text) == ["GET /page body="])
    }

    @Test @LoopActor func expectContinueIsAnswered100BeforeTheBodyIsSent() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        peer.send(Array("POST /upload HTTP/1.1\r\nHost: test.local\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n".utf8))
        #expect(String(decoding: peer.takeUnread(), as: UTF8.self) == "HTTP/1.1 100 Continue\r\n\r\n")
        #expect(fixture.responder.requests.isEmpty)

        peer.send(Array("hello".utf8))
        #expect(peer.responses().map(\.text) == ["POST /upload body=hello"])
    }

    @Test @LoopActor func aRequestFollowedByEOFIsStillAnsweredThenClosed() async throws {
        let fixture = Fixture()
        fixture.responder.delays["/late"] = 10
        let peer = fixture.connect()
        peer.send("GET", "/late")
        peer.connection.peerClosesInput()
        fixture.clock.advance(by: .milliseconds(10))

        // Reading is paused while the request is with the responder, so the EOF is seen only
        // once the response is written: it is answered, then the connection closes.
        #expect(peer.responses().map(\.text) == ["GET /late body="])
        #expect(peer.connection.isClosed)
        #expect(peer.connection.closeError == nil)
    }

    @Test @LoopActor func anEOFBetweenRequestsClosesTheConnectionAtOnce() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        peer.send("GET", "/")
        #expect(peer.responses().count == 1)
        peer.connection.peerClosesInput()
        #expect(peer.connection.isClosed)
        #expect(peer.takeUnread().isEmpty)
        #expect(fixture.server.connectionCount == 0)
    }

    // MARK: Refusals

    @Test @LoopActor func aMalformedRequestIsAnswered400AndTheConnectionCloses() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        peer.send(Array("GARBAGE\r\n\r\n".utf8))

        let responses = peer.responses()
        try #require(responses.count == 1)
        #expect(responses[0].status == 400)
        #expect(responses[0].errorCode == "bad_request")
        #expect(responses[0].errorMessage?.hasPrefix("Malformed request: ") == true)
        #expect(responses[0].header("Connection") == "close")
        #expect(responses[0].header("Date") == fixedHTTPDate)
        #expect(peer.connection.isClosed)
        #expect(fixture.responder.requests.isEmpty)
        #expect(fixture.server.connectionCount == 0)
    }

    @Test @LoopActor func aRequestWithoutHostIsAnswered400() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        peer.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        let responses = peer.responses()
        #expect(responses.map(\.status) == [400])
        #expect(responses.first?.errorMessage == "Malformed request: HTTP/1.1 requests need a Host header.")
        #expect(peer.connection.isClosed)
    }

    @Test @LoopActor func aHeadOverTheLimitIsAnswered431AndTheConnectionCloses() async throws {
        let fixture = Fixture { $0.parserLimits = HTTPParserLimits(maxHeaderBytes: 256) }
        let peer = fixture.connect()
        peer.send("GET", "/", headers: [("X-Padding", String(repeating: "p", count: 300))])

        let responses = peer.responses()
        #expect(responses.map(\.status) == [431])
        #expect(responses.first?.errorCode == "headers_too_large")
        #expect(responses.first?.errorMessage == "The request headers are larger than 256 bytes in total.")
        #expect(peer.connection.isClosed)
        #expect(fixture.responder.requests.isEmpty)
    }

    @Test @LoopActor func aBodyOverTheLimitIsAnswered413BeforeItArrives() async throws {
        let fixture = Fixture { $0.parserLimits = HTTPParserLimits(maxBodyBytes: 16) }
        let peer = fixture.connect()
        // Only the head: the announced length alone is refused.
        peer.send(Array("POST /upload HTTP/1.1\r\nHost: test.local\r\nContent-Length: 17\r\n\r\n".utf8))

        let responses = peer.responses()
        #expect(responses.map(\.status) == [413])
        #expect(responses.first?.errorCode == "body_too_large")
        #expect(responses.first?.errorMessage == "The request body is larger than 16 bytes.")
        #expect(peer.connection.isClosed)

        let exact = fixture.connect()
        exact.send("POST", "/upload", body: String(repeating: "b", count: 16))
        #expect(exact.responses().map(\.status) == [200])
    }

    // MARK: Timeouts

    @Test @LoopActor func aRequestTrickledInTooSlowlyIsAnswered408AndClosed() async throws {
        let fixture = Fixture { $0.requestReadTimeout = .milliseconds(5_000) }
        let peer = fixture.connect()
        // A slowloris: every byte postpones nothing, the deadline is set by the first one.
        for piece in ["GET /slow", " HTTP/1.1\r\n", "Host: test.local\r\n", "X-A: 1\r\n"] {
            peer.send(Array(piece.utf8))
            fixture.clock.advance(by: .milliseconds(1_200))
        }
        #expect(!peer.connection.isClosed)
        #expect(peer.takeUnread().isEmpty)

        fixture.clock.advance(by: .milliseconds(200))  // 5 000 ms after the first byte
        let responses = peer.responses()
        #expect(responses.map(\.status) == [408])
        #expect(responses.first?.errorCode == "request_timeout")
        #expect(responses.first?.header("Connection") == "close")
        #expect(peer.connection.isClosed)
        #expect(fixture.responder.requests.isEmpty)
    }

    @Test @LoopActor func anIdleKeepAliveConnectionIsClosedWithoutAResponse() async throws {
        let fixture = Fixture { $0.idleTimeout = .milliseconds(30_000) }
        let peer = fixture.connect()
        peer.send("GET", "/")
        #expect(peer.responses().count == 1)

        fixture.clock.advance(by: .milliseconds(29_999))
        #expect(!peer.connection.isClosed)
        fixture.clock.advance(by: .milliseconds(1))
        #expect(peer.connection.isClosed)
        #expect(peer.connection.closeError == nil)
        #expect(peer.takeUnread().isEmpty)
        #expect(fixture.server.connectionCount == 0)
    }

    @Test @LoopActor func aConnectionThatNeverSendsIsClosedSilentlyAfterTheReadTimeout() async throws {
        let fixture = Fixture { $0.requestReadTimeout = .milliseconds(2_000) }
        let peer = fixture.connect()
        fixture.clock.advance(by: .milliseconds(1_999))
        #expect(!peer.connection.isClosed)
        fixture.clock.advance(by: .milliseconds(1))
        #expect(peer.connection.isClosed)
        #expect(peer.takeUnread().isEmpty)
    }

    @Test @LoopActor func requestsSentOneByteAtATimeAreParsedWhole() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        let pipeline = HTTPPeer.request("POST", "/first", headers: [("Content-Type", "text/plain")], body: "one")
            + HTTPPeer.request("GET", "/second?q=a%20b")
        peer.send(pipeline, chunkSize: 1)

        #expect(peer.responses().map(\.text) == ["POST /first body=one", "GET /second body="])
        #expect(fixture.responder.requests.last?.query == "q=a%20b")
        #expect(!peer.connection.isClosed)
    }

    // MARK: The connection cap

    @Test @LoopActor func aConnectionOverTheCapIsAnswered503AndClosed() async throws {
        let fixture = Fixture { $0.maxConnections = 2 }
        let first = fixture.connect()
        let second = fixture.connect()
        #expect(fixture.server.connectionCount == 2)

        let refused = fixture.connect()
        let responses = refused.responses()
        #expect(responses.map(\.status) == [503])
        #expect(responses.first?.errorCode == "server_busy")
        #expect(responses.first?.header("Retry-After") == "1")  // every 503 says when to come back
        #expect(responses.first?.header("Connection") == "close")
        #expect(refused.connection.isClosed)
        #expect(fixture.server.connectionCount == 2)

        // A closed connection frees its place.
        first.send(HTTPPeer.request("GET", "/", headers: [("Connection", "close")]))
        #expect(first.connection.isClosed)
        let third = fixture.connect()
        third.send("GET", "/")
        #expect(third.responses().map(\.status) == [200])
        #expect(!second.connection.isClosed)
    }

    // MARK: Shutdown

    @Test @LoopActor func shutdownClosesIdleConnectionsAndCompletesAtOnce() async throws {
        let fixture = Fixture()
        let idle = fixture.connect()
        let served = fixture.connect()
        served.send("GET", "/")
        #expect(served.responses().count == 1)

        var completed = 0
        fixture.server.shutdown(grace: .milliseconds(5_000)) { completed += 1 }
        #expect(idle.connection.isClosed)
        #expect(served.connection.isClosed)
        #expect(idle.takeUnread().isEmpty)
        #expect(completed == 1)
        #expect(fixture.server.connectionCount == 0)

        fixture.clock.advance(by: .milliseconds(5_000))
        #expect(completed == 1)
    }

    @Test @LoopActor func shutdownLetsARequestInFlightFinishWithConnectionClose() async throws {
        let fixture = Fixture()
        fixture.responder.delays["/work"] = 1_000
        let busy = fixture.connect()
        busy.send("GET", "/work")

        var completed = 0
        fixture.server.shutdown(grace: .milliseconds(5_000)) { completed += 1 }
        #expect(!busy.connection.isClosed)
        #expect(completed == 0)

        fixture.clock.advance(by: .milliseconds(1_000))
        let responses = busy.responses()
        #expect(responses.map(\.text) == ["GET /work body="])
        #expect(responses.first?.header("Connection") == "close")
        #expect(busy.connection.isClosed)
        #expect(completed == 1)

        fixture.clock.advance(by: .milliseconds(4_000))
        #expect(completed == 1)
    }

    @Test @LoopActor func shutdownForceClosesAStuckRequestWhenTheGracePeriodEnds() async throws {
        let fixture = Fixture()
        fixture.responder.stuck = ["/stuck"]
        let stuck = fixture.connect()
        stuck.send("GET", "/stuck")

        var completed = 0
        fixture.server.shutdown(grace: .milliseconds(3_000)) { completed += 1 }
        fixture.clock.advance(by: .milliseconds(2_999))
        #expect(!stuck.connection.isClosed)
        #expect(completed == 0)

        fixture.clock.advance(by: .milliseconds(1))
        #expect(stuck.connection.isClosed)
        #expect(stuck.takeUnread().isEmpty)
        #expect(completed == 1)
        #expect(fixture.server.connectionCount == 0)
    }

    // MARK: Upgrades

    @Test @LoopActor func aRejectedUpgradeIsAnsweredThenClosed() async throws {
        let fixture = Fixture()
        let upgrader = ScriptedUpgrader()
        upgrader.decision = { _ in .reject(HTTPResponse.error(.badRequest, code: "bad_upgrade", message: "no")) }
        fixture.server.upgrader = upgrader
        let peer = fixture.connect()
        peer.send("GET", "/upgrade", headers: [("Upgrade", "websocket"), ("Connection", "Upgrade")])

        let responses = peer.responses()
        #expect(responses.map(\.status) == [400])
        #expect(responses.first?.errorCode == "bad_upgrade")
        #expect(responses.first?.header("Connection") == "close")
        #expect(responses.first?.header("X-Request-ID") != nil)
        #expect(peer.connection.isClosed)
        #expect(fixture.responder.requests.isEmpty)

        // Other paths are routed as usual.
        let plain = fixture.connect()
        plain.send("GET", "/other")
        #expect(plain.responses().map(\.status) == [200])
    }

    @Test @LoopActor func anAcceptedUpgradeHandsTheTransportAndTheBytesAfterTheRequestToTheNewProtocol() async throws {
        let fixture = Fixture()
        let upgrader = ScriptedUpgrader()
        let takeover = TakeoverDelegate()
        var handedOver: (transport: any Transport, leftover: [UInt8], release: @LoopActor () -> Void)?
        upgrader.decision = { _ in
            .accept(HTTPResponse(status: .switchingProtocols, headers: ["Upgrade": "test", "Connection": "Upgrade"])) { transport, leftover, release in
                transport.delegate = takeover
                handedOver = (transport, leftover, release)
            }
        }
        fixture.server.upgrader = upgrader
        let peer = fixture.connect()
        peer.send(HTTPPeer.request("GET", "/upgrade", headers: [("Upgrade", "test"), ("Connection", "Upgrade")]) + Array("early".utf8))

        let output = String(decoding: peer.takeUnread(), as: UTF8.self)
        #expect(output.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        #expect(output.contains("\r\nUpgrade: test\r\n"))
        #expect(output.contains("\r\nConnection: Upgrade\r\n"))
        #expect(!output.contains("Content-Length"))
        let handed = try #require(handedOver)
        #expect(handed.transport === peer.connection)
        #expect(handed.leftover == Array("early".utf8))
        #expect(fixture.responder.requests.isEmpty)

        // The HTTP side no longer reads or times out, but the connection still counts.
        peer.send(Array("later".utf8))
        #expect(takeover.received == Array("later".utf8))
        fixture.clock.advance(by: .milliseconds(120_000))
        #expect(!peer.connection.isClosed)
        #expect(fixture.server.connectionCount == 1)

        peer.connection.closeNow()
        #expect(takeover.closed)
        #expect(fixture.server.connectionCount == 1)
        handed.release()
        #expect(fixture.server.connectionCount == 0)
        handed.release()
        #expect(fixture.server.connectionCount == 0)
    }

    @Test @LoopActor func upgradedConnectionsCountAgainstTheCap() async throws {
        let fixture = Fixture { $0.maxConnections = 1 }
        let upgrader = ScriptedUpgrader()
        var release: (@LoopActor () -> Void)?
        upgrader.decision = { _ in
            .accept(HTTPResponse(status: .switchingProtocols)) { _, _, handedRelease in release = handedRelease }
        }
        fixture.server.upgrader = upgrader
        let upgraded = fixture.connect()
        upgraded.send("GET", "/upgrade")
        #expect(release != nil)

        let refused = fixture.connect()
        #expect(refused.responses().map(\.status) == [503])

        release?()
        let accepted = fixture.connect()
        accepted.send("GET", "/")
        #expect(accepted.responses().map(\.status) == [200])
    }

    // MARK: PROXY protocol (issue 18)

    @Test @LoopActor func aProxyHeaderNamesTheClientForEveryRequestOfTheConnection() async throws {
        let fixture = Fixture { $0.proxyProtocol = ProxyProtocolPolicy(trustedPeers: .none) }
        let peer = fixture.connect()
        // The header split over reads, and the request in the same read as its end.
        let header = Array("PROXY TCP4 203.0.113.7 10.0.0.2 50123 3000\r\n".utf8)
        peer.send(Array(header[..<9]))
        #expect(peer.responses().isEmpty)
        peer.send(Array(header[9...]) + HTTPPeer.request("GET", "/one"))
        peer.send("GET", "/two")
        let responses = peer.responses()
        #expect(responses.map(\.status) == [200, 200])
        #expect(fixture.responder.contexts.map(\.peerAddress) == ["203.0.113.7", "203.0.113.7"])
    }

    @Test @LoopActor func aV2HeaderAndALocalCommandWork() async throws {
        let fixture = Fixture { $0.proxyProtocol = ProxyProtocolPolicy(trustedPeers: .none) }
        let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        let v6 = fixture.connect()
        var addresses: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x05]  // 2001:db8::5
        addresses += [UInt8](repeating: 0, count: 15) + [0x01]  // ::1
        addresses += [0xC3, 0x50, 0x0B, 0xB8]  // ports 50000, 3000
        v6.send(signature + [0x21, 0x21, 0x00, UInt8(addresses.count)] + addresses + HTTPPeer.request("GET", "/v6"))
        #expect(v6.responses().map(\.status) == [200])
        // LOCAL (the balancer's own health check): the TCP peer stands.
        let local = fixture.connect()
        local.send(signature + [0x20, 0x00, 0x00, 0x00] + HTTPPeer.request("GET", "/local"))
        #expect(local.responses().map(\.status) == [200])
        #expect(fixture.responder.contexts.map(\.peerAddress) == ["2001:db8::5", "127.0.0.1"])
    }

    @Test @LoopActor func aConnectionWithoutAProxyHeaderGets400AndIsClosed() async throws {
        let fixture = Fixture { $0.proxyProtocol = ProxyProtocolPolicy(trustedPeers: .none) }
        let peer = fixture.connect()
        peer.send("GET", "/spoof", headers: [("X-Forwarded-For", "1.2.3.4")])
        let responses = peer.responses()
        #expect(responses.map(\.status) == [400])
        #expect(responses.first?.json?["error"]?["code"] == "proxy_header_invalid")
        #expect(peer.connection.isClosed)
        #expect(fixture.responder.requests.isEmpty)
    }

    @Test @LoopActor func withoutThePolicyAProxyHeaderIsJustABadRequest() async throws {
        let fixture = Fixture()
        let peer = fixture.connect()
        peer.send(Array("PROXY TCP4 203.0.113.7 10.0.0.2 50123 3000\r\n".utf8) + HTTPPeer.request("GET", "/x"))
        #expect(peer.responses().first?.status == 400)
        #expect(fixture.responder.requests.isEmpty)
    }
}
