import Testing
@testable import Gateway
@testable import Shared

/// The socket protocol logic without sockets: every test feeds packets and clock readings and
/// checks the actions, including what the adversarial probe found (huge token times, revocation,
/// a burst of server-ack requests, other namespaces, event floods).
@Suite struct SocketSessionMachineTests {
    private static let secret = Array("0123456789abcdef0123456789abcdef-machine".utf8)
    private static let signer = JWTSigner(secret: secret, issuer: "swift-chat", audience: nil, leewaySeconds: 5)
    private static let start = SocketSessionMachine.Instant(monotonic: 1_000_000_000, wallMilliseconds: 1_800_000_000_000)

    private static func configuration(budget: SocketEventBudget.Configuration? = nil) -> SocketSessionMachine.Configuration {
        SocketSessionMachine.Configuration(signer: signer, connectTimeout: .milliseconds(45_000), eventBudget: budget)
    }

    private static func token(user: Int64 = 7, issuedAt: Int64? = nil, expiresAt: Int64? = nil, id: String = "jti-1",
                              session: String? = "sid-1") -> String {
        let now = start.wallSeconds
        return signer.sign(JWTClaims(subject: String(user), issuedAt: issuedAt ?? now, expiresAt: expiresAt ?? now + 900, id: id,
                                     issuer: "swift-chat", sessionID: session))
    }

