import Testing
@testable import Shared

@Suite struct ChatCommandTests {
    private static func fields(_ pairs: [(String, String)]) -> [(String, [UInt8])] {
        pairs.map { ($0.0, Array($0.1.utf8)) }
    }

    /// Stream fields as XREADGROUP would return them.
    private static func roundTrip(_ envelope: CommandEnvelope) throws -> CommandEnvelope {
        let flat = envelope.streamFields()
        #expect(flat.count % 2 == 0)
        var pairs: [(String, [UInt8])] = []
        var index = 0
        while index < flat.count {
            pairs.append((flat[index], Array(flat[index + 1].utf8)))
            index += 2
        }
        return try CommandEnvelope.decode(fields: pairs)
    }

    private static func rejection(_ pairs: [(String, String)], maxContentLength: Int = ChatLimits.maxContentLength) -> APIError? {
        do {
            _ = try CommandEnvelope.decode(fields: fields(pairs), maxContentLength: maxContentLength)
            return nil
        } catch {
            if case .rejected(let apiError, _, _) = error { return apiError }
            return nil
        }
    }

    private static func malformation(_ pairs: [(String, String)]) -> String? {
        do {
            _ = try CommandEnvelope.decode(fields: fields(pairs))
            return nil
        } catch {
            if case .malformed(let reason) = error { return reason }
            return nil
        }
    }

    private static let reply = #"{"gateway":"gw-1","socket":"sid","ack":7}"#

    @Test func everyCommandRoundTripsThroughStreamFields() throws {
        let address = ReplyAddress(gateway: "gw-1", engineSession: "abc", ack: 3, request: nil)
        let commands: [ChatCommand] = [
            .send(SendMessage(receiverID: 2, content: "héllo \"world\"\n", type: .image, attachmentURL: "https://x.test/a.png", clientMsgID: "c-1")),
            .send(SendMessage(receiverID: 9, content: "plain", clientMsgID: "0f8e:12.3_x")),
            .read(messageID: 42),
            .readAll(senderID: 5),
            .readMany([1, 2, 3]),
            .readMany([]),
        ]
        for command in commands {
            let envelope = CommandEnvelope(command: command, userID: 1, reply: address)
            #expect(try Self.roundTrip(envelope) == envelope)
        }
        let noReply = CommandEnvelope(command: .read(messageID: 1), userID: 77)
        #expect(try Self.roundTrip(noReply) == noReply)
        #expect(!noReply.streamFields().contains("reply"))
    }

    @Test func streamFieldsHaveTheWireNames() {
        let envelope = CommandEnvelope(command: .readAll(senderID: 5), userID: 12, reply: ReplyAddress(gateway: "g", request: "r1"))
        #expect(envelope.streamFields() == ["v", "1", "type", "readAll", "user", "12", "body", #"{"senderId":5}"#,
                                            "reply", #"{"gateway":"g","request":"r1"}"#])
        let send = CommandEnvelope(command: .send(SendMessage(receiverID: 2, content: "hi", clientMsgID: "a")), userID: 1)
        #expect(send.streamFields()[7] == #"{"receiverId":2,"content":"hi","type":"text","clientMsgId":"a"}"#)
    }

