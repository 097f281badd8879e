import Testing
@testable import Gateway
@testable import Shared

/// `SocketSession` end to end over an in-memory WebSocket: the Engine.IO open packet, CONNECT and
/// each refusal, the connect deadline, the heartbeat, token expiry, re-authentication, revocation,
/// acks both ways, binary and flooding clients, all timers driven by the manual clock.
@Suite struct SocketSessionTests {
    init() { EventLoop.shared.startInBackground() }

    /// The socket has neither been sent a close frame nor lost its connection.
    @LoopActor private func isOpen(_ socket: TestSocket) -> Bool {
        socket.pump()
        return socket.closeCode == nil && !socket.connection.isClosed
    }

    /// The `44{...}` refusal's `message` and `data.code`.
    private func refusal(_ answer: String) -> (message: String?, code: String?) {
        guard answer.hasPrefix("44"), let json = try? JSONParser.parse(Array(answer.utf8.dropFirst(2))) else { return (nil, nil) }
        return (json["message"]?.stringValue, json["data"]?["code"]?.stringValue)
    }

    // MARK: Open and CONNECT

    @Test @LoopActor func theOpenPacketCarriesTheSessionIdAndTheConfiguredTimings() async throws {
        try await SocketPeer.withGateway(settings: [
            "SOCKETIO_PING_INTERVAL_MS": "12000", "SOCKETIO_PING_TIMEOUT_MS": "7000", "SOCKETIO_MAX_PAYLOAD_BYTES": "65536",
        ]) { gateway in
            let first = try await gateway.openSocket()
            let second = try await gateway.openSocket()
            let open = try #require(first.open)
            let sid = try #require(open["sid"]?.stringValue)
            #expect(!sid.isEmpty)
            #expect(open["upgrades"] == [])
            #expect(open["pingInterval"] == 12_000)
            #expect(open["pingTimeout"] == 7_000)
            #expect(open["maxPayload"] == 65_536)
            #expect(second.open?["sid"]?.stringValue != sid)
            #expect(gateway.services.realtime.session(engineID: sid) != nil)
        }
    }

