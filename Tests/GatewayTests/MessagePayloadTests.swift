import Testing
@testable import Gateway
@testable import Shared

@Suite struct MessagePayloadTests {
    private let me: Int64 = 7

    private func send(_ argument: JSONValue, max: Int = 4000) throws(APIError) -> SendMessage {
        try MessagePayload.send(argument, senderID: me, maxContentLength: max, generatedClientMsgID: { "g-generated" })
    }

    /// The message of the `validation_failed` error `body` throws; nil when it throws nothing.
    private func validationMessage(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as APIError {
            return error.code.name == "validation_failed" ? error.message : "code \(error.code)"
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test func sendTakesTheSeedPayloadAndFillsTheClientMessageID() throws {
        let message = try send(["receiverId": 2, "content": "Hello!"])
        #expect(message == SendMessage(receiverID: 2, content: "Hello!", type: .text, attachmentURL: nil, clientMsgID: "g-generated"))
        let full = try send(["receiverId": "2", "content": "pic", "type": "image",
                             "attachmentUrl": "https://example.com/a.png", "clientMsgId": "device-1:42"])
        #expect(full == SendMessage(receiverID: 2, content: "pic", type: .image, attachmentURL: "https://example.com/a.png",
                                    clientMsgID: "device-1:42"))
    }

    @Test func sendNamesTheBadField() {
        let cases: [(JSONValue, String)] = [
            (.null, "argument"),
            ("hello", "argument"),
            ([1, 2], "argument"),
            (["content": "x"], "receiverId"),
            (["receiverId": "abc", "content": "x"], "receiverId"),
            (["receiverId": 0, "content": "x"], "receiverId"),
            (["receiverId": -3, "content": "x"], "receiverId"),
            (["receiverId": 2.5, "content": "x"], "receiverId"),
            (["receiverId": 2], "content"),
            (["receiverId": 2, "content": 5], "content"),
            (["receiverId": 2, "content": ""], "content"),
            (["receiverId": 2, "content": "x", "type": "video"], "type"),
            (["receiverId": 2, "content": "x", "attachmentUrl": 7], "attachmentUrl"),
            (["receiverId": 2, "content": "x", "attachmentUrl": "ftp://example.com/a"], "attachmentUrl"),
            (["receiverId": 2, "content": "x", "clientMsgId": "has space"], "clientMsgId"),
            (["receiverId": 2, "content": "x", "clientMsgId": .string(String(repeating: "x", count: 65))], "clientMsgId"),
            (["receiverId": 2, "content": "x", "clientMsgId": 7], "clientMsgId"),
        ]
        for (argument, field) in cases {
            let message = validationMessage { _ = try send(argument) }
            #expect(message?.contains(field) == true, "\(argument.jsonString): \(message ?? "accepted")")
        }
    }

    @Test func contentIsCountedInUnicodeScalarsAgainstTheConfiguredLimit() throws {
        let emoji = String(repeating: "\u{1F600}", count: 10)
        _ = try send(["receiverId": 2, "content": .string(emoji)], max: 10)
        #expect(validationMessage { _ = try send(["receiverId": 2, "content": .string(emoji + "x")], max: 10) } != nil)
        // Two scalars (e + combining accent) per user-perceived character.
        #expect(validationMessage { _ = try send(["receiverId": 2, "content": .string(String(repeating: "e\u{301}", count: 6))], max: 10) } != nil)
    }

    @Test func messagesToOneselfAreRefused() {
        #expect(throws: ChatErrors.cannotMessageSelf) { try send(["receiverId": .int(me), "content": "note"]) }
        #expect(throws: ChatErrors.cannotMessageSelf) { try MessagePayload.markAllAsRead(["senderId": .int(me)], readerID: me) }
        #expect(throws: ChatErrors.cannotMessageSelf) { try MessagePayload.typingTarget(["receiverId": .int(me)], senderID: me) }
    }

    @Test func readEvents() throws {
        #expect(try MessagePayload.messageRead(["messageId": 12]) == .read(messageID: 12))
        #expect(try MessagePayload.messageRead(["messageId": "12"]) == .read(messageID: 12))
        #expect(try MessagePayload.markAllAsRead(["senderId": 3], readerID: me) == .readAll(senderID: 3))
        #expect(try MessagePayload.typingTarget(["receiverId": 3], senderID: me) == .user(3))
        #expect(try MessagePayload.typingTarget(["roomId": 8], senderID: me) == .room(8))
        for bad: JSONValue in [.null, [:], ["messageId": "x"], [1], ["messageId": .null]] {
            #expect(validationMessage { _ = try MessagePayload.messageRead(bad) } != nil, "\(bad.jsonString)")
        }
        for bad: JSONValue in [[:], ["senderId": []], "B"] {
            #expect(validationMessage { _ = try MessagePayload.markAllAsRead(bad, readerID: me) } != nil)
        }
        for bad: JSONValue in [[:], "x", ["receiverId": ["id": 1]], 7] {
            #expect(validationMessage { _ = try MessagePayload.typingTarget(bad, senderID: me) } != nil)
        }
    }

    @Test func markAsReadTakesIDsOrASenderNotBoth() throws {
        #expect(try MessagePayload.markAsRead(["messageIds": [3, 1, 3, "2"]], readerID: me) == .readMany([3, 1, 2]))
        #expect(try MessagePayload.markAsRead(["senderId": 4], readerID: me) == .readAll(senderID: 4))
        #expect(try MessagePayload.markAsRead(["messageIds": []], readerID: me) == nil)
        #expect(try MessagePayload.markAsRead(["messageIds": .null, "senderId": 4], readerID: me) == .readAll(senderID: 4))
        #expect(validationMessage { _ = try MessagePayload.markAsRead([:], readerID: me) }?.contains("messageIds") == true)
        #expect(validationMessage { _ = try MessagePayload.markAsRead(["messageIds": [1], "senderId": 4], readerID: me) } != nil)
        #expect(validationMessage { _ = try MessagePayload.markAsRead(["messageIds": 5], readerID: me) }?.contains("messageIds") == true)
        #expect(validationMessage { _ = try MessagePayload.markAsRead(["messageIds": [1, 0]], readerID: me) } != nil)
        #expect(validationMessage { _ = try MessagePayload.markAsRead(["messageIds": [1, "x"]], readerID: me) } != nil)
        let tooMany = JSONValue.array((1...3).map { .int($0) })
        #expect(validationMessage { _ = try MessagePayload.markAsRead(["messageIds": tooMany], readerID: me, maxIDs: 2) } != nil)
    }

    @Test func idsFromStringsOrNumbers() {
        #expect(MessagePayload.idValue(5) == 5)
        #expect(MessagePayload.idValue(5.0) == 5)
        #expect(MessagePayload.idValue("5") == 5)
        #expect(MessagePayload.idValue("05") == 5)
        #expect(MessagePayload.idValue("-5") == nil)
        #expect(MessagePayload.idValue("+5") == nil)
        #expect(MessagePayload.idValue("") == nil)
        #expect(MessagePayload.idValue("1234567890123456789") == nil)
        #expect(MessagePayload.idValue(0) == nil)
        #expect(MessagePayload.idValue(true) == nil)
    }

    @Test func generatedClientMessageIDsPassTheSharedRule() throws {
        let id = ClientMessageID.generate()
        try ChatCommand.validateClientMsgID(id)
        #expect(id != ClientMessageID.generate())
    }
}
