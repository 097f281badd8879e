import Testing
@testable import Gateway
@testable import Shared

/// `RealtimeHub` over in-memory connections: which upgrades it refuses (status and code), where
/// workers' answers and user-channel events go, presence among contacts, the session count, and
/// the drain on shutdown with its grace timer on the manual clock.
@Suite struct RealtimeHubTests {
    init() { EventLoop.shared.startInBackground() }

    private static let upgradeHeaders: [(String, String)] = [
        ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
    ]

    // MARK: Upgrade refusals

    @Test @LoopActor func aWebSocketUpgradeThatSaysPollingIsRefusedWithTransportUnsupported() async throws {
        try await SocketPeer.withGateway { gateway in
            // Long-polling is plain HTTP (issue 15); an Upgrade request naming it is a client bug.
            let response = try await SocketPeer.refusedUpgrade(gateway, query: "EIO=4&transport=polling")
            #expect(response.status == 400)
            #expect(response.errorCode == ErrorCode.transportUnsupported.name)
            #expect(response.errorMessage == "use transport=websocket")
            #expect(gateway.services.realtime.sessionCount == 0)
        }
    }

    @Test @LoopActor func aMissingOrOtherEngineIOVersionIsRefusedWithProtocolUnsupported() async throws {
        try await SocketPeer.withGateway { gateway in
            for query in ["transport=websocket", "EIO=3&transport=websocket", "EIO=5&transport=websocket"] {
                let response = try await SocketPeer.refusedUpgrade(gateway, query: query)
                #expect(response.status == 400, "\(query)")
                #expect(response.errorCode == ErrorCode.protocolUnsupported.name, "\(query)")
                #expect(response.errorMessage == ErrorCode.protocolUnsupported.defaultMessage)
            }
        }
    }

    @Test @LoopActor func aMissingTransportIsRefusedWithTransportUnsupported() async throws {
        try await SocketPeer.withGateway { gateway in
            let response = try await SocketPeer.refusedUpgrade(gateway, query: "EIO=4")
            #expect(response.status == 400)
            #expect(response.errorCode == ErrorCode.transportUnsupported.name)
            #expect(response.errorMessage == "use transport=websocket")
        }
    }

    @Test @LoopActor func anOriginOutsideTheAllowedListIsRefusedWith403() async throws {
        try await SocketPeer.withGateway { gateway in
            let response = try await SocketPeer.refusedUpgrade(gateway, headers: [("Origin", "https://evil.example.com")])
            #expect(response.status == 403)
            #expect(response.errorCode == ErrorCode.originNotAllowed.name)
            #expect(response.errorMessage == ErrorCode.originNotAllowed.defaultMessage)
            let allowed = try await gateway.openSocket(headers: [("Origin", "https://app.example.com")])
            #expect(allowed.open?["sid"] != nil)
        }
    }

    @Test @LoopActor func socketsBeyondThePerAddressCapAreRefusedWith429UntilOneCloses() async throws {
        try await SocketPeer.withGateway(settings: ["MAX_CONNECTIONS_PER_IP": "2"]) { gateway in
            let address = "192.0.2.77"
            let first = try await gateway.openSocket(address: address)
            _ = try await gateway.openSocket(address: address)
            let response = try await SocketPeer.refusedUpgrade(gateway, address: address)
            #expect(response.status == 429)
            #expect(response.errorCode == ErrorCode.tooManyConnections.name)
            #expect(response.errorMessage == "too many sockets from this address (limit 2)")
            #expect(response.header("Retry-After") == "5")
            // Another address is not affected; a closed socket frees its slot.
            _ = try await gateway.openSocket(address: "192.0.2.78")
            try await SocketPeer.closeFromClient(first)
            _ = try await gateway.openSocket(address: address)
        }
    }

