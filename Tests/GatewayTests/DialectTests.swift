import Testing
@testable import Gateway
@testable import Shared

/// The seed dialects' translations (issue 16), pure: events in and out, REST rewrites, settings.
@Suite struct DialectTests {
    @Test func seed002EventsBecomeNativeOnes() {
        #expect(DialectEvents.inbound(.seed002, name: "private_message", argument: ["receiverId": "7", "message": "hi"])
            == .native(.sendMessage, ["receiverId": "7", "content": "hi"]))
        #expect(DialectEvents.inbound(.seed002, name: "typing", argument: ["receiverId": 7, "isTyping": true])
            == .native(.typing, ["receiverId": 7]))
        #expect(DialectEvents.inbound(.seed002, name: "typing", argument: ["receiverId": 7, "isTyping": false])
            == .native(.stopTyping, ["receiverId": 7]))
        #expect(DialectEvents.inbound(.seed002, name: "message_read", argument: ["messageId": 3]) == .native(.messageRead, ["messageId": 3]))
        #expect(DialectEvents.inbound(.seed002, name: "get_chat_history", argument: ["otherUserId": "9", "limit": 500, "skip": -4])
            == .chatHistory(otherUserID: 9, limit: 200, skip: 0))
        #expect(DialectEvents.inbound(.seed002, name: "get_chat_history", argument: ["otherUserId": "x"])
            == .chatHistory(otherUserID: 0, limit: 0, skip: 0))
        // Native events the dialect does not redefine still work; others are unknown.
        #expect(DialectEvents.inbound(.seed002, name: "whoami", argument: .null) == .native(.whoami, .null))
        #expect(DialectEvents.inbound(.seed002, name: "send_message", argument: .null) == .unknown)
    }

    @Test func seed002GetsItsOwnShapes() {
        let message: JSONValue = ["id": 5, "senderId": 1, "receiverId": 2, "content": "hi", "createdAt": "2026-01-01T00:00:00.000Z", "isRead": false]
        let out = DialectEvents.outbound(.seed002, event: "receiveMessage", data: message)
        #expect(out.count == 1 && out[0].0 == "private_message")
        #expect(out[0].1["message"] == "hi" && out[0].1["timestamp"] == "2026-01-01T00:00:00.000Z" && out[0].1["isRead"] == false)
        #expect(DialectEvents.outbound(.seed002, event: "stopTyping", data: ["senderId": 1, "receiverId": 2])[0].1["isTyping"] == false)
        #expect(DialectEvents.outbound(.seed002, event: "messageReadByReceiver", data: ["id": 5, "readerId": 2])[0].1
            == ["messageId": 5, "readerId": 2])
        #expect(DialectEvents.outbound(.seed002, event: "error", data: ["code": "rate_limited", "message": "slow down"])[0].1["details"]
            == "rate_limited")
        // No counterpart: the native event as it is (recovery offsets must get through).
        #expect(DialectEvents.outbound(.seed002, event: "recoveryOffset", data: "1.2:3")[0] == ("recoveryOffset", "1.2:3"))
    }

    @Test func seed004EventsAndShapes() {
        #expect(DialectEvents.inbound(.seed004, name: "send_message", argument: ["roomId": "4", "content": "x", "messageType": "image"])
            == .native(.sendMessage, ["roomId": "4", "content": "x", "type": "image"]))
        #expect(DialectEvents.inbound(.seed004, name: "join_room", argument: ["roomId": 4]) == .native(.joinRoom, ["roomId": 4]))
        #expect(DialectEvents.inbound(.seed004, name: "mark_message_read", argument: ["messageId": 4]) == .native(.messageRead, ["messageId": 4]))
        let edited = DialectEvents.outbound(.seed004, event: "messageEdited", data: ["id": 1, "type": "text", "editedAt": "2026-01-01T00:00:00.000Z"])
        #expect(edited[0].0 == "message_edited" && edited[0].1["isEdited"] == true && edited[0].1["messageType"] == "text")
        #expect(DialectEvents.outbound(.seed004, event: "userOffline", data: ["userId": 3, "username": "u", "lastSeen": "t"])[0].1
            == ["userId": 3, "username": "u", "lastSeen": "t", "isOnline": false])
        // Joining a room one is in already is not an error in seed 004.
        #expect(DialectEvents.outbound(.seed004, event: "error", data: ["code": "already_a_member", "message": "m"]).isEmpty)
        #expect(DialectEvents.welcome(userID: 7)["message"] == "Hello, User 7")
    }

    @Test func seed001AndSeed003Events() {
        #expect(DialectEvents.inbound(.seed001, name: "message:private", argument: ["toUserId": 2, "content": "hi"])
            == .native(.sendMessage, ["receiverId": 2, "content": "hi"]))
        #expect(DialectEvents.outbound(.seed001, event: "onlineUsers", data: [["userId": 1, "username": "a"], ["userId": 2, "username": "b"]])[0]
            == ("user:online", [1, 2]))
        #expect(DialectEvents.outbound(.seed001, event: "userOffline", data: ["userId": 3])[0] == ("user:offline", 3))
        #expect(DialectEvents.inbound(.seed003, name: "join_conversation", argument: ["conversationId": 1]) == .joinConversation(conversationID: 1))
        #expect(DialectEvents.inbound(.seed003, name: "join_personal_room", argument: .null) == .ignored)
        #expect(DialectEvents.inbound(.seed003, name: "typing", argument: ["conversationId": "12"]) == .conversationTyping(conversationID: 12, typing: true))
        #expect(DialectEvents.inbound(.seed003, name: "stop_typing", argument: ["conversationId": 12])
            == .conversationTyping(conversationID: 12, typing: false))
        #expect(DialectEvents.inbound(.seed003, name: "typing", argument: ["conversationId": 12, "receiverId": 3])
            == .native(.typing, ["receiverId": 3]))
        #expect(DialectEvents.inbound(.seed003, name: "mark_as_read", argument: ["conversationId": "x"]) == .conversationRead(conversationID: 0))
        let received = DialectEvents.outbound(.seed003, event: "receiveMessage", data: ["id": 1, "senderId": 2, "conversationId": 9, "content": "c"])
        #expect(received.map(\.0) == ["new_message", "message_notification"])
        #expect(received[1].1["from"] == 2 && received[1].1["conversationId"] == 9)
    }

    @Test func nativeIsTheIdentity() {
        #expect(DialectEvents.outbound(.native, event: "receiveMessage", data: ["id": 1])[0] == ("receiveMessage", ["id": 1]))
        #expect(DialectEvents.inbound(.native, name: "private_message", argument: .null) == .unknown)
    }

    @Test func restRewrites() throws {
        let routes = DialectRoutes(enabled: Set(Dialect.allCases))
        let history = try #require(routes.rewrite(Self.request(.GET, "/api/chat/history/42", query: "limit=5")))
        #expect(history.request.path == "/api/messages/conversation/42" && history.request.target == "/api/messages/conversation/42?limit=5")
        #expect(history.reshape == .seed002Messages)
        let register = try #require(routes.rewrite(Self.request(.POST, "/api/v1/auth/register", body: #"{"fullName":"T U","username":"tu"}"#)))
        #expect(register.request.path == "/api/auth/register")
        #expect(try JSONParser.parse(register.request.body)["displayName"] == "T U")
        #expect(routes.rewrite(Self.request(.GET, "/api/v1/rooms/5/members"))?.request.path == "/api/rooms/5/members")
        #expect(routes.rewrite(Self.request(.GET, "/api/messages"))?.request.path == "/api/sync")
        #expect(DialectRoutes(enabled: [.native, .seed002]).rewrite(Self.request(.GET, "/api/messages")) == nil)
        let chat = try #require(routes.rewrite(Self.request(.GET, "/api/chat/conversations/9/messages", query: "page=3&limit=10")))
        #expect(chat.request.target == "/api/conversations/9/messages?after=20&limit=10")
        #expect(routes.rewrite(Self.request(.PUT, "/api/chat/conversations/9/read"))?.request.method == .POST)
        #expect(routes.rewrite(Self.request(.GET, "/api/chat/nothing")) == nil)
        #expect(routes.rewrite(Self.request(.GET, "/api/chat/history/")) == nil)
        #expect(DialectRoutes(enabled: [.native]).rewrite(Self.request(.GET, "/api/v1/rooms")) == nil)
        let answer = HTTPResponse.json(.ok, JSONValue.array([["content": "a", "createdAt": "t"]]).serialized())
        #expect(try JSONParser.parse(DialectRoutes.reshape(answer, .seed002Messages).body)[0]?["message"] == "a")
    }

    @Test func settings() throws {
        func configuration(_ environment: [String: String]) throws(ConfigurationError) -> DialectConfiguration {
            try DialectConfiguration(reader: SettingsReader(settings: DialectConfiguration.settings, environment: environment))
        }
        let defaults = try configuration([:])
        #expect(defaults.enabled == Set(Dialect.allCases) && defaults.socketDefault == .native)
        #expect(try configuration(["DIALECTS": "off"]).enabled == [.native])
        #expect(try configuration(["DIALECTS": "seed002, seed004", "SOCKET_DIALECT": "seed004"]).enabled == [.native, .seed002, .seed004])
        #expect(throws: ConfigurationError.self) { try configuration(["DIALECTS": "seed9"]) }
        #expect(throws: ConfigurationError.self) { try configuration(["DIALECTS": "off", "SOCKET_DIALECT": "seed002"]) }
        let some = try configuration(["DIALECTS": "seed002"])
        #expect(some.dialect(named: "SEED002") == .seed002 && some.dialect(named: "seed004") == nil && some.dialect(named: nil) == .native)
    }

    private static func request(_ method: HTTPMethod, _ path: String, query: String? = nil, body: String = "") -> HTTPRequest {
        HTTPRequest(method: method, target: query.map { path + "?" + $0 } ?? path, path: path, query: query, version: .http1_1,
                    headers: [:], body: Array(body.utf8), keepAlive: true)
    }
}

extension DialectRoutes.Rewrite: Equatable {
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.request == rhs.request && lhs.dialect == rhs.dialect && lhs.reshape == rhs.reshape }
}