    /// Raw claims signed with the right key (times the signer itself would never write).
    private static func rawToken(_ payload: String) -> String {
        let input = Base64URL.encode(#"{"alg":"HS256","typ":"JWT"}"#.utf8) + "." + Base64URL.encode(payload.utf8)
        return input + "." + Base64URL.encode(HMACSHA256.authenticationCode(key: secret, message: input.utf8))
    }

    private static func connectFrame(_ token: String) -> String { #"40{"token":"\#(token)"}"# }

    private static func later(_ milliseconds: Int64) -> SocketSessionMachine.Instant {
        SocketSessionMachine.Instant(monotonic: start.monotonic + UInt64(milliseconds) * 1_000_000,
                                     wallMilliseconds: start.wallMilliseconds + milliseconds)
    }

    /// A machine whose socket completed CONNECT with `token`.
    private static func connected(_ token: String = token(), budget: SocketEventBudget.Configuration? = nil) -> SocketSessionMachine {
        var machine = SocketSessionMachine(configuration: configuration(budget: budget), headerToken: nil, now: start)
        _ = machine.start()
        let actions = machine.received(text: connectFrame(token), now: start)
        #expect(actions.count == 1)
        _ = machine.admitted(socketID: "sock-1", now: start)
        #expect(machine.principal != nil)
        return machine
    }

    private static func sent(_ actions: [SocketSessionMachine.Action]) -> [String] {
        actions.compactMap { action in
            if case .send(let packet) = action { return packet.encoded }
            return nil
        }
    }

    private static func closeCode(_ actions: [SocketSessionMachine.Action]) -> UInt16? {
        for case .close(let code, _) in actions { return code }
        return nil
    }

    // MARK: CONNECT

    @Test func connectVerifiesTheTokenThenWaitsForTheChecks() throws {
        var machine = SocketSessionMachine(configuration: Self.configuration(), headerToken: nil, now: Self.start)
        #expect(machine.start() == [.armDeadline(after: .milliseconds(45_000))])
        let actions = machine.received(text: Self.connectFrame(Self.token()), now: Self.start)
        guard case .admit(let principal, _)? = actions.first else { Issue.record("expected admit, got \(actions)"); return }
        #expect(principal == Principal(userID: 7, tokenID: "jti-1", sessionID: "sid-1", expiresAt: Self.start.wallSeconds + 900))
        let admitted = machine.admitted(socketID: "s1", now: Self.start)
        // Expiry deadline: exp + 5 s leeway from now.
        #expect(admitted == [.armDeadline(after: .milliseconds(905_000)), .send(.connect(sid: "s1")), .didConnect(principal)])
    }

    @Test func absurdTokenTimesAreRefusedAsMalformedNotTrapped() {
        let now = Self.start.wallSeconds
        let payloads = [
            #"{"iss":"swift-chat","sub":"7","iat":\#(now),"exp":9223372036854771,"jti":"x"}"#,
            #"{"iss":"swift-chat","sub":"7","iat":\#(now),"exp":9223372036854775807,"jti":"x"}"#,
            #"{"iss":"swift-chat","sub":"7","iat":-9223372036854775808,"exp":\#(now + 60),"jti":"x"}"#,
            #"{"iss":"swift-chat","sub":"7","iat":\#(now),"exp":\#(now + 60),"nbf":-9223372036854775808,"jti":"x"}"#,
            #"{"iss":"swift-chat","sub":"7","iat":\#(now),"exp":\#(now + 60),"nbf":9223372036854775807,"jti":"x"}"#,
        ]
        for payload in payloads {
            var machine = SocketSessionMachine(configuration: Self.configuration(), headerToken: nil, now: Self.start)
            let actions = machine.received(text: Self.connectFrame(Self.rawToken(payload)), now: Self.start)
            #expect(Self.sent(actions).first?.contains(#""code":"token_malformed""#) == true, "\(payload): \(actions)")
            #expect(machine.state == .awaitingConnect)
        }
    }

    @Test func aFarButValidExpiryArmsABoundedTimerAndReArms() {
        // Year 9000: accepted; the timer is capped and re-armed rather than overflowing.
        var machine = Self.connected(Self.token(expiresAt: 221_845_392_000))
        #expect(machine.principal?.expiresAt == 221_845_392_000)
        let fired = machine.deadlineFired(now: Self.later(86_400_000))
        #expect(fired == [.armDeadline(after: .milliseconds(86_400_000))])
        let reauth = machine.received(text: #"421["authenticate",{"token":"\#(Self.token(id: "jti-2"))"}]"#, now: Self.start)
        guard case .confirmToken(let principal, let ackID)? = reauth.last else { Issue.record("\(reauth)"); return }
        let answer = machine.reauthenticated(principal, ackID: ackID, now: Self.start)
        #expect(Self.sent(answer) == [#"31[{"ok":true,"expiresAt":\#((Self.start.wallSeconds + 900) * 1000)}]"#])
    }

    @Test func anExpiredTokenEndsTheSocket() {
        var machine = Self.connected()
        let actions = machine.deadlineFired(now: Self.later(906_000))
        #expect(Self.sent(actions) == [#"2["error",{"code":"token_expired","message":"the access token expired; reconnect with a fresh token"}]"#, "1"])
        #expect(Self.closeCode(actions) == WebSocketCloseCode.policyViolation)
        #expect(machine.state == .closed)
    }

    @Test func noConnectInTimeCloses() {
        var machine = SocketSessionMachine(configuration: Self.configuration(), headerToken: nil, now: Self.start)
        #expect(Self.closeCode(machine.deadlineFired(now: Self.later(45_000))) == WebSocketCloseCode.policyViolation)
    }

    @Test func aDeadlinePassingDuringTheChecksClosesAfterARefusal() {
        var machine = SocketSessionMachine(configuration: Self.configuration(), headerToken: nil, now: Self.start)
        _ = machine.received(text: Self.connectFrame(Self.token()), now: Self.start)
        #expect(machine.deadlineFired(now: Self.later(45_000)).isEmpty)
        let actions = machine.refused(APIError(.redisUnavailable, message: "down"))
        #expect(Self.sent(actions) == [#"4{"message":"down","data":{"code":"redis_unavailable"}}"#])
        #expect(Self.closeCode(actions) == WebSocketCloseCode.policyViolation)
    }

    // MARK: Revocation

    @Test func revocationOfTheSessionOrTokenEndsTheSocket() {
        for revocation in [TokenRevocation(sessionID: "sid-1"), TokenRevocation(tokenID: "jti-1"), TokenRevocation(tokenID: "jti-1", sessionID: "sid-1")] {
            var machine = Self.connected()
            #expect(machine.revoke(TokenRevocation(sessionID: "other")).isEmpty)
            let actions = machine.revoke(revocation)
            #expect(Self.sent(actions) == [#"2["error",{"code":"token_revoked","message":"this token has been revoked; log in again"}]"#, "1"])
            #expect(Self.closeCode(actions) == WebSocketCloseCode.policyViolation)
        }
    }

    @Test func aRevocationDuringTheChecksRefusesTheConnect() {
        var machine = SocketSessionMachine(configuration: Self.configuration(), headerToken: nil, now: Self.start)
        _ = machine.received(text: Self.connectFrame(Self.token()), now: Self.start)
        #expect(machine.revoke(TokenRevocation(sessionID: "sid-1")).isEmpty)
        let actions = machine.admitted(socketID: "s1", now: Self.start)
        #expect(Self.sent(actions).first?.contains("token_revoked") == true)
        #expect(machine.principal == nil)
    }

    @Test func aRevokedTokenCannotBeAdoptedByAuthenticate() {
        var machine = Self.connected()
        let actions = machine.received(text: #"425["authenticate",{"token":"\#(Self.token(id: "jti-2", session: "sid-2"))"}]"#, now: Self.start)
        guard case .confirmToken(let principal, _)? = actions.last else { Issue.record("\(actions)"); return }
        _ = machine.revoke(TokenRevocation(sessionID: "sid-2"))
        let answer = machine.reauthenticated(principal, ackID: 5, now: Self.start)
        #expect(Self.sent(answer).first?.hasPrefix(#"35[{"error":{"code":"token_revoked""#) == true)
        #expect(machine.principal?.tokenID == "jti-1")
    }

    // MARK: Server acks

    @Test func aBurstOfServerAckRequestsGetsExactlyTheCap() {
        var machine = Self.connected()
        var accepted = 0
        var refused = 0
        for id in 1...200 {
            for packet in Self.sent(machine.received(text: #"42\#(id)["requestServerAck",{"event":"probe","data":\#(id)}]"#, now: Self.start)) {
                if packet.hasPrefix(#"2"#) && packet.contains("probe") { accepted += 1 }
                if packet.contains("too_many_pending_acks") { refused += 1 }
            }
        }
        #expect(accepted == 16)
        #expect(refused == 184)
        #expect(machine.pendingServerAcks == 16)
        // Server ack ids are even (odd ones name room messages). The client answers server ack 2:
        // the request (ack id 1) gets what it said, and a slot frees.
        #expect(Self.sent(machine.received(text: #"432["ok"]"#, now: Self.start)) == [#"31[{"clientAck":["ok"]}]"#])
        #expect(machine.pendingServerAcks == 15)
        #expect(Self.sent(machine.serverAckTimedOut(4)) == [#"32[{"error":{"code":"ack_timeout","message":"the client did not acknowledge in time"}}]"#])
        #expect(machine.serverAckTimedOut(4).isEmpty)
        #expect(machine.pendingServerAcks == 14)
    }

    /// Issue 13: the ack of a room message's frame (odd id: the message id × 2 + 1) confirms its
    /// delivery; an even id nobody waits for, or any ack before CONNECT, changes nothing.
    @Test func anOddAckConfirmsTheDeliveryOfTheMessageItNames() throws {
        #expect(SocketSessionMachine.deliveryAckID(messageID: 41) == 83)
        #expect(SocketSessionMachine.messageID(deliveryAckID: 83) == 41)
        #expect(SocketSessionMachine.messageID(deliveryAckID: 82) == nil)
        // Found by fuzzing: ack id 1 would name message 0, which no message has.
        #expect(SocketSessionMachine.messageID(deliveryAckID: 1) == nil)
        #expect(SocketSessionMachine.messageID(deliveryAckID: 3) == 1)
        #expect(SocketSessionMachine.deliveryAckID(messageID: 0) == nil)
        #expect(SocketSessionMachine.deliveryAckID(messageID: 1 << 52) == nil, "beyond what a JavaScript number holds exactly")
        let largest = try #require(SocketSessionMachine.deliveryAckID(messageID: (1 << 52) - 1))
        #expect(largest <= (1 << 53) - 1)

        var machine = Self.connected()
        #expect(machine.received(text: "4383[]", now: Self.start) == [.deliveryAcknowledged(messageID: 41, userID: 7)])
        #expect(machine.received(text: #"4383["any","answer"]"#, now: Self.start) == [.deliveryAcknowledged(messageID: 41, userID: 7)])
        #expect(machine.received(text: "4382[]", now: Self.start).isEmpty)
        var unconnected = SocketSessionMachine(configuration: Self.configuration(), headerToken: nil, now: Self.start)
        #expect(unconnected.received(text: "4383[]", now: Self.start).isEmpty)
    }

    /// Found by fuzzing (fuzz/session/seeds/reserved-event-name): the client named a lifecycle
    /// event and the server sent it back as a packet clients refuse.
    @Test func serverAcksRefuseReservedEventNames() {
        var machine = Self.connected()
        for name in SocketIOPacket.reservedEventNames.sorted() {
            let sent = Self.sent(machine.received(text: #"427["requestServerAck",{"event":"\#(name)"}]"#, now: Self.start))
            #expect(sent.count == 1 && sent[0].hasPrefix(#"37[{"error":{"code":"validation_failed""#), "\(name): \(sent)")
            for packet in sent { #expect((try? SocketIOPacket.decode(packet)) != nil, "\(packet)") }
        }
        #expect(machine.pendingServerAcks == 0)
    }

    // MARK: Namespaces

    @Test func packetsForAnotherNamespaceAreNotHandledAsTheMainOne() {
        var machine = Self.connected()
        let event = machine.received(text: #"42/admin,1["whoami"]"#, now: Self.start)
        #expect(Self.sent(event) == [#"2["error",{"code":"invalid_namespace","message":"not connected to namespace /admin; only / exists"}]"#])
        let send = machine.received(text: #"42/admin,["sendMessage",{"receiverId":2,"content":"x"}]"#, now: Self.start)
        #expect(!send.contains { if case .dispatch = $0 { true } else { false } })
        #expect(machine.received(text: "41/admin,", now: Self.start).isEmpty)
        #expect(machine.state != .closed)
        #expect(Self.sent(machine.received(text: #"429["whoami"]"#, now: Self.start)) == [#"39[{"userId":7,"socketId":"sock-1"}]"#])
        #expect(Self.sent(machine.received(text: #"40/admin,"#, now: Self.start)).first?.contains("invalid_namespace") == true)
    }

    // MARK: Event budget

    @Test func anEventFloodIsRefusedThenClosed() {
        let budget = SocketEventBudget.Configuration(ratePerSecond: 50, burst: 100, floodRefusals: 200)
        var machine = Self.connected(budget: budget)
        var answered = 0
        var limited = 0
        var closedAt: Int?
        for id in 1...1000 {
            let actions = machine.received(text: #"42\#(id)["ping"]"#, now: Self.start)
            for packet in Self.sent(actions) {
                if packet.contains(#""pong":true"#) { answered += 1 }
                if packet.contains(#""code":"rate_limited""#) && packet.contains(#""limit":"socket_events""#) { limited += 1 }
                if packet.contains(#""code":"event_flood""#) { closedAt = id }
            }
            if Self.closeCode(actions) != nil { break }
        }
        #expect(answered == 100)
        #expect(limited == 200)
        #expect(closedAt == 301)
        #expect(machine.state == .closed)
    }

    @Test func theBudgetRefillsAtItsRate() {
        var budget = SocketEventBudget(configuration: .init(ratePerSecond: 50, burst: 2, floodRefusals: 0), now: 0)
        #expect(budget.admit(now: 0) == .admitted)
        #expect(budget.admit(now: 0) == .admitted)
        #expect(budget.admit(now: 0) == .refused(retryAfter: .milliseconds(20)))
        // 1 ns short: the exact wait, which clients are told rounded up (retryAfterMs 1).
        #expect(budget.admit(now: 19_999_999) == .refused(retryAfter: .nanoseconds(1)))
        #expect(Duration.nanoseconds(1).millisecondsRoundedUp == 1)
        #expect(budget.admit(now: 20_000_000) == .admitted)
        // A clock that goes backwards or jumps to the end of time neither traps nor overfills.
        #expect(budget.admit(now: 10) == .refused(retryAfter: .milliseconds(20)))
        #expect(budget.admit(now: .max) == .admitted)
        #expect(budget.admit(now: .max) == .admitted)
        #expect(budget.admit(now: .max) == .refused(retryAfter: .milliseconds(20)))
        // floodRefusals 0 never closes.
        for _ in 0..<10_000 { #expect(budget.admit(now: .max) != .flood) }
    }

    // MARK: Robustness

    @Test func malformedInputClosesWithProtocolError() {
        for text in ["", "9", "4", "49", #"42["#, "0{}"] {
            var machine = Self.connected()
            #expect(Self.closeCode(machine.received(text: text, now: Self.start)) == WebSocketCloseCode.protocolError, "\(text)")
            #expect(machine.received(text: #"42["ping"]"#, now: Self.start).isEmpty)
        }
    }

    @Test func eventsBeforeConnectAreRefusedAndGatewayEventsAreDispatched() {
        var machine = SocketSessionMachine(configuration: Self.configuration(), headerToken: nil, now: Self.start)
        #expect(Self.sent(machine.received(text: #"423["sync"]"#, now: Self.start)) == [#"33[{"error":{"code":"not_connected","message":"send CONNECT first"}}]"#])
        machine = Self.connected()
        let actions = machine.received(text: #"424["sync",{"limit":5}]"#, now: Self.start)
        guard case .dispatch(let request)? = actions.last else { Issue.record("\(actions)"); return }
        #expect(request.event == .sync)
        #expect(request.ackID == 4)
        #expect(request.argument == ["limit": 5])
        #expect(actions.first == .countEvent("sync"))
    }
}