    @Test @LoopActor func anInvalidWebSocketHandshakeIsRefused() async throws {
        try await SocketPeer.withGateway { gateway in
            let path = "/socket.io/?EIO=4&transport=websocket"
            let noKey = try await gateway.http().request(.GET, path, headers: Self.upgradeHeaders.filter { $0.0 != "Sec-WebSocket-Key" })
            #expect(noKey.status == 400)
            #expect(noKey.errorCode == ErrorCode.badWebSocketHandshake.name)
            #expect(noKey.errorMessage == "the Sec-WebSocket-Key header is missing")
            let noUpgrade = try await gateway.http().request(.GET, path)
            #expect(noUpgrade.status == 400)
            #expect(noUpgrade.errorCode == ErrorCode.badWebSocketHandshake.name)
            let oldVersion = try await gateway.http().request(.GET, path, headers: Self.upgradeHeaders.map {
                $0.0 == "Sec-WebSocket-Version" ? ($0.0, "8") : $0
            })
            #expect(oldVersion.status == 426)
            #expect(oldVersion.errorCode == ErrorCode.websocketVersionUnsupported.name)
            #expect(oldVersion.header("Sec-WebSocket-Version") == "13")
            #expect(gateway.services.realtime.sessionCount == 0)
        }
    }

    // MARK: Routing

