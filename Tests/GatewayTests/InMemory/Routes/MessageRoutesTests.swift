import Testing
@testable import Gateway
@testable import Shared

/// `MessageRoutes` over the in-memory gateway, the test playing the worker: writes become commands
/// on the stream and are answered with the worker's reply (or `worker_unavailable` when none comes
/// in time, on the manual clock); refusals put nothing on the stream; reads (history, conversations,
/// unread count, sync) come from rows stored as a worker stores them.
@Suite struct MessageRoutesTests {
    init() { EventLoop.shared.startInBackground() }

    /// Sends a JSON POST on a connection of its own and returns the client, whose response is read later.
    @LoopActor private static func post(_ gateway: GatewayHarness, _ path: String, token: String, _ body: JSONValue) -> TestHTTPClient {
        let client = gateway.http()
        client.send(TestHTTPClient.encode(.POST, path, token: token, headers: [("Content-Type", "application/json")], body: body.serialized()))
        return client
    }

    private static func ids(_ response: TestResponse, _ key: String = "seq") -> [Int64] {
        response.json?.arrayValue?.compactMap { $0[key]?.int64Value } ?? []
    }

    // MARK: POST /api/messages

    @Test @LoopActor func aSendBecomesTheCallersCommandAndTheWorkersMessageIsAnswered201() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let client = Self.post(gateway, "/api/messages", token: alice.token,
                               ["receiverId": .int(bob.id), "content": "hello", "clientMsgId": "c-1"])
        let command = try await gateway.nextCommand()
        #expect(command.envelope.command == .send(SendMessage(receiverID: bob.id, content: "hello", clientMsgID: "c-1")))
        #expect(command.envelope.userID == alice.id)
        let reply = try #require(command.envelope.reply)
        #expect(reply.gateway == gateway.configuration.gatewayID)
        #expect(reply.request?.isEmpty == false)
        #expect(reply.engineSession == nil && reply.ack == nil)