    @Test func decodesTheReplyAddress() throws {
        let envelope = try CommandEnvelope.decode(fields: Self.fields([
            ("v", "1"), ("type", "read"), ("user", "3"), ("body", #"{"messageId":"17"}"#), ("reply", Self.reply),
        ]))
        #expect(envelope.command == .read(messageID: 17))
        #expect(envelope.userID == 3)
        #expect(envelope.reply == ReplyAddress(gateway: "gw-1", engineSession: "sid", ack: 7))
    }

    @Test func typeDefaultsToText() throws {
        let envelope = try CommandEnvelope.decode(fields: Self.fields([
            ("v", "1"), ("type", "send"), ("user", "3"), ("body", #"{"receiverId":4,"content":"x","clientMsgId":"k"}"#),
        ]))
        #expect(envelope.command == .send(SendMessage(receiverID: 4, content: "x", type: .text, clientMsgID: "k")))
    }

    @Test func entriesNobodyCanBeAnsweredForAreMalformed() {
        let body = #"{"messageId":1}"#
        #expect(Self.malformation([("type", "read"), ("user", "1"), ("body", body)])?.contains("'v'") == true)
        #expect(Self.malformation([("v", "2"), ("type", "read"), ("user", "1"), ("body", body)])?.contains("version") == true)
        #expect(Self.malformation([("v", "1"), ("type", "read"), ("body", body)])?.contains("'user'") == true)
        for user in ["", "0", "-3", "abc", "1.5", "99999999999999999999", " 1"] {
            #expect(Self.malformation([("v", "1"), ("type", "read"), ("user", user), ("body", body)]) != nil, "user \(user)")
        }
        for reply in ["{", "[]", #"{"socket":"s"}"#, #"{"gateway":""}"#, #"{"gateway":5}"#] {
            #expect(Self.malformation([("v", "1"), ("type", "read"), ("user", "1"), ("body", body), ("reply", reply)]) != nil, "reply \(reply)")
        }
        // No fields at all: an entry trimmed from the stream while pending.
        #expect(Self.malformation([]) != nil)
    }

    @Test func wellAddressedButInvalidCommandsAreRejectedWithTheReplyAddress() throws {
        do {
            _ = try CommandEnvelope.decode(fields: Self.fields([("v", "1"), ("type", "read"), ("user", "4"), ("body", "nope"), ("reply", Self.reply)]))
            Issue.record("accepted")
        } catch {
            guard case .rejected(let apiError, let userID, let reply) = error else {
                Issue.record("not rejected: \(error)")
                return
            }
            #expect(apiError.code.name == "validation_failed")
            #expect(userID == 4)
            #expect(reply?.gateway == "gw-1")
            #expect(reply?.ack == 7)
        }
        let base = [("v", "1"), ("user", "4"), ("reply", Self.reply)]
        #expect(Self.rejection(base + [("body", "{}")])?.message.contains("'type'") == true)
        #expect(Self.rejection(base + [("type", "read")])?.message.contains("'body'") == true)
        #expect(Self.rejection(base + [("type", "read"), ("body", "[1]")])?.code.name == "validation_failed")
        #expect(Self.rejection(base + [("type", "dance"), ("body", "{}")])?.code.name == "unsupported_command")
        #expect(Self.rejection(base + [("type", "read"), ("body", "{}")])?.message == "field 'messageId' is required")
        #expect(Self.rejection(base + [("type", "read"), ("body", #"{"messageId":0}"#)])?.message.contains("positive") == true)
        #expect(Self.rejection(base + [("type", "read"), ("body", #"{"messageId":1.5}"#)]) != nil)
        #expect(Self.rejection(base + [("type", "readAll"), ("body", #"{"senderId":"x"}"#)]) != nil)
        #expect(Self.rejection(base + [("type", "readMany"), ("body", #"{"messageIds":[1,-2]}"#)]) != nil)
        #expect(Self.rejection(base + [("type", "readMany"), ("body", #"{"messageIds":5}"#)])?.message.contains("array") == true)
        let tooMany = "[" + (1...1001).map(String.init).joined(separator: ",") + "]"
        #expect(Self.rejection(base + [("type", "readMany"), ("body", #"{"messageIds":\#(tooMany)}"#)]) != nil)
    }

    @Test func sendValidation() {
        let base = [("v", "1"), ("user", "4"), ("type", "send")]
        func body(_ json: String) -> [(String, String)] { base + [("body", json)] }
        #expect(Self.rejection(body(#"{"receiverId":4,"content":"me","clientMsgId":"a"}"#))?.code.name == "cannot_message_self")
        #expect(Self.rejection(body(#"{"content":"x","clientMsgId":"a"}"#))?.message == "field 'receiverId' is required")
        #expect(Self.rejection(body(#"{"receiverId":5,"clientMsgId":"a"}"#))?.message == "field 'content' is required")
        #expect(Self.rejection(body(#"{"receiverId":5,"content":7,"clientMsgId":"a"}"#))?.message == "field 'content' must be a string")
        #expect(Self.rejection(body(#"{"receiverId":5,"content":"","clientMsgId":"a"}"#))?.message.contains("empty") == true)
        #expect(Self.rejection(body(#"{"receiverId":5,"content":" \n\t","clientMsgId":"a"}"#))?.message.contains("empty") == true)
        #expect(Self.rejection(body(#"{"receiverId":5,"content":"a\u0000b","clientMsgId":"a"}"#))?.message.contains("NUL") == true)
        #expect(Self.rejection(body(#"{"receiverId":5,"content":"x"}"#))?.message == "field 'clientMsgId' is required")
        #expect(Self.rejection(body(#"{"receiverId":5,"content":"x","clientMsgId":"a b"}"#))?.message.contains("clientMsgId") == true)
        #expect(Self.rejection(body(#"{"receiverId":5,"content":"x","clientMsgId":""}"#)) != nil)
        #expect(Self.rejection(body(#"{"receiverId":5,"content":"x","clientMsgId":"\#(String(repeating: "a", count: 65))"}"#)) != nil)
        #expect(Self.rejection(body(#"{"receiverId":5,"content":"x","clientMsgId":"\#(String(repeating: "a", count: 64))"}"#)) == nil)
        #expect(Self.rejection(body(#"{"receiverId":5,"content":"x","clientMsgId":"a","type":"video"}"#))?.message.contains("'type'") == true)
        // Attachments (issue 14): image, file and voice messages only.
        let image = #""type":"image","clientMsgId":"a","receiverId":5"#
        #expect(Self.rejection(body(#"{"receiverId":5,"content":"x","clientMsgId":"a","attachmentUrl":"https://cdn.test/f"}"#))?.message
                == "field 'attachmentUrl' is only for image, file and voice messages")
        #expect(Self.rejection(body(#"{\#(image),"attachmentUrl":"ftp://x"}"#))?.message.contains("attachmentUrl") == true)
        #expect(Self.rejection(body(#"{\#(image),"attachmentUrl":"https://"}"#)) != nil)
        #expect(Self.rejection(body(#"{\#(image),"attachmentUrl":"https://a b"}"#)) != nil)
        #expect(Self.rejection(body(#"{\#(image),"attachmentUrl":"HTTPS://cdn.test/f?x=1"}"#)) == nil, "a caption is optional")
        #expect(Self.rejection(body(#"{\#(image)}"#))?.message == "field 'attachmentUrl' is required for image messages")
        let longURL = "https://cdn.test/" + String(repeating: "a", count: 2048)
        #expect(Self.rejection(body(#"{\#(image),"attachmentUrl":"\#(longURL)"}"#)) != nil)
        #expect(Self.rejection(body(#"{"receiverId":"5","content":"x","clientMsgId":"a"}"#)) == nil)
    }

    @Test func contentIsCountedInUnicodeScalarsWithAConfigurableLimit() throws {
        // "é" as e + combining accent is two scalars; an emoji is one scalar but four UTF-8 bytes.
        try ChatCommand.validateContent(String(repeating: "😀", count: 4000))
        #expect(throws: APIError.self) { try ChatCommand.validateContent(String(repeating: "😀", count: 4001)) }
        try ChatCommand.validateContent("e\u{301}", maxLength: 2)
        #expect(throws: APIError.self) { try ChatCommand.validateContent("e\u{301}", maxLength: 1) }
        let base = [("v", "1"), ("user", "4"), ("type", "send"), ("body", #"{"receiverId":5,"content":"hello","clientMsgId":"a"}"#)]
        #expect(Self.rejection(base, maxContentLength: 4)?.message.contains("at most 4") == true)
        #expect(Self.rejection(base, maxContentLength: 5) == nil)
    }

    @Test func gatewayParsingGeneratesAMissingClientMessageID() throws {
        let body: JSONObject = ["receiverId": 2, "content": "hi"]
        let message = try SendMessage.parse(body, generatedClientMsgID: { "gen-1" })
        #expect(message.clientMsgID == "gen-1")
        #expect(throws: APIError.self) { try SendMessage.parse(body) }
        let given = try SendMessage.parse(["receiverId": 2, "content": "hi", "clientMsgId": "mine"], generatedClientMsgID: { "gen-1" })
        #expect(given.clientMsgID == "mine")
    }

    @Test func firstOccurrenceOfAFieldWins() throws {
        let envelope = try CommandEnvelope.decode(fields: Self.fields([
            ("v", "1"), ("user", "3"), ("user", "4"), ("type", "read"), ("body", #"{"messageId":1}"#),
        ]))
        #expect(envelope.userID == 3)
    }
}