    @Test @LoopActor func aWorkersAnswerReachesOnlyTheSocketThatSentTheCommand() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let phone = try await gateway.connectedSocket(alice)
            let laptop = try await gateway.connectedSocket(alice)
            let phoneSession = try #require(phone.open?["sid"]?.stringValue)
            let laptopSession = try #require(laptop.open?["sid"]?.stringValue)
            // The same ack id on both sockets: the engine session tells them apart.
            phone.emit(SocketEvent.sendMessage.name, [["receiverId": .int(bob.id), "content": "from the phone"]], ack: 7)
            laptop.emit(SocketEvent.sendMessage.name, [["receiverId": .int(bob.id), "content": "from the laptop"]], ack: 7)
            var commands: [(id: String, envelope: CommandEnvelope)] = []
            try await until("both commands") {
                commands = try await gateway.commands()
                return commands.count == 2
            }
            let fromLaptop = try #require(commands.first { $0.envelope.reply?.engineSession == laptopSession })
            let fromPhone = try #require(commands.first { $0.envelope.reply?.engineSession == phoneSession })
            try await gateway.reply(to: fromLaptop.envelope, .ok(["id": 2]))
            #expect(try await laptop.ack(7) == [["id": 2]])
            let phoneSoFar = try await SocketPeer.messagesBeforeSentinel(gateway, phone, userID: alice.id)
            #expect(phoneSoFar.allSatisfy { !$0.hasPrefix("437") })
            try await gateway.reply(to: fromPhone.envelope, .ok(["id": 1]))
            #expect(try await phone.ack(7) == [["id": 1]])
        }
    }

    @Test @LoopActor func anAnswerForAClosedSocketIsDropped() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let gone = try await gateway.connectedSocket(alice)
            let other = try await gateway.connectedSocket(alice)
            gone.emit(SocketEvent.sendMessage.name, [["receiverId": .int(bob.id), "content": "hi"]], ack: 3)
            let command = try await gateway.nextCommand()
            try await SocketPeer.closeFromClient(gone)
            try await gateway.reply(to: command.envelope, .ok(["id": 1]))
            let seen = try await SocketPeer.messagesBeforeSentinel(gateway, other, userID: alice.id)
            #expect(seen.allSatisfy { !$0.hasPrefix("433") })
            #expect(gateway.services.submitter.waitingCount == 0)
        }
    }

    @Test @LoopActor func eventsOnAUsersChannelReachEverySocketOfThatUserAndNoOneElse() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let phone = try await gateway.connectedSocket(alice)
            let laptop = try await gateway.connectedSocket(alice)
            let bobs = try await gateway.connectedSocket(bob)
            let message: JSONValue = ["id": 42, "senderId": .int(bob.id), "receiverId": .int(alice.id), "content": "hello"]
            try await gateway.publish(.receiveMessage, message, to: alice.id)
            #expect(try await phone.event(SocketEvent.receiveMessage.name) == [message])
            #expect(try await laptop.event(SocketEvent.receiveMessage.name) == [message])
            let bobSaw = try await SocketPeer.messagesBeforeSentinel(gateway, bobs, userID: bob.id)
            #expect(SocketPeer.events(.receiveMessage, in: bobSaw).isEmpty)
        }
    }

    @Test @LoopActor func aSocketBeforeConnectGetsNoEventsOfTheUser() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let connected = try await gateway.connectedSocket(alice)
            let refused = try await gateway.openSocket()
            _ = try await refused.connectNamespace()  // token_missing: not admitted
            try await gateway.publish(.receiveMessage, ["id": 1], to: alice.id)
            #expect(try await connected.event(SocketEvent.receiveMessage.name) == [["id": 1]])
            #expect(refused.drainInbox().isEmpty)
            #expect(gateway.services.realtime.channels.sockets(of: alice.id).count == 1)
        }
    }

    // MARK: Presence

    /// Waits until the registry counts each of `users` online.
    @LoopActor private func online(_ gateway: GatewayHarness, _ users: [Int64]) async throws {
        try await until("the users online") {
            await gateway.services.presence.registry.onlineUsers(among: users).count == users.count
        }
    }

    @Test @LoopActor func getOnlineUsersListsOnlyContactsThatAreOnline() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let carol = try await gateway.account("carol")
            let dave = try await gateway.account("dave")
            try await SocketPeer.makeContacts(gateway, alice, bob)
            try await SocketPeer.makeContacts(gateway, dave, alice)
            let socket = try await gateway.connectedSocket(alice)
            _ = try await gateway.connectedSocket(bob)
            _ = try await gateway.connectedSocket(carol)  // online, but a stranger
            try await online(gateway, [bob.id, carol.id])
            socket.emit(SocketEvent.getOnlineUsers.name, [], ack: 1)
            #expect(try await socket.ack(1) == [[["userId": .int(bob.id), "username": .string(bob.username)]]])
        }
    }

    @Test @LoopActor func getOnlineUsersWithoutAnAckAnswersWithTheOnlineUsersEvent() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            try await SocketPeer.makeContacts(gateway, alice, bob)
            _ = try await gateway.connectedSocket(bob)
            try await online(gateway, [bob.id])
            let socket = try await gateway.connectedSocket(alice)
            // The list every socket gets after CONNECT, then the one asked for.
            let expected: JSONValue = [["userId": .int(bob.id), "username": .string(bob.username)]]
            #expect(try await socket.event(SocketEvent.onlineUsers.name) == [expected])
            socket.emit(SocketEvent.getOnlineUsers.name, [])
            #expect(try await socket.event(SocketEvent.onlineUsers.name) == [expected])
        }
    }

    @Test @LoopActor func contactsHearUserOnlineAtTheFirstSocketAndUserOfflineAfterTheLast() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            try await SocketPeer.makeContacts(gateway, alice, bob)
            let watcher = try await gateway.connectedSocket(alice)
            let phone = try await gateway.connectedSocket(bob)
            #expect(try await watcher.event(SocketEvent.userOnline.name) == [["userId": .int(bob.id), "username": .string(bob.username)]])
            let laptop = try await gateway.connectedSocket(bob)
            try await SocketPeer.closeFromClient(phone)
            // Bob's count in Redis is back to 1 (the laptop): no transition, nothing announced.
            let registry = gateway.services.presence.registry
            try await until("bob's count written") {
                let count = try await gateway.redis.send(["HGET", PresenceScripts.userKey(bob.id), "g:" + registry.instance])
                return count == .bulk(Array("1".utf8))
            }
            let meanwhile = try await SocketPeer.messagesBeforeSentinel(gateway, watcher, userID: alice.id)
            #expect(SocketPeer.events(.userOnline, in: meanwhile).isEmpty)
            #expect(SocketPeer.events(.userOffline, in: meanwhile).isEmpty)
            try await SocketPeer.closeFromClient(laptop)
            let offline = try #require(try await watcher.event(SocketEvent.userOffline.name).first)
            #expect(offline["userId"] == .int(bob.id))
            #expect(offline["username"] == .string(bob.username))
            #expect(offline["lastSeen"]?.stringValue != nil)
        }
    }

    @Test @LoopActor func strangersHearNothingOfAUsersPresence() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let carol = try await gateway.account("carol")
            try await SocketPeer.makeContacts(gateway, alice, bob)
            let contact = try await gateway.connectedSocket(alice)
            let stranger = try await gateway.connectedSocket(carol)
            let bobs = try await gateway.connectedSocket(bob)
            _ = try await contact.event(SocketEvent.userOnline.name)
            try await SocketPeer.closeFromClient(bobs)
            _ = try await contact.event(SocketEvent.userOffline.name)
            let heard = try await SocketPeer.messagesBeforeSentinel(gateway, stranger, userID: carol.id)
            #expect(SocketPeer.events(.userOnline, in: heard).isEmpty)
            #expect(SocketPeer.events(.userOffline, in: heard).isEmpty)
        }
    }

    // MARK: Sessions

    @Test @LoopActor func theSessionCountReturnsToZeroWhenSocketsClose() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let hub = gateway.services.realtime
            let sockets = [try await gateway.connectedSocket(alice), try await gateway.connectedSocket(alice), try await gateway.openSocket()]
            #expect(hub.sessionCount == 3)
            #expect(hub.channels.sockets(of: alice.id).count == 2)
            #expect(gateway.services.presence.registry.localCount(alice.id) == 2)
            for socket in sockets { try await SocketPeer.closeFromClient(socket) }
            #expect(hub.sessionCount == 0)
            #expect(hub.channels.sockets(of: alice.id).isEmpty)
            #expect(gateway.services.presence.registry.localCount(alice.id) == 0)
        }
    }

    @Test @LoopActor func aServerClosedSocketLeavesWhenTheCloseHandshakeTimesOut() async throws {
        try await SocketPeer.withGateway(settings: ["SOCKETIO_CONNECT_TIMEOUT_MS": "1000"]) { gateway in
            let socket = try await gateway.openSocket()
            gateway.clock.advance(by: .milliseconds(1_000))
            #expect(try await socket.closed() == WebSocketCloseCode.policyViolation)
            // The client never answers the close frame: the connection ends after the close timeout.
            #expect(gateway.services.realtime.sessionCount == 1)
            gateway.clock.advance(by: .milliseconds(2_000))
            #expect(socket.connection.isClosed)
            #expect(gateway.services.realtime.sessionCount == 0)
        }
    }

    // MARK: Drain

    @Test @LoopActor func drainClosesSocketsRefusesUpgradesAndCompletesOnceTheyAreGone() async throws {
        try await SocketPeer.withGateway { gateway in
            let connected = try await gateway.connectedSocket(try await gateway.account())
            let opened = try await gateway.openSocket()
            let completed = SocketsCompletionCount()
            gateway.services.realtime.shutdown(grace: .milliseconds(10_000)) { completed.record() }
            for socket in [connected, opened] {
                #expect(try await socket.closed() == WebSocketCloseCode.goingAway)
                #expect(socket.closeReason == "server shutting down")
            }
            let refused = try await SocketPeer.refusedUpgrade(gateway)
            #expect(refused.status == 503)
            #expect(refused.errorCode == ErrorCode.shuttingDown.name)
            #expect(refused.header("Retry-After") == "1")
            #expect(completed.value == 0)
            try await SocketPeer.closeFromClient(connected)
            #expect(completed.value == 0)
            try await SocketPeer.closeFromClient(opened)
            #expect(completed.value == 1)
            #expect(gateway.services.realtime.sessionCount == 0)
        }
    }

    @Test @LoopActor func drainCompletesAtTheGraceTimeoutWhenSocketsLinger() async throws {
        try await SocketPeer.withGateway { gateway in
            let socket = try await gateway.connectedSocket(try await gateway.account())
            let completions = SocketsCompletionCount()
            gateway.services.realtime.shutdown(grace: .milliseconds(1_000)) { completions.record() }
            #expect(try await socket.closed() == WebSocketCloseCode.goingAway)
            gateway.clock.advance(by: .milliseconds(999))
            #expect(completions.value == 0)
            gateway.clock.advance(by: .milliseconds(1))
            #expect(completions.value == 1)
            #expect(gateway.services.realtime.sessionCount == 1)
            // The close handshake times out later: the session goes, the completion is not called again.
            gateway.clock.advance(by: .milliseconds(1_000))
            #expect(gateway.services.realtime.sessionCount == 0)
            #expect(completions.value == 1)
        }
    }

    @Test @LoopActor func drainWithoutSocketsCompletesAtOnce() async throws {
        try await SocketPeer.withGateway { gateway in
            let completed = SocketsCompletionCount()
            gateway.services.realtime.shutdown(grace: .milliseconds(10_000)) { completed.record() }
            #expect(completed.value == 1)
            let refused = try await SocketPeer.refusedUpgrade(gateway)
            #expect(refused.errorCode == ErrorCode.shuttingDown.name)
        }
    }
}