        let stored: JSONValue = ["id": 41, "seq": 1, "senderId": .int(alice.id), "receiverId": .int(bob.id), "content": "hello",
                                 "clientMsgId": "c-1"]
        try await gateway.reply(to: command.envelope, .ok(stored))
        let response = try await client.response()
        #expect(response.status == 201, "\(response.text)")
        #expect(response.json == stored)
    }

    @Test @LoopActor func aSendWithoutClientMsgIdGetsOneFromTheGatewayAndStringIdsAreAccepted() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let longest = String(repeating: "\u{1F600}", count: gateway.configuration.messaging.maxContentLength)
        let client = Self.post(gateway, "/api/messages", token: alice.token,
                               ["receiverId": .string(String(bob.id)), "content": .string(longest), "type": "image",
                                "attachmentUrl": "https://example.com/a.png"])
        let command = try await gateway.nextCommand()
        guard case .send(let message) = command.envelope.command else {
            Issue.record("expected a send, got \(command.envelope.command)")
            return
        }
        #expect(message.receiverID == bob.id)
        #expect(message.content == longest, "the longest content in Unicode scalars is accepted unchanged")
        #expect(message.type == .image && message.attachmentURL == "https://example.com/a.png")
        #expect(message.clientMsgID.hasPrefix("g-") && message.clientMsgID.utf8.count == 24, "\(message.clientMsgID)")
        try await gateway.reply(to: command.envelope, .ok(["id": 1]))
        #expect(try await client.response().status == 201)
    }

    @Test @LoopActor func aClientMsgIdAlreadyStoredIsAnswered200WithTheStoredMessageAndNoCommand() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let stored = try await gateway.storeMessages(from: alice, to: bob, ["hello once"], clientMsgIDs: ["dup-1"])
        let response = try await gateway.request(.POST, "/api/messages", token: alice.token,
                                                 json: ["receiverId": .int(bob.id), "content": "hello again", "clientMsgId": "dup-1"])
        #expect(response.status == 200, "\(response.text)")
        #expect(response.json?["id"] == .int(stored[0].id))
        #expect(response.json?["content"] == "hello once")
        #expect(response.json?["clientMsgId"] == "dup-1")
        #expect(response.json?["senderId"] == .int(alice.id))
        #expect(response.json?["receiverId"] == .int(bob.id))
        #expect(try await gateway.commands().isEmpty)
    }

    @Test @LoopActor func aSendToAnUnknownUserIs404WithoutACommand() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account()
        let response = try await gateway.request(.POST, "/api/messages", token: alice.token,
                                                 json: ["receiverId": 99_999_999_999, "content": "hello?"])
        expectError(response, 404, "user_not_found")
        #expect(try await gateway.commands().isEmpty)
    }

    @Test @LoopActor func invalidSendsAreRefused422WithoutACommand() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let receiver = JSONValue.int(bob.id)
        let tooLong = String(repeating: "x", count: gateway.configuration.messaging.maxContentLength + 1)
        let bodies: [JSONValue] = [
            ["receiverId": receiver], ["receiverId": receiver, "content": ""], ["receiverId": receiver, "content": " \n\t "],
            ["receiverId": receiver, "content": .string(tooLong)], ["receiverId": receiver, "content": 5],
            ["receiverId": receiver, "content": "nul\u{0}"], ["content": "x"], ["receiverId": "abc", "content": "x"],
            ["receiverId": 0, "content": "x"], ["receiverId": -3, "content": "x"], ["receiverId": 1.5, "content": "x"],
            ["receiverId": receiver, "content": "x", "type": "video"],
            ["receiverId": receiver, "content": "x", "attachmentUrl": "ftp://example.com/a.png"],
            ["receiverId": receiver, "content": "x", "attachmentUrl": "javascript:alert(1)"],
            ["receiverId": receiver, "content": "x", "clientMsgId": "has space"],
            ["receiverId": receiver, "content": "x", "clientMsgId": ""],
            ["receiverId": receiver, "content": "x", "clientMsgId": .string(String(repeating: "x", count: 65))],
            ["receiverId": receiver, "content": "x", "clientMsgId": 7],
            [1, 2],
        ]
        for body in bodies {
            let response = try await gateway.request(.POST, "/api/messages", token: alice.token, json: body)
            expectError(response, 422, "validation_failed")
            #expect(response.errorMessage?.isEmpty == false, "\(body.jsonString)")
        }
        let notJSON = try await gateway.request(.POST, "/api/messages", token: alice.token,
                                                headers: [("Content-Type", "application/json")], body: Array("{not json".utf8))
        expectError(notJSON, 400, "invalid_json")
        let form = try await gateway.request(.POST, "/api/messages", token: alice.token,
                                             headers: [("Content-Type", "text/plain")], body: Array("hello".utf8))
        expectError(form, 415, "unsupported_media_type")
        #expect(try await gateway.commands().isEmpty)
    }

    @Test @LoopActor func aSendToOneselfIsRefusedWithoutACommand() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account()
        for receiver: JSONValue in [.int(alice.id), .string(String(alice.id))] {
            let response = try await gateway.request(.POST, "/api/messages", token: alice.token,
                                                     json: ["receiverId": receiver, "content": "note to self"])
            expectError(response, 422, "cannot_message_self")
        }
        #expect(try await gateway.commands().isEmpty)
    }

    @Test @LoopActor func aWorkersRefusalIsAnsweredWithTheStatusItsCodeMapsTo() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let cases: [(code: String, status: Int, retryAfter: String?)] = [
            ("user_not_found", 404, nil), ("not_a_recipient", 403, nil), ("cannot_message_self", 422, nil),
            ("validation_failed", 422, nil), ("processing_failed", 500, nil), ("database_unavailable", 503, "1"),
            ("worker_unavailable", 503, "1"), ("a_code_from_a_newer_worker", 500, nil),
        ]
        var last = "-"
        for (index, expected) in cases.enumerated() {
            let client = Self.post(gateway, "/api/messages", token: alice.token,
                                   ["receiverId": .int(bob.id), "content": "hello", "clientMsgId": .string("refused-\(index)")])
            let command = try await gateway.nextCommand(after: last)
            last = command.id
            try await gateway.reply(to: command.envelope, .failed(code: expected.code, message: "the worker says no (\(index))"))
            let response = try await client.response()
            expectError(response, expected.status, expected.code)
            #expect(response.errorMessage == "the worker says no (\(index))")
            #expect(response.header("Retry-After") == expected.retryAfter, "\(expected.code)")
        }
    }

    @Test @LoopActor func aWorkersRateLimitIs429WithRetryAfterInWholeSeconds() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let client = Self.post(gateway, "/api/messages", token: alice.token, ["receiverId": .int(bob.id), "content": "hello"])
        let command = try await gateway.nextCommand()
        try await gateway.reply(to: command.envelope, .failed(code: "rate_limited", message: "too many messages",
                                                              details: ["limit": "messages", "retryAfterMs": 2_500]))
        let response = try await client.response()
        expectError(response, 429, "rate_limited")
        #expect(response.header("Retry-After") == "3")
        #expect(response.json?["error"]?["retryAfterMs"] == 2_500)
        #expect(response.json?["error"]?["limit"] == "messages")
    }

    @Test @LoopActor func noReplyWithinTheReplyTimeoutIs503WorkerUnavailableAndALateReplyIsDropped() async throws {
        let gateway = try await GatewayHarness(settings: ["COMMAND_REPLY_TIMEOUT_MS": "2000"])
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let client = Self.post(gateway, "/api/messages", token: alice.token, ["receiverId": .int(bob.id), "content": "anyone?"])
        let command = try await gateway.nextCommand()
        gateway.clock.advance(by: .milliseconds(1_999))
        #expect(gateway.services.submitter.waitingCount == 1, "still waiting just before the timeout")
        #expect(client.unread().isEmpty)
        gateway.clock.advance(by: .milliseconds(1))
        let response = try await client.response()
        expectError(response, 503, "worker_unavailable")
        #expect(response.header("Retry-After") == "1")
        #expect(gateway.services.submitter.waitingCount == 0)

        try await gateway.reply(to: command.envelope, .ok(["id": 1]))
        // The same connection's next response is its next request's: the late reply answered nothing.
        let next = try await client.request(.GET, "/api/messages/unread-count", token: alice.token)
        #expect(next.status == 200)
        #expect(next.json == ["unreadCount": 0])
    }

    // MARK: GET /api/messages/conversation/:otherUserId

    @Test @LoopActor func historyIsOldestFirstWithReadStateAndOnlyTheCallersEmail() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let first = try await gateway.storeMessages(from: bob, to: alice, ["one", "two"])
        try await gateway.storeMessages(from: alice, to: bob, ["three"])
        let response = try await gateway.request(.GET, "/api/messages/conversation/\(bob.id)", token: alice.token)
        #expect(response.status == 200, "\(response.text)")
        #expect(response.header("X-Has-More") == "false")
        let messages = try #require(response.json?.arrayValue)
        #expect(messages.map { $0["content"] } == ["one", "two", "three"])
        #expect(Self.ids(response) == [1, 2, 3])
        #expect(messages.map { $0["conversationId"] } == Array(repeating: .int(first[0].conversationID), count: 3))
        // Alice's own send moved her pointer past Bob's two; Bob has read nothing.
        #expect(messages.map { $0["isRead"] } == [true, true, false])
        let aliceShown: JSONValue = ["id": .int(alice.id), "username": .string(alice.username), "email": .string(alice.email)]
        let bobShown: JSONValue = ["id": .int(bob.id), "username": .string(bob.username)]
        #expect(messages[0]["sender"] == bobShown && messages[0]["receiver"] == aliceShown)
        #expect(messages[2]["sender"] == aliceShown && messages[2]["receiver"] == bobShown)
        #expect(!response.text.contains(bob.email))
    }

    @Test @LoopActor func historyPagesWithBeforeAfterAndLimit() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        try await gateway.storeMessages(from: bob, to: alice, ["1", "2", "3", "4", "5"])
        let path = "/api/messages/conversation/\(bob.id)"
        let cases: [(query: String, seqs: [Int64], hasMore: String)] = [
            ("limit=2", [4, 5], "true"), ("before=4&limit=2", [2, 3], "true"), ("before=3&limit=2", [1, 2], "false"),
            ("after=3", [4, 5], "false"), ("after=1&limit=2", [2, 3], "true"), ("after=1&before=4", [2, 3], "false"),
            ("after=5", [], "false"), ("limit=200", [1, 2, 3, 4, 5], "false"),
        ]
        for expected in cases {
            let response = try await gateway.request(.GET, "\(path)?\(expected.query)", token: alice.token)
            #expect(response.status == 200, "\(expected.query): \(response.text)")
            #expect(Self.ids(response) == expected.seqs, "\(expected.query)")
            #expect(response.header("X-Has-More") == expected.hasMore, "\(expected.query)")
        }
    }

    @Test @LoopActor func historyRefusesBadParametersAndUnknownUsers() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        for query in ["limit=0", "limit=201", "limit=ten", "before=-1", "after=x", "after=2&before=2", "after=3&before=1"] {
            expectError(try await gateway.request(.GET, "/api/messages/conversation/\(bob.id)?\(query)", token: alice.token),
                        422, "validation_failed")
        }
        for id in ["abc", "0", "-2"] {
            expectError(try await gateway.request(.GET, "/api/messages/conversation/\(id)", token: alice.token),
                        422, "validation_failed", field: "otherUserId")
        }
        let unknown = try await gateway.request(.GET, "/api/messages/conversation/99999999999", token: alice.token)
        expectError(unknown, 404, "user_not_found")
        #expect(unknown.errorMessage == "no user with id 99999999999")
    }

    @Test @LoopActor func historyWithSomeoneNeverMessagedIsEmpty() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account()
        let stranger = try await gateway.account()
        let response = try await gateway.request(.GET, "/api/messages/conversation/\(stranger.id)", token: alice.token)
        #expect(response.status == 200)
        #expect(response.json == [])
        #expect(response.header("X-Has-More") == "false")
    }

    // MARK: GET /api/messages/conversations and unread-count

    @Test @LoopActor func conversationsAreMostRecentFirstWithPartnerLastMessageAndUnreadCount() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let carol = try await gateway.account("carol")
        let withBob = try await gateway.storeMessages(from: bob, to: alice, ["b1", "b2"])
        let withCarol = try await gateway.storeMessages(from: alice, to: carol, ["a1"])
        let response = try await gateway.request(.GET, "/api/messages/conversations", token: alice.token)
        #expect(response.status == 200, "\(response.text)")
        let list = try #require(response.json?.arrayValue)
        #expect(list.map { $0["conversationId"] } == [.int(withCarol[0].conversationID), .int(withBob[0].conversationID)])
        #expect(list[0]["partner"] == ["id": .int(carol.id), "username": .string(carol.username), "isOnline": false, "lastSeen": .null])
        #expect(list[0]["lastMessage"]?["content"] == "a1")
        #expect(list[0]["lastMessage"]?["senderId"] == .int(alice.id))
        #expect(list[0]["lastMessage"]?["isRead"] == false, "Carol has not read it")
        #expect(list[0]["unreadCount"] == 0 && list[0]["lastSeq"] == 1)
        #expect(list[1]["partner"]?["id"] == .int(bob.id))
        #expect(list[1]["lastMessage"]?["id"] == .int(withBob[1].id))
        #expect(list[1]["lastMessage"]?["seq"] == 2)
        #expect(list[1]["unreadCount"] == 2 && list[1]["lastSeq"] == 2)
        #expect(!response.text.contains(bob.email) && !response.text.contains(carol.email))

        let one = try await gateway.request(.GET, "/api/messages/conversations?limit=1", token: alice.token)
        #expect(one.json?.arrayValue?.map { $0["conversationId"] } == [.int(withCarol[0].conversationID)])
        for limit in ["0", "1001", "x"] {
            expectError(try await gateway.request(.GET, "/api/messages/conversations?limit=\(limit)", token: alice.token),
                        422, "validation_failed")
        }
    }

    @Test @LoopActor func theUnreadCountSumsEveryConversationsUnreadMessages() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let carol = try await gateway.account("carol")
        #expect(try await gateway.request(.GET, "/api/messages/unread-count", token: alice.token).json == ["unreadCount": 0])
        let fromBob = try await gateway.storeMessages(from: bob, to: alice, ["1", "2", "3"])
        try await gateway.storeMessages(from: carol, to: alice, ["1", "2"])
        try await gateway.storeMessages(from: alice, to: carol, ["mine"])  // reads Carol's two
        #expect(try await gateway.request(.GET, "/api/messages/unread-count", token: alice.token).json == ["unreadCount": 3])
        try await gateway.markRead(alice, in: fromBob[0].conversationID, upTo: 2)
        #expect(try await gateway.request(.GET, "/api/messages/unread-count", token: alice.token).json == ["unreadCount": 1])
        #expect(try await gateway.request(.GET, "/api/messages/unread-count", token: carol.token).json == ["unreadCount": 1])
    }

    // MARK: POST /api/messages/mark-as-read

    @Test @LoopActor func markAsReadByIdsSendsOneReadManyCommandAndAnswersTheWorkersCount() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let stored = try await gateway.storeMessages(from: bob, to: alice, ["1", "2"])
        let client = Self.post(gateway, "/api/messages/mark-as-read", token: alice.token,
                               ["messageIds": [.int(stored[0].id), .int(stored[0].id), .string(String(stored[1].id))]])
        let command = try await gateway.nextCommand()
        #expect(command.envelope.command == .readMany([stored[0].id, stored[1].id]), "duplicates dropped, string ids read")
        #expect(command.envelope.userID == alice.id)
        #expect(command.envelope.reply?.request != nil)
        try await gateway.reply(to: command.envelope, .ok(["count": 2, "lastReadSeq": 2, "conversations": []]))
        let response = try await client.response()
        #expect(response.status == 200, "\(response.text)")
        #expect(response.json == ["message": "Messages marked as read", "count": 2, "lastReadSeq": 2])
    }

    @Test @LoopActor func markAsReadBySenderSendsAReadAllCommand() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let client = Self.post(gateway, "/api/messages/mark-as-read", token: alice.token, ["senderId": .string(String(bob.id))])
        let command = try await gateway.nextCommand()
        #expect(command.envelope.command == .readAll(senderID: bob.id))
        try await gateway.reply(to: command.envelope, .ok(["count": 3]))
        let response = try await client.response()
        #expect(response.json == ["message": "Messages marked as read", "count": 3])

        let failing = Self.post(gateway, "/api/messages/mark-as-read", token: alice.token, ["messageIds": [77]])
        let second = try await gateway.nextCommand(after: command.id)
        try await gateway.reply(to: second.envelope, .failed(code: "not_a_recipient", message: "only the receiver of a message can mark it read"))
        expectError(try await failing.response(), 403, "not_a_recipient")
    }

    @Test @LoopActor func markAsReadWithNoIdsAnswersZeroWithoutACommand() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account()
        let response = try await gateway.request(.POST, "/api/messages/mark-as-read", token: alice.token, json: ["messageIds": []])
        #expect(response.status == 200)
        #expect(response.json == ["message": "Messages marked as read", "count": 0])
        #expect(try await gateway.commands().isEmpty)
    }

    @Test @LoopActor func invalidMarkAsReadBodiesAreRefusedWithoutACommand() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let tooMany = JSONValue.array((1...(ChatLimits.maxReadManyIDs + 1)).map { .int(Int64($0)) })
        let bodies: [JSONValue] = [
            [:], ["messageIds": .null, "senderId": .null], ["messageIds": [1], "senderId": .int(bob.id)], ["messageIds": 1],
            ["messageIds": "1,2"], ["messageIds": [0]], ["messageIds": ["abc"]], ["messageIds": [1.5]], ["messageIds": tooMany],
            ["senderId": "abc"], ["senderId": 0],
        ]
        for body in bodies {
            expectError(try await gateway.request(.POST, "/api/messages/mark-as-read", token: alice.token, json: body),
                        422, "validation_failed")
        }
        expectError(try await gateway.request(.POST, "/api/messages/mark-as-read", token: alice.token, json: ["senderId": .int(alice.id)]),
                    422, "cannot_message_self")
        #expect(try await gateway.commands().isEmpty)
    }

    // MARK: GET /api/sync

    @Test @LoopActor func syncAnswersWhatCameAfterTheCursorMostRecentConversationFirst() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let carol = try await gateway.account("carol")
        let withBob = try await gateway.storeMessages(from: bob, to: alice, ["1", "2", "3"])
        let withCarol = try await gateway.storeMessages(from: carol, to: alice, ["x"])
        let bobID = withBob[0].conversationID, carolID = withCarol[0].conversationID

        let response = try await gateway.request(.GET, "/api/sync?since=\(bobID):1", token: alice.token)
        #expect(response.status == 200, "\(response.text)")
        #expect(response.json?["totalUnread"] == 4)
        let conversations = try #require(response.json?["conversations"]?.arrayValue)
        #expect(conversations.map { $0["conversationId"] } == [.int(carolID), .int(bobID)])
        #expect(conversations[0]["messages"]?.arrayValue?.compactMap { $0["content"]?.stringValue } == ["x"])
        #expect(conversations[1]["messages"]?.arrayValue?.compactMap { $0["seq"]?.int64Value } == [2, 3])
        #expect(conversations[1]["lastSeq"] == 3 && conversations[1]["lastReadSeq"] == 0 && conversations[1]["unreadCount"] == 3)
        #expect(conversations[1]["hasMore"] == false)

        let paged = try await gateway.request(.GET, "/api/sync?since=\(bobID):1,\(carolID):1&limit=1", token: alice.token)
        let pagedList = try #require(paged.json?["conversations"]?.arrayValue)
        #expect(pagedList[0]["messages"] == [] && pagedList[0]["hasMore"] == false, "Carol's conversation is caught up")
        #expect(pagedList[1]["messages"]?.arrayValue?.compactMap { $0["seq"]?.int64Value } == [2])
        #expect(pagedList[1]["hasMore"] == true)

        let everything = try await gateway.request(.GET, "/api/sync", token: alice.token)
        let all = try #require(everything.json?["conversations"]?.arrayValue)
        #expect(all[1]["messages"]?.arrayValue?.count == 3)
    }

    @Test @LoopActor func syncWithNoConversationsIsEmpty() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account()
        let response = try await gateway.request(.GET, "/api/sync?since=", token: alice.token)
        #expect(response.status == 200)
        #expect(response.json == ["conversations": [], "totalUnread": 0])
    }

    @Test @LoopActor func syncRefusesMalformedCursorsAndLimits() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account()
        for query in ["since=abc", "since=1:2:3:4", "since=1:2:", "since=1:2:-3", "since=0:1", "since=1:-1", "since=1:", "since=:1", "since=1:1,1:2", "since=1:1,",
                      "since=1:1234567890123456789", "limit=0", "limit=201", "limit=x"] {
            expectError(try await gateway.request(.GET, "/api/sync?\(query)", token: alice.token), 422, "validation_failed")
        }
    }
}