    @Test @LoopActor func connectWithTheTokenInTheAuthObjectAnswersTheSocketId() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.openSocket()
            let answer = try await socket.connectNamespace(auth: ["token": .string(alice.token)])
            #expect(answer.hasPrefix("40{"))
            let socketID = try #require(try JSONParser.parse(Array(answer.utf8.dropFirst(2)))["sid"]?.stringValue)
            #expect(!socketID.isEmpty)
            socket.emit(SocketEvent.whoami.name, [], ack: 1)
            let whoami = try await socket.ack(1)
            #expect(whoami == [["userId": .int(alice.id), "socketId": .string(socketID)]])
            let engineID = try #require(socket.open?["sid"]?.stringValue)
            #expect(gateway.services.realtime.session(engineID: engineID)?.userID == alice.id)
        }
    }

    @Test @LoopActor func connectUsesTheBearerTokenOfTheUpgradeRequestWhenAuthHasNone() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.openSocket(headers: [("Authorization", "Bearer \(alice.token)")])
            let answer = try await socket.connectNamespace()
            #expect(answer.hasPrefix("40{"))
            socket.emit(SocketEvent.whoami.name, [], ack: 2)
            #expect(try await socket.ack(2).first?["userId"] == .int(alice.id))
        }
    }

    @Test @LoopActor func connectWithoutATokenIsRefusedAndTheSocketMayTryAgain() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.openSocket()
            let refused = refusal(try await socket.connectNamespace())
            #expect(refused.code == ErrorCode.tokenMissing.name)
            #expect(refused.message == "send the access token as auth {token} or an Authorization: Bearer header")
            #expect(isOpen(socket))
            let answer = try await socket.connectNamespace(auth: ["token": .string(alice.token)])
            #expect(answer.hasPrefix("40{"))
        }
    }

    @Test @LoopActor func aMalformedTokenIsRefusedWithTokenMalformed() async throws {
        try await SocketPeer.withGateway { gateway in
            let socket = try await gateway.openSocket()
            let refused = refusal(try await socket.connectNamespace(auth: ["token": "not-a-token"]))
            #expect(refused.code == ErrorCode.tokenMalformed.name)
            #expect(refused.message == "token is malformed: expected three segments separated by '.'")
            #expect(isOpen(socket))
        }
    }

    @Test @LoopActor func aTokenSignedWithAnotherKeyIsRefusedWithTokenSignature() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let forged = SocketPeer.token(gateway, userID: alice.id, secret: Array(String(repeating: "z", count: 48).utf8))
            let socket = try await gateway.openSocket()
            let refused = refusal(try await socket.connectNamespace(auth: ["token": .string(forged)]))
            #expect(refused.code == ErrorCode.tokenSignature.name)
            #expect(refused.message == "token signature is invalid")
            #expect(isOpen(socket))
        }
    }

    @Test @LoopActor func anExpiredTokenIsRefusedWithTokenExpired() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            // Expired 70 s ago, far beyond the 5 s leeway.
            let expired = SocketPeer.token(gateway, userID: alice.id, lifetimeSeconds: 30, issuedAt: gateway.clock.wallSeconds() - 100)
            let socket = try await gateway.openSocket()
            let refused = refusal(try await socket.connectNamespace(auth: ["token": .string(expired)]))
            #expect(refused.code == ErrorCode.tokenExpired.name)
            #expect(refused.message == "token has expired")
            #expect(isOpen(socket))
        }
    }

    @Test @LoopActor func aTokenRevokedByLogoutIsRefusedWithTokenRevoked() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let logout = try await gateway.request(.POST, "/api/auth/logout", token: alice.token)
            #expect(logout.status == 200)
            let socket = try await gateway.openSocket()
            let refused = refusal(try await socket.connectNamespace(auth: ["token": .string(alice.token)]))
            #expect(refused.code == ErrorCode.tokenRevoked.name)
            #expect(refused.message == "this token has been revoked; log in again")
            #expect(isOpen(socket))
            #expect(gateway.services.realtime.channels.sockets(of: alice.id).isEmpty)
        }
    }

    @Test @LoopActor func theTokenOfADeletedAccountIsRefusedAsRevoked() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            try await gateway.sql("DELETE FROM users WHERE id = $1", [.int64(alice.id)])
            let socket = try await gateway.openSocket()
            let refused = refusal(try await socket.connectNamespace(auth: ["token": .string(alice.token)]))
            #expect(refused.code == ErrorCode.tokenRevoked.name)
            #expect(refused.message == "this account no longer exists")
            #expect(isOpen(socket))
            #expect(gateway.services.realtime.channels.sockets(of: alice.id).isEmpty)
        }
    }

    @Test @LoopActor func connectToAnotherNamespaceIsRefusedAndTheDefaultOneStillConnects() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.openSocket()
            socket.send("40/admin," + (["token": JSONValue.string(alice.token)] as JSONValue).jsonString)
            let answer = try await socket.next()
            #expect(answer.hasPrefix("44/admin,"))
            let json = try JSONParser.parse(Array(answer.utf8.dropFirst("44/admin,".utf8.count)))
            #expect(json["message"] == "unknown namespace /admin")
            #expect(json["data"]?["code"]?.stringValue == ErrorCode.invalidNamespace.name)
            #expect(try await socket.connectNamespace(auth: ["token": .string(alice.token)]).hasPrefix("40{"))
        }
    }

    @Test @LoopActor func aSecondConnectAnswersTheSameSocketIdAgain() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.openSocket()
            let first = try await socket.connectNamespace(auth: ["token": .string(alice.token)])
            #expect(first.hasPrefix("40{"))
            socket.send("40")
            var second = try await socket.next()
            // The automatic onlineUsers event may come in between.
            while !second.hasPrefix("40") { second = try await socket.next() }
            #expect(second == first)
            #expect(isOpen(socket))
        }
    }

    // MARK: Connect deadline

    @Test @LoopActor func aSocketThatNeverConnectsIsClosedAtTheConnectDeadline() async throws {
        try await SocketPeer.withGateway(settings: ["SOCKETIO_CONNECT_TIMEOUT_MS": "3000"]) { gateway in
            let socket = try await gateway.openSocket()
            gateway.clock.advance(by: .milliseconds(2_999))
            #expect(isOpen(socket))
            gateway.clock.advance(by: .milliseconds(1))
            #expect(try await socket.closed() == WebSocketCloseCode.policyViolation)
            #expect(socket.closeReason == "no Socket.IO CONNECT in time")
        }
    }

    @Test @LoopActor func aRefusedConnectDoesNotStopTheConnectDeadline() async throws {
        try await SocketPeer.withGateway(settings: ["SOCKETIO_CONNECT_TIMEOUT_MS": "3000"]) { gateway in
            let socket = try await gateway.openSocket()
            gateway.clock.advance(by: .milliseconds(2_000))
            #expect(refusal(try await socket.connectNamespace(auth: ["token": "bad"])).code == ErrorCode.tokenMalformed.name)
            gateway.clock.advance(by: .milliseconds(1_000))
            #expect(try await socket.closed() == WebSocketCloseCode.policyViolation)
        }
    }

    @Test @LoopActor func aConnectedSocketOutlivesTheConnectDeadline() async throws {
        try await SocketPeer.withGateway(settings: ["SOCKETIO_CONNECT_TIMEOUT_MS": "3000"]) { gateway in
            let socket = try await gateway.connectedSocket(try await gateway.account())
            gateway.clock.advance(by: .milliseconds(10_000))
            #expect(isOpen(socket))
        }
    }

    // MARK: Heartbeat

    @Test @LoopActor func aClientAnsweringPingsKeepsItsSocket() async throws {
        try await SocketPeer.withGateway { gateway in
            let socket = try await gateway.connectedSocket(try await gateway.account())
            for round in 1...4 {
                gateway.clock.advance(by: .milliseconds(25_000))
                #expect(isOpen(socket))
                #expect(socket.pingsSeen == round)
            }
        }
    }

    @Test @LoopActor func aSilentClientIsClosedAfterThePingTimeout() async throws {
        try await SocketPeer.withGateway { gateway in
            let socket = try await gateway.connectedSocket(try await gateway.account())
            socket.answersPings = false
            gateway.clock.advance(by: .milliseconds(24_900))
            socket.pump()
            #expect(socket.pingsSeen == 0)
            gateway.clock.advance(by: .milliseconds(100))
            socket.pump()
            #expect(socket.pingsSeen == 1)
            gateway.clock.advance(by: .milliseconds(19_900))
            #expect(isOpen(socket))
            gateway.clock.advance(by: .milliseconds(100))
            #expect(try await socket.closed() == WebSocketCloseCode.goingAway)
            #expect(socket.closeReason == "ping timeout")
        }
    }

    // MARK: Token expiry and re-authentication

    @Test @LoopActor func anExpiringTokenEndsTheSocketWithTokenExpired() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let shortLived = SocketPeer.token(gateway, userID: alice.id, lifetimeSeconds: 10)
            let socket = try await gateway.openSocket()
            #expect(try await socket.connectNamespace(auth: ["token": .string(shortLived)]).hasPrefix("40{"))
            // exp + 5 s leeway is 14 to 15 s away.
            gateway.clock.advance(by: .milliseconds(14_000))
            #expect(isOpen(socket))
            gateway.clock.advance(by: .milliseconds(1_000))
            #expect(try await socket.closed() == WebSocketCloseCode.policyViolation)
            #expect(socket.closeReason == "token expired")
            let messages = socket.drainInbox()
            let errors = SocketPeer.errors(in: messages)
            #expect(errors == [["code": .string(ErrorCode.tokenExpired.name), "message": "the access token expired; reconnect with a fresh token"]])
            #expect(messages.last == "41")
        }
    }

    @Test @LoopActor func authenticateWithAFreshTokenExtendsTheSocketsLife() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.openSocket()
            let shortLived = SocketPeer.token(gateway, userID: alice.id, lifetimeSeconds: 10)
            #expect(try await socket.connectNamespace(auth: ["token": .string(shortLived)]).hasPrefix("40{"))
            let issuedAt = gateway.clock.wallSeconds()
            let fresh = SocketPeer.token(gateway, userID: alice.id, lifetimeSeconds: 600, issuedAt: issuedAt)
            socket.emit(SocketEvent.authenticate.name, [["token": .string(fresh)]], ack: 4)
            #expect(try await socket.ack(4) == [["ok": true, "expiresAt": .int((issuedAt + 600) * 1000)]])
            gateway.clock.advance(by: .milliseconds(20_000))
            #expect(isOpen(socket))
            socket.emit(SocketEvent.whoami.name, [], ack: 5)
            #expect(try await socket.ack(5).first?["userId"] == .int(alice.id))
        }
    }

    @Test @LoopActor func authenticateWithARevokedTokenIsRefusedAndKeepsTheSocket() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.connectedSocket(alice)
            // A second login session, logged out: its token is revoked, the socket's is not.
            let login = try await gateway.request(.POST, "/api/auth/login", json: ["email": .string(alice.email), "password": .string(alice.password)])
            let other = try #require(login.json?["token"]?.stringValue)
            #expect(try await gateway.request(.POST, "/api/auth/logout", token: other).status == 200)
            socket.emit(SocketEvent.authenticate.name, [["token": .string(other)]], ack: 6)
            let ack = try await socket.ack(6)
            #expect(ack == [["error": ["code": .string(ErrorCode.tokenRevoked.name), "message": "this token has been revoked; log in again"]]])
            #expect(isOpen(socket))
        }
    }

    @Test @LoopActor func authenticateWithAnotherUsersTokenIsRefused() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.authenticate.name, [["token": .string(bob.token)]], ack: 7)
            #expect(try await socket.ack(7).first?["error"]?["code"]?.stringValue == ErrorCode.tokenUserMismatch.name)
            socket.emit(SocketEvent.authenticate.name, [["nothing": true]])
            let error = try await socket.event(SocketEvent.error.name)
            #expect(error == [["code": .string(ErrorCode.validationFailed.name), "message": "field 'token' is required"]])
            #expect(isOpen(socket))
        }
    }

    // MARK: Revocation

    @Test @LoopActor func loggingOutElsewhereDisconnectsTheSocket() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.connectedSocket(alice)
            #expect(try await gateway.request(.POST, "/api/auth/logout", token: alice.token).status == 200)
            #expect(try await socket.closed() == WebSocketCloseCode.policyViolation)
            #expect(socket.closeReason == "token revoked")
            let messages = socket.drainInbox()
            #expect(SocketPeer.errors(in: messages) == [["code": .string(ErrorCode.tokenRevoked.name),
                                                       "message": "this token has been revoked; log in again"]])
            #expect(messages.last == "41")
        }
    }

    @Test @LoopActor func aRevocationOfAnotherSessionLeavesTheSocketConnected() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.connectedSocket(alice)
            let login = try await gateway.request(.POST, "/api/auth/login", json: ["email": .string(alice.email), "password": .string(alice.password)])
            let other = try #require(login.json?["token"]?.stringValue)
            #expect(try await gateway.request(.POST, "/api/auth/logout", token: other).status == 200)
            // The revocation went through the user's channel before the sentinel did.
            let before = try await SocketPeer.messagesBeforeSentinel(gateway, socket, userID: alice.id)
            #expect(SocketPeer.errors(in: before).isEmpty)
            #expect(isOpen(socket))
        }
    }

    // MARK: Acks

    @Test @LoopActor func pingAndWhoamiAnswerAsAcksOrAsEvents() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.ping.name, ["hello"], ack: 11)
            let pong = try #require(try await socket.ack(11).first)
            #expect(pong["pong"] == true)
            #expect(pong["echo"] == "hello")
            #expect(pong["time"]?.int64Value == gateway.clock.wallMilliseconds())
            socket.emit(SocketEvent.ping.name, [])
            let event = try await socket.event(SocketEvent.pong.name)
            #expect(event.first?["pong"] == true)
            #expect(event.first?["echo"] == nil)
            socket.emit(SocketEvent.whoami.name, [])
            #expect(try await socket.event(SocketEvent.whoami.name).first?["userId"] == .int(alice.id))
        }
    }

    @Test @LoopActor func everyEventWithAnAckIdIsAnsweredOnItsAck() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let socket = try await gateway.connectedSocket(alice)
            let arguments: [(SocketEvent, JSONValue)] = [
                (.ping, "x"), (.whoami, .null), (.authenticate, [:]), (.requestServerAck, [:]), (.sendMessage, [:]),
                (.messageRead, [:]), (.markAllAsRead, [:]), (.typing, ["receiverId": .int(bob.id)]),
                (.stopTyping, ["receiverId": .int(bob.id)]), (.sync, .null), (.getOnlineUsers, .null),
                // The room requests (issue 13): two reads that answer, the others refused before the stream.
                (.createRoom, [:]), (.getRoom, [:]), (.getMyRooms, .null), (.getPublicRooms, .null), (.joinRoom, [:]),
                (.leaveRoom, [:]), (.getRoomMembers, [:]), (.addRoomMember, [:]), (.removeRoomMember, [:]),
                (.setRoomMemberRole, [:]), (.updateRoom, [:]), (.rotateRoomInvite, [:]), (.deleteRoom, [:]), (.getRoomMessages, [:]),
                (.getMessageReceipts, [:]), (.messageDelivered, [:]), (.getRoomPresence, [:]), (.presenceSubscribe, [:]),
                // Edits and deletes (issue 14): refused before the stream (no message id).
                (.editMessage, [:]), (.deleteMessage, [:]), (.searchMessages, [:]),
                (.getConversations, .null), (.getUnreadCounts, .null), (.addReaction, [:]), (.removeReaction, [:]),
            ]
            #expect(arguments.map(\.0.name).sorted() == SocketEvent.client.map(\.name).sorted())
            for (index, (event, argument)) in arguments.enumerated() {
                socket.emit(event.name, argument.isNull ? [] : [argument], ack: Int64(100 + index))
            }
            for index in arguments.indices {
                let ack = try await socket.ack(Int64(100 + index))
                #expect(ack.count == 1, "the ack of \(arguments[index].0) has one argument")
            }
            // No command was appended: every messaging event above was refused before the stream.
            #expect(try await gateway.commands().isEmpty)
        }
    }

    @Test @LoopActor func requestServerAckCarriesTheClientsAnswerBack() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.requestServerAck.name, [["event": "confirmMe", "data": ["n": 1]]], ack: 5)
            var emitted: SocketPeer.Packet?
            while emitted == nil {
                let packet = SocketPeer.packet(try await socket.next())
                if packet?.type == "2", packet?.eventName == "confirmMe" { emitted = packet }
            }
            let serverAck = try #require(emitted?.ackID)
            #expect(emitted?.arguments == [["n": 1]])
            socket.send("43\(serverAck)[\"seen\",2]")
            #expect(try await socket.ack(5) == [["clientAck": ["seen", 2]]])
            // An ack answered once is forgotten: answering again changes nothing.
            socket.send("43\(serverAck)[\"again\"]")
            let before = try await SocketPeer.messagesBeforeSentinel(gateway, socket, userID: alice.id)
            #expect(before.allSatisfy { !$0.hasPrefix("435") })
        }
    }

    @Test @LoopActor func aServerAckWithoutAnAnswerTimesOut() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account()
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.requestServerAck.name, [["event": "confirmMe"]], ack: 8)
            while SocketPeer.packet(try await socket.next())?.eventName != "confirmMe" {}
            gateway.clock.advance(by: .milliseconds(9_999))
            let early = try await SocketPeer.messagesBeforeSentinel(gateway, socket, userID: alice.id)
            #expect(early.allSatisfy { !$0.hasPrefix("438") })
            gateway.clock.advance(by: .milliseconds(1))
            #expect(try await socket.ack(8) == [["error": ["code": .string(ErrorCode.ackTimeout.name),
                                                           "message": "the client did not acknowledge in time"]]])
        }
    }

    @Test @LoopActor func requestServerAckRefusesAReservedEventName() async throws {
        try await SocketPeer.withGateway { gateway in
            let socket = try await gateway.connectedSocket(try await gateway.account())
            socket.emit(SocketEvent.requestServerAck.name, [["event": "disconnect"]], ack: 9)
            #expect(try await socket.ack(9) == [["error": ["code": .string(ErrorCode.validationFailed.name),
                                                           "message": "field 'event' must not be a name Socket.IO reserves (disconnect)"]]])
        }
    }

    // MARK: Refused input

    @Test @LoopActor func anEventBeforeConnectIsRefusedWithNotConnected() async throws {
        try await SocketPeer.withGateway { gateway in
            let socket = try await gateway.openSocket()
            socket.emit(SocketEvent.whoami.name, [], ack: 1)
            #expect(try await socket.ack(1) == [["error": ["code": .string(ErrorCode.notConnected.name), "message": "send CONNECT first"]]])
            #expect(isOpen(socket))
        }
    }

    @Test @LoopActor func anUnknownEventIsRefusedWithUnknownEvent() async throws {
        try await SocketPeer.withGateway { gateway in
            let socket = try await gateway.connectedSocket(try await gateway.account())
            socket.emit("fly", [], ack: 3)
            #expect(try await socket.ack(3) == [["error": ["code": .string(ErrorCode.unknownEvent.name), "message": "unknown event 'fly'"]]])
            socket.emit("fly", [])
            #expect(try await socket.event(SocketEvent.error.name).first?["code"]?.stringValue == ErrorCode.unknownEvent.name)
        }
    }

    @Test @LoopActor func binaryFramesAndBinaryEventsAreRefusedWithoutClosing() async throws {
        try await SocketPeer.withGateway { gateway in
            let socket = try await gateway.connectedSocket(try await gateway.account())
            socket.send(frame: .binary, payload: [1, 2, 3])
            #expect(try await socket.event(SocketEvent.error.name) == [["code": .string(ErrorCode.binaryNotSupported.name),
                                                                        "message": "binary packets are not supported; send JSON text"]])
            socket.send(#"451-7["ping",{"_placeholder":true,"num":0}]"#)
            #expect(try await socket.ack(7) == [["error": ["code": .string(ErrorCode.binaryNotSupported.name),
                                                           "message": "binary events are not supported; send JSON"]]])
            #expect(isOpen(socket))
        }
    }

    @Test @LoopActor func aMalformedPacketClosesTheSocketWithAProtocolError() async throws {
        try await SocketPeer.withGateway { gateway in
            let socket = try await gateway.connectedSocket(try await gateway.account())
            socket.send("42[not json")
            #expect(try await socket.closed() == WebSocketCloseCode.protocolError)
            #expect(socket.closeReason == "malformed Socket.IO packet")
        }
    }

    // MARK: Event budget

    @Test @LoopActor func eventsBeyondTheBudgetAreRefusedUntilItRefills() async throws {
        try await SocketPeer.withGateway(settings: ["SOCKET_EVENT_RATE": "1", "SOCKET_EVENT_BURST": "2", "SOCKET_EVENT_FLOOD_CLOSE": "5"]) { gateway in
            let socket = try await gateway.connectedSocket(try await gateway.account())
            socket.emit(SocketEvent.ping.name, [], ack: 1)
            socket.emit(SocketEvent.ping.name, [], ack: 2)
            socket.emit(SocketEvent.ping.name, [], ack: 3)
            #expect(try await socket.ack(1).first?["pong"] == true)
            #expect(try await socket.ack(2).first?["pong"] == true)
            #expect(try await socket.ack(3) == [["error": [
                "code": .string(ErrorCode.rateLimited.name), "message": "too many events on this socket (1/s, burst 2); retry in 1000 ms",
                "limit": .string(SocketSessionMachine.eventBudgetLimit), "retryAfterMs": 1000,
            ]]])
            gateway.clock.advance(by: .milliseconds(1_000))
            socket.emit(SocketEvent.ping.name, [], ack: 4)
            #expect(try await socket.ack(4).first?["pong"] == true)
            #expect(isOpen(socket))
        }
    }

    @Test @LoopActor func aSocketThatKeepsFloodingIsClosedWithEventFlood() async throws {
        try await SocketPeer.withGateway(settings: ["SOCKET_EVENT_RATE": "1", "SOCKET_EVENT_BURST": "2", "SOCKET_EVENT_FLOOD_CLOSE": "2"]) { gateway in
            let socket = try await gateway.connectedSocket(try await gateway.account())
            for ack in 1...5 { socket.emit(SocketEvent.ping.name, [], ack: Int64(ack)) }
            #expect(try await socket.closed() == WebSocketCloseCode.policyViolation)
            #expect(socket.closeReason == "event flood")
            let packets = socket.drainInbox().compactMap(SocketPeer.packet)
            let acks = packets.filter { $0.type == "3" }
            #expect(acks.map(\.ackID) == [1, 2, 3, 4])
            #expect(acks.suffix(2).allSatisfy { $0.arguments.first?["error"]?["code"]?.stringValue == ErrorCode.rateLimited.name })
            let errors = packets.filter { $0.eventName == SocketEvent.error.name }.map { $0.arguments.first }
            #expect(errors == [["code": .string(ErrorCode.eventFlood.name), "message": .string(ErrorCode.eventFlood.defaultMessage)]])
            #expect(packets.last?.type == "1")
        }
    }
}
