import Testing
@testable import Shared

@Suite struct ChatReplyTests {
    @Test func successRepliesCarryTheAddressAndResult() throws {
        let reply = ChatReply(reply: ReplyAddress(gateway: "gw-1", engineSession: "s1", ack: 4), outcome: .ok(["count": 2, "lastReadSeq": 9]))
        #expect(reply.channel == "chat:gw:gw-1")
        #expect(String(decoding: reply.payload(), as: UTF8.self)
            == #"{"reply":{"gateway":"gw-1","socket":"s1","ack":4},"ok":true,"result":{"count":2,"lastReadSeq":9}}"#)
        #expect(ChatReply.parse(reply.payload()) == reply)
    }

    @Test func aValueWrittenOnceIsSplicedIntoTheSamePayloads() throws {
        let message: JSONObject = ["id": 7, "content": "h\u{e9}llo \"you\"", "seq": 3, "tags": ["a", nil]]
        let written = JSONValue.object(message).serialized()
        let address = ReplyAddress(gateway: "gw-1", engineSession: "s1", ack: 4)
        var reply = ChatReply(reply: address, outcome: .ok(.object(message)))
        let plainReply = reply.payload()
        reply.encodedResult = written
        #expect(reply.payload() == plainReply)
        let event = ChatEvent(userID: 5, event: .messageSent, data: .object(message))
        #expect(ChatEvent(userID: 5, event: .messageSent, data: .object(message), encodedData: written).payload() == event.payload())
        for except in [nil, Int64(9)] {
            let room = RoomEvent(roomID: 50, event: .receiveMessage, data: .object(message), except: except)
            #expect(RoomEvent(roomID: 50, event: .receiveMessage, data: .object(message), except: except, encodedData: written).payload()
                == room.payload())
        }
        // Members appended to a written object read as if set before writing.
        var extended = message
        extended["unreadCount"] = 2
        extended["totalUnread"] = -1
        #expect(EncodedJSON.appending(["unreadCount": 2, "totalUnread": -1], to: written) == JSONValue.object(extended).serialized())
        #expect(EncodedJSON.appending(["n": 1], to: Array("{}".utf8)) == Array(#"{"n":1}"#.utf8))
    }

    @Test func failureRepliesCarryCodeAndMessage() throws {
        let reply = ChatReply(reply: ReplyAddress(gateway: "g", request: "r-9"), error: ChatErrors.userNotFound)
        #expect(String(decoding: reply.payload(), as: UTF8.self)
            == #"{"reply":{"gateway":"g","request":"r-9"},"ok":false,"error":{"code":"user_not_found","message":"the receiver does not exist"}}"#)
        #expect(ChatReply.parse(reply.payload()) == reply)
    }

    @Test func parseRefusesWhatIsNotAReply() {
        for text in ["", "{}", #"{"reply":{"gateway":"g"}}"#, #"{"reply":{},"ok":true}"#, #"{"reply":{"gateway":"g"},"ok":false}"#] {
            #expect(ChatReply.parse(Array(text.utf8)) == nil, "\(text)")
        }
    }

    @Test func replyErrorCodesMapToHTTPStatuses() {
        #expect(ChatErrors.apiError(code: "user_not_found", message: "m").status == .notFound)
        #expect(ChatErrors.apiError(code: "message_not_found", message: "m").status == .notFound)
        #expect(ChatErrors.apiError(code: "not_a_recipient", message: "m").status == .forbidden)
        #expect(ChatErrors.apiError(code: "validation_failed", message: "m").status == .unprocessableContent)
        #expect(ChatErrors.apiError(code: "cannot_message_self", message: "m").status == .unprocessableContent)
        #expect(ChatErrors.apiError(code: "processing_failed", message: "m").status == .internalServerError)
        for error in [ChatErrors.userNotFound, ChatErrors.messageNotFound, ChatErrors.notARecipient, ChatErrors.cannotMessageSelf, ChatErrors.processingFailed] {
            #expect(ChatErrors.apiError(code: error.code.name, message: error.message) == APIError(error.code, message: error.message))
        }
    }

    @Test func roomRefusalsFromAWorkerKeepTheirStatuses() {
        // A room command refused by the worker (a race the gateway's check could not see) is
        // answered with the code's own status, never a 500.
        let expected: [(String, HTTPStatus)] = [
            ("room_not_found", .notFound), ("not_a_member", .forbidden), ("admin_required", .forbidden),
            ("already_a_member", .conflict), ("member_not_found", .notFound), ("room_full", .conflict),
            ("invite_invalid", .notFound), ("last_admin", .conflict), ("too_many_rooms", .conflict),
        ]
        for (name, status) in expected {
            #expect(ChatErrors.apiError(code: name, message: "m").status == status, "\(name)")
        }
    }

    @Test func eventsAreWrappedForTheUserChannel() {
        let event = ChatEvent(userID: 12, event: .messageSent, data: ["id": 1])
        #expect(event.channel == "chat:user:12")
        #expect(String(decoding: event.payload(), as: UTF8.self) == #"{"event":"messageSent","data":{"id":1}}"#)
    }
}
