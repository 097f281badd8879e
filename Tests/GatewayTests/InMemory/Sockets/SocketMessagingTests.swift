import Testing
@testable import Gateway
@testable import Shared

/// The messaging events of a socket (`SocketMessaging`) over the real hub: commands on the stream
/// with their reply address, the worker's answer or its timeout as the ack, refusals before the
/// stream, `sync` from Postgres, the typing relay and its timers, and the API budget.
@Suite struct SocketMessagingTests {
    init() { EventLoop.shared.startInBackground() }

    /// The ack of a refusal: `[{"error": {code, message}}]`.
    private func refusal(_ code: ErrorCode, _ message: String) -> [JSONValue] {
        [["error": ["code": .string(code.name), "message": .string(message)]]]
    }

    // MARK: sendMessage

    @Test @LoopActor func sendMessageAppendsASendCommandWithTheSocketsReplyAddress() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.sendMessage.name, [["receiverId": .int(bob.id), "content": "hello", "clientMsgId": "c-1"]], ack: 7)
            let command = try await gateway.nextCommand()
            #expect(command.envelope.command == .send(SendMessage(receiverID: bob.id, content: "hello", clientMsgID: "c-1")))
            #expect(command.envelope.userID == alice.id)
            let engineSession = try #require(socket.open?["sid"]?.stringValue)
            #expect(command.envelope.reply == ReplyAddress(gateway: gateway.configuration.gatewayID, engineSession: engineSession, ack: 7))
        }
    }

    @Test @LoopActor func sendMessageKeepsTheTypeAndAttachmentAndAcceptsAStringId() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.sendMessage.name, [[
                "receiverId": .string(String(bob.id)), "content": "look", "type": "image", "attachmentUrl": "https://cdn.example.com/a.png",
                "clientMsgId": "img-1",
            ]])
            let command = try await gateway.nextCommand()
            #expect(command.envelope.command == .send(SendMessage(receiverID: bob.id, content: "look", type: .image,
                                                                  attachmentURL: "https://cdn.example.com/a.png", clientMsgID: "img-1")))
            #expect(command.envelope.reply?.ack == nil)
        }
    }

    @Test @LoopActor func aSendWithoutClientMsgIdGetsAGeneratedOne() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.sendMessage.name, [["receiverId": .int(bob.id), "content": "one"]])
            socket.emit(SocketEvent.sendMessage.name, [["receiverId": .int(bob.id), "content": "two"]])
            var commands: [(id: String, envelope: CommandEnvelope)] = []
            try await until("two commands") {
                commands = try await gateway.commands()
                return commands.count == 2
            }
            let ids = commands.compactMap { entry -> String? in
                if case .send(let message) = entry.envelope.command { return message.clientMsgID }
                return nil
            }
            #expect(ids.count == 2)
            #expect(Set(ids).count == 2)
            for id in ids { #expect(throws: Never.self) { try ChatCommand.validateClientMsgID(id) } }
        }
    }

    @Test @LoopActor func theWorkersResultIsTheAck() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.sendMessage.name, [["receiverId": .int(bob.id), "content": "hello"]], ack: 3)
            let command = try await gateway.nextCommand()
            let result: JSONValue = ["id": 501, "seq": 1, "content": "hello", "senderId": .int(alice.id)]
            try await gateway.reply(to: command.envelope, .ok(result))
            #expect(try await socket.ack(3) == [result])
            #expect(gateway.services.submitter.waitingCount == 0)
        }
    }

    @Test @LoopActor func aWorkersFailureIsTheAcksErrorWithItsDetails() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.sendMessage.name, [["receiverId": 999_999_999, "content": "hello"]], ack: 4)
            let command = try await gateway.nextCommand()
            try await gateway.reply(to: command.envelope, .failed(code: ErrorCode.userNotFound.name, message: "no such user",
                                                                  details: ["receiverId": 999_999_999]))
            #expect(try await socket.ack(4) == [["error": ["code": .string(ErrorCode.userNotFound.name), "message": "no such user",
                                                           "receiverId": 999_999_999]]])
        }
    }

    @Test @LoopActor func withoutAnAckIdAFailureIsAnErrorEventAndASuccessSaysNothing() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.sendMessage.name, [["receiverId": .int(bob.id), "content": "first"]])
            let first = try await gateway.nextCommand()
            try await gateway.reply(to: first.envelope, .ok(["id": 1]))
            socket.emit(SocketEvent.sendMessage.name, [["receiverId": .int(bob.id), "content": "second"]])
            let second = try await gateway.nextCommand(after: first.id)
            try await gateway.reply(to: second.envelope, .failed(code: ErrorCode.processingFailed.name, message: "the message could not be processed"))
            let error = try await socket.event(SocketEvent.error.name)
            #expect(error == [["code": .string(ErrorCode.processingFailed.name), "message": "the message could not be processed"]])
            // Nothing came for the success (it would have arrived before the failure's event).
            let seen = try await SocketPeer.messagesBeforeSentinel(gateway, socket, userID: alice.id)
            #expect(seen.allSatisfy { !$0.hasPrefix("43") })
        }
    }

    @Test @LoopActor func noReplyInTimeAnswersWorkerUnavailableAndALateReplyIsDropped() async throws {
        try await SocketPeer.withGateway(settings: ["COMMAND_REPLY_TIMEOUT_MS": "2000"]) { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.sendMessage.name, [["receiverId": .int(bob.id), "content": "anyone?"]], ack: 9)
            let command = try await gateway.nextCommand()
            gateway.clock.advance(by: .milliseconds(1_999))
            #expect(try await SocketPeer.messagesBeforeSentinel(gateway, socket, userID: alice.id).allSatisfy { !$0.hasPrefix("439") })
            gateway.clock.advance(by: .milliseconds(1))
            #expect(try await socket.ack(9) == refusal(.workerUnavailable, ErrorCode.workerUnavailable.defaultMessage))
            try await gateway.reply(to: command.envelope, .ok(["id": 1]))
            #expect(try await SocketPeer.messagesBeforeSentinel(gateway, socket, userID: alice.id).allSatisfy { !$0.hasPrefix("439") })
        }
    }

    @Test @LoopActor func invalidSendsAreRefusedBeforeTheStream() async throws {
        try await SocketPeer.withGateway(settings: ["MESSAGE_MAX_LENGTH": "10"]) { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let socket = try await gateway.connectedSocket(alice)
            let receiver = JSONValue.int(bob.id)
            let cases: [(JSONValue?, ErrorCode, String)] = [
                (["content": "hi"], .validationFailed, "field 'receiverId' is required"),
                (["receiverId": .int(alice.id), "content": "hi"], .cannotMessageSelf, "you cannot send a message to yourself"),
                (["receiverId": "abc", "content": "hi"], .validationFailed, "field 'receiverId' must be a positive integer id"),
                (["receiverId": -3, "content": "hi"], .validationFailed, "field 'receiverId' must be a positive integer id"),
                (["receiverId": receiver], .validationFailed, "field 'content' is required"),
                (["receiverId": receiver, "content": ""], .validationFailed, "field 'content' must not be empty"),
                (["receiverId": receiver, "content": "   "], .validationFailed, "field 'content' must not be empty"),
                (["receiverId": receiver, "content": "12345678901"], .validationFailed, "field 'content' must be at most 10 characters (has 11)"),
                (["receiverId": receiver, "content": 5], .validationFailed, "field 'content' must be a string"),
                (["receiverId": receiver, "content": "hi", "type": "video"], .validationFailed, "field 'type' must be one of text, image, file, emoji, voice"),
                (["receiverId": receiver, "content": "hi", "clientMsgId": "has space"], .validationFailed,
                 "field 'clientMsgId' may contain only letters, digits, '_', '.', ':' and '-'"),
                ("just text", .validationFailed, "the argument must be a JSON object"),
                (nil, .validationFailed, "the argument must be a JSON object"),
            ]
            for (index, (argument, code, message)) in cases.enumerated() {
                let ack = Int64(index + 1)
                socket.emit(SocketEvent.sendMessage.name, argument.map { [$0] } ?? [], ack: ack)
                #expect(try await socket.ack(ack) == refusal(code, message), "case \(index): \(argument?.jsonString ?? "no argument")")
            }
            // The first command on the stream is the valid send after them.
            socket.emit(SocketEvent.sendMessage.name, [["receiverId": receiver, "content": "valid", "clientMsgId": "ok-1"]])
            let command = try await gateway.nextCommand()
            #expect(command.envelope.command == .send(SendMessage(receiverID: bob.id, content: "valid", clientMsgID: "ok-1")))
        }
    }

    @Test @LoopActor func aRefusalWithoutAnAckIdIsAnErrorEvent() async throws {
        try await SocketPeer.withGateway { gateway in
            let socket = try await gateway.connectedSocket(try await gateway.account())
            socket.emit(SocketEvent.sendMessage.name, [["content": "hi"]])
            #expect(try await socket.event(SocketEvent.error.name) == [["code": .string(ErrorCode.validationFailed.name),
                                                                        "message": "field 'receiverId' is required"]])
        }
    }

    @Test @LoopActor func commandsOfOneSocketAreAppendedInTheOrderSent() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let socket = try await gateway.connectedSocket(alice)
            // A read spends the API budget first (an asynchronous check): later sends wait behind it.
            socket.emit(SocketEvent.messageRead.name, [["messageId": 77]])
            for index in 0..<8 {
                socket.emit(SocketEvent.sendMessage.name, [["receiverId": .int(bob.id), "content": "m\(index)", "clientMsgId": "order-\(index)"]])
            }
            socket.emit(SocketEvent.markAllAsRead.name, [["senderId": .int(bob.id)]])
            var commands: [(id: String, envelope: CommandEnvelope)] = []
            try await until("ten commands") {
                commands = try await gateway.commands()
                return commands.count == 10
            }
            var expected: [ChatCommand] = [.read(messageID: 77)]
            expected += (0..<8).map { ChatCommand.send(SendMessage(receiverID: bob.id, content: "m\($0)", clientMsgID: "order-\($0)")) }
            expected.append(.readAll(senderID: bob.id))
            #expect(commands.map(\.envelope.command) == expected)
        }
    }

    // MARK: Reads

    @Test @LoopActor func messageReadAppendsAReadCommandAndAcksTheResult() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.messageRead.name, [["messageId": "56"]], ack: 2)
            let command = try await gateway.nextCommand()
            #expect(command.envelope.command == .read(messageID: 56))
            #expect(command.envelope.userID == alice.id)
            #expect(command.envelope.reply?.ack == 2)
            try await gateway.reply(to: command.envelope, .ok(["messageId": 56, "readSeq": 3]))
            #expect(try await socket.ack(2) == [["messageId": 56, "readSeq": 3]])
        }
    }

    @Test @LoopActor func invalidMessageReadsAreRefusedBeforeTheStream() async throws {
        try await SocketPeer.withGateway { gateway in
            let socket = try await gateway.connectedSocket(try await gateway.account())
            let cases: [(JSONValue, String)] = [
                ([:], "field 'messageId' is required"),
                (["messageId": "x"], "field 'messageId' must be a positive integer id"),
                (["messageId": 0], "field 'messageId' must be a positive integer id"),
                ("56", "the argument must be a JSON object"),
            ]
            for (index, (argument, message)) in cases.enumerated() {
                socket.emit(SocketEvent.messageRead.name, [argument], ack: Int64(index + 1))
                #expect(try await socket.ack(Int64(index + 1)) == refusal(.validationFailed, message))
            }
            #expect(try await gateway.commands().isEmpty)
        }
    }

    @Test @LoopActor func markAllAsReadAppendsAReadAllCommand() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.markAllAsRead.name, [["senderId": .int(bob.id)]], ack: 5)
            let command = try await gateway.nextCommand()
            #expect(command.envelope.command == .readAll(senderID: bob.id))
            #expect(command.envelope.userID == alice.id)
            try await gateway.reply(to: command.envelope, .ok(["senderId": .int(bob.id), "count": 4]))
            #expect(try await socket.ack(5) == [["senderId": .int(bob.id), "count": 4]])
        }
    }

    @Test @LoopActor func invalidMarkAllAsReadsAreRefusedBeforeTheStream() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.markAllAsRead.name, [["senderId": .int(alice.id)]], ack: 1)
            #expect(try await socket.ack(1) == refusal(.cannotMessageSelf, "you cannot send a message to yourself"))
            socket.emit(SocketEvent.markAllAsRead.name, [[:]], ack: 2)
            #expect(try await socket.ack(2) == refusal(.validationFailed, "field 'senderId' is required"))
            socket.emit(SocketEvent.markAllAsRead.name, [["senderId": true]], ack: 3)
            #expect(try await socket.ack(3) == refusal(.validationFailed, "field 'senderId' must be a positive integer id"))
            #expect(try await gateway.commands().isEmpty)
        }
    }

    // MARK: sync

    @Test @LoopActor func syncAnswersEveryConversationWithItsMessages() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let conversation = try await SocketPeer.makeContacts(gateway, alice, bob)
            let first = try await SocketPeer.addMessage(gateway, conversation: conversation, from: alice, "hello bob")
            let second = try await SocketPeer.addMessage(gateway, conversation: conversation, from: alice, "are you there?")
            let socket = try await gateway.connectedSocket(bob)
            socket.emit(SocketEvent.sync.name, [], ack: 1)
            let answer = try #require(try await socket.ack(1).first)
            #expect(answer["totalUnread"] == 2)
            let conversations = try #require(answer["conversations"]?.arrayValue)
            #expect(conversations.count == 1)
            let entry = conversations[0]
            #expect(entry["conversationId"] == .int(conversation))
            #expect(entry["lastSeq"] == 2)
            #expect(entry["lastReadSeq"] == 0)
            #expect(entry["unreadCount"] == 2)
            #expect(entry["hasMore"] == false)
            let messages = try #require(entry["messages"]?.arrayValue)
            #expect(messages.map { $0["id"] } == [.int(first.id), .int(second.id)])
            #expect(messages.map { $0["content"] } == ["hello bob", "are you there?"])
            #expect(messages.first?["senderId"] == .int(alice.id))
            #expect(messages.first?["receiverId"] == .int(bob.id))
        }
    }

    @Test @LoopActor func syncAfterACursorAnswersOnlyNewerMessagesAndPages() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let conversation = try await SocketPeer.makeContacts(gateway, alice, bob)
            for index in 1...3 { try await SocketPeer.addMessage(gateway, conversation: conversation, from: bob, "m\(index)") }
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.sync.name, [["since": [String(conversation): 2]]], ack: 1)
            let after = try #require(try await socket.ack(1).first?["conversations"]?[0])
            #expect(after["messages"]?.arrayValue?.map { $0["seq"] } == [3])
            #expect(after["hasMore"] == false)
            socket.emit(SocketEvent.sync.name, [["since": [String(conversation): 0], "limit": 2]], ack: 2)
            let page = try #require(try await socket.ack(2).first?["conversations"]?[0])
            #expect(page["messages"]?.arrayValue?.map { $0["seq"] } == [1, 2])
            #expect(page["hasMore"] == true)
            socket.emit(SocketEvent.sync.name, [["since": [String(conversation): 3]]], ack: 3)
            #expect(try await socket.ack(3).first?["conversations"]?[0]?["messages"] == [])
        }
    }

    @Test @LoopActor func syncWithoutAnAckAnswersWithTheSyncEvent() async throws {
        try await SocketPeer.withGateway { gateway in
            let socket = try await gateway.connectedSocket(try await gateway.account())
            socket.emit(SocketEvent.sync.name, [[:]])
            #expect(try await socket.event(SocketEvent.sync.name) == [["conversations": [], "totalUnread": 0]])
        }
    }

    @Test @LoopActor func syncRefusesABadCursorOrLimit() async throws {
        try await SocketPeer.withGateway { gateway in
            let socket = try await gateway.connectedSocket(try await gateway.account())
            let cases: [(JSONValue, String)] = [
                (["since": "12:40"], "field 'since' must be an object mapping conversation ids to seqs"),
                (["since": ["abc": 1]], "field 'since' must map conversation ids to seqs or {seq, version}, e.g. {\"12\": 40, \"13\": {\"seq\": 5, \"version\": 2}}"),
                (["since": ["12": -1]], "field 'since' must map conversation ids to seqs or {seq, version}, e.g. {\"12\": 40, \"13\": {\"seq\": 5, \"version\": 2}}"),
                (["limit": 0], "field 'limit' must be an integer from 1 to 200"),
                (["limit": 201], "field 'limit' must be an integer from 1 to 200"),
                (["limit": "ten"], "field 'limit' must be an integer from 1 to 200"),
                ("everything", "the argument must be a JSON object"),
            ]
            for (index, (argument, message)) in cases.enumerated() {
                socket.emit(SocketEvent.sync.name, [argument], ack: Int64(index + 1))
                #expect(try await socket.ack(Int64(index + 1)) == refusal(.validationFailed, message), "\(argument.jsonString)")
            }
        }
    }

    // MARK: Typing

    @Test @LoopActor func typingIsRelayedToEverySocketOfTheReceiverOnly() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let carol = try await gateway.account("carol")
            let typist = try await gateway.connectedSocket(alice)
            let phone = try await gateway.connectedSocket(bob)
            let laptop = try await gateway.connectedSocket(bob)
            let bystander = try await gateway.connectedSocket(carol)
            typist.emit(SocketEvent.typing.name, [["receiverId": .int(bob.id)]], ack: 1)
            #expect(try await typist.ack(1) == [["ok": true]])
            let relayed: [JSONValue] = [["senderId": .int(alice.id), "receiverId": .int(bob.id)]]
            #expect(try await phone.event(SocketEvent.typing.name) == relayed)
            #expect(try await laptop.event(SocketEvent.typing.name) == relayed)
            #expect(SocketPeer.events(.typing, in: try await SocketPeer.messagesBeforeSentinel(gateway, bystander, userID: carol.id)).isEmpty)
            #expect(SocketPeer.events(.typing, in: try await SocketPeer.messagesBeforeSentinel(gateway, typist, userID: alice.id)).isEmpty)
        }
    }

    @Test @LoopActor func typingStopsByItselfAfterTheTypingTimeout() async throws {
        try await SocketPeer.withGateway(settings: ["TYPING_TIMEOUT_MS": "3000"]) { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let typist = try await gateway.connectedSocket(alice)
            let receiver = try await gateway.connectedSocket(bob)
            typist.emit(SocketEvent.typing.name, [["receiverId": .int(bob.id)]])
            _ = try await receiver.event(SocketEvent.typing.name)
            gateway.clock.advance(by: .milliseconds(2_999))
            #expect(SocketPeer.events(.stopTyping, in: try await SocketPeer.messagesBeforeSentinel(gateway, receiver, userID: bob.id)).isEmpty)
            gateway.clock.advance(by: .milliseconds(1))
            #expect(try await receiver.event(SocketEvent.stopTyping.name) == [["senderId": .int(alice.id), "receiverId": .int(bob.id)]])
        }
    }

    @Test @LoopActor func repeatedTypingPushesTheAutomaticStopBack() async throws {
        try await SocketPeer.withGateway(settings: ["TYPING_TIMEOUT_MS": "3000", "TYPING_REPEAT_MS": "1000"]) { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let typist = try await gateway.connectedSocket(alice)
            let receiver = try await gateway.connectedSocket(bob)
            typist.emit(SocketEvent.typing.name, [["receiverId": .int(bob.id)]])
            _ = try await receiver.event(SocketEvent.typing.name)
            gateway.clock.advance(by: .milliseconds(2_000))
            typist.emit(SocketEvent.typing.name, [["receiverId": .int(bob.id)]], ack: 1)
            _ = try await typist.ack(1)
            gateway.clock.advance(by: .milliseconds(2_999))
            let meanwhile = try await SocketPeer.messagesBeforeSentinel(gateway, receiver, userID: bob.id)
            #expect(SocketPeer.events(.stopTyping, in: meanwhile).isEmpty)
            gateway.clock.advance(by: .milliseconds(1))
            _ = try await receiver.event(SocketEvent.stopTyping.name)
        }
    }

    @Test @LoopActor func stopTypingIsRelayedOnlyForALiveIndicator() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let typist = try await gateway.connectedSocket(alice)
            let receiver = try await gateway.connectedSocket(bob)
            typist.emit(SocketEvent.stopTyping.name, [["receiverId": .int(bob.id)]], ack: 1)
            #expect(try await typist.ack(1) == [["ok": true]])
            #expect(SocketPeer.events(.stopTyping, in: try await SocketPeer.messagesBeforeSentinel(gateway, receiver, userID: bob.id)).isEmpty)
            typist.emit(SocketEvent.typing.name, [["receiverId": .int(bob.id)]])
            _ = try await receiver.event(SocketEvent.typing.name)
            typist.emit(SocketEvent.stopTyping.name, [["receiverId": .int(bob.id)]])
            #expect(try await receiver.event(SocketEvent.stopTyping.name) == [["senderId": .int(alice.id), "receiverId": .int(bob.id)]])
        }
    }

    @Test @LoopActor func theTypistsSocketClosingStopsItsTyping() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let typist = try await gateway.connectedSocket(alice)
            let receiver = try await gateway.connectedSocket(bob)
            typist.emit(SocketEvent.typing.name, [["receiverId": .int(bob.id)]])
            _ = try await receiver.event(SocketEvent.typing.name)
            try await SocketPeer.closeFromClient(typist)
            #expect(try await receiver.event(SocketEvent.stopTyping.name) == [["senderId": .int(alice.id), "receiverId": .int(bob.id)]])
        }
    }

    @Test @LoopActor func typingToOneselfOrToNoOneIsRefused() async throws {
        try await SocketPeer.withGateway { gateway in
            let alice = try await gateway.account("alice")
            let socket = try await gateway.connectedSocket(alice)
            socket.emit(SocketEvent.typing.name, [["receiverId": .int(alice.id)]], ack: 1)
            #expect(try await socket.ack(1) == refusal(.cannotMessageSelf, "you cannot send a message to yourself"))
            socket.emit(SocketEvent.typing.name, [[:]], ack: 2)
            #expect(try await socket.ack(2) == refusal(.validationFailed, "field 'receiverId' is required"))
            socket.emit(SocketEvent.stopTyping.name, [["receiverId": "me"]], ack: 3)
            #expect(try await socket.ack(3) == refusal(.validationFailed, "field 'receiverId' must be a positive integer id"))
        }
    }

    // MARK: API budget

    /// The API limit of the budget tests: high enough that the sign-ups of harnesses sharing an
    /// address prefix never meet it; the user's budget is spent down to one unit directly.
    private static let apiLimit = 10

    /// Spends all but one unit of `account`'s API budget (the budget REST and sockets share).
    @LoopActor private func leaveOneUnitOfTheAPIBudget(_ gateway: GatewayHarness, _ account: GatewayHarness.Account) async throws {
        for _ in 1..<Self.apiLimit {
            let refusal = await gateway.services.realtime.spendAPIBudget(userID: account.id)
            try #require(refusal == nil)
        }
    }

    @Test(arguments: ["sync", "getOnlineUsers", "messageRead", "markAllAsRead"])
    @LoopActor func databaseBackedEventsSpendTheAPIBudget(_ name: String) async throws {
        try await SocketPeer.withGateway(settings: ["RATE_LIMIT_API": "\(Self.apiLimit)/1m"]) { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let socket = try await gateway.connectedSocket(alice)
            try await leaveOneUnitOfTheAPIBudget(gateway, alice)
            let argument: JSONValue = switch name {
            case "messageRead": ["messageId": 12]
            case "markAllAsRead": ["senderId": .int(bob.id)]
            default: [:]
            }
            socket.emit(name, [argument], ack: 1)
            if name == "messageRead" || name == "markAllAsRead" {
                let command = try await gateway.nextCommand()
                try await gateway.reply(to: command.envelope, .ok(["done": true]))
            }
            let first = try await socket.ack(1)
            #expect(first.first?["error"] == nil)
            socket.emit(name, [argument], ack: 2)
            let refused = try #require(try await socket.ack(2).first?["error"])
            #expect(refused["code"]?.stringValue == ErrorCode.rateLimited.name)
            #expect(refused["limit"] == "api")
            let wait = try #require(refused["retryAfterMs"]?.int64Value)
            #expect(wait > 0 && wait <= 60_000)
            #expect(try await gateway.commands().count == (name == "messageRead" || name == "markAllAsRead" ? 1 : 0))
        }
    }

    @Test @LoopActor func sendsAndTypingDoNotSpendTheAPIBudget() async throws {
        try await SocketPeer.withGateway(settings: ["RATE_LIMIT_API": "\(Self.apiLimit)/1m"]) { gateway in
            let alice = try await gateway.account("alice")
            let bob = try await gateway.account("bob")
            let socket = try await gateway.connectedSocket(alice)
            try await leaveOneUnitOfTheAPIBudget(gateway, alice)
            for index in 0..<3 {
                socket.emit(SocketEvent.typing.name, [["receiverId": .int(bob.id)]], ack: Int64(10 + index))
                #expect(try await socket.ack(Int64(10 + index)) == [["ok": true]])
                socket.emit(SocketEvent.sendMessage.name, [["receiverId": .int(bob.id), "content": "m\(index)"]])
            }
            try await until("three sends") { try await gateway.commands().count == 3 }
            // The last unit is still there.
            socket.emit(SocketEvent.sync.name, [], ack: 1)
            #expect(try await socket.ack(1).first?["error"] == nil)
        }
    }
}
