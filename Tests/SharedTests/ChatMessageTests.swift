import Testing
@testable import Shared

@Suite struct ChatMessageTests {
    private static func rows(_ cells: [String?]) -> PostgresRows {
        PostgresRows(columns: ["id", "conversation_id", "seq", "sender_id", "receiver_id", "client_msg_id", "type", "content",
                               "attachment_url", "attachment_name", "attachment_size", "mime_type", "created_ms", "edited_ms", "deleted_ms", "version", "reactions", "is_read"], cells: cells)
    }

    @Test func decodesARowAndShowsTheMessageJSON() throws {
        let result = Self.rows(["10", "3", "7", "1", "2", "c-1", "text", "hi", nil, nil, nil, nil, "1705314600000", nil, nil, "0", nil, "t"])
        let record = try ChatMessageRecord(row: result[0])
        #expect(record == ChatMessageRecord(id: 10, conversationID: 3, seq: 7, senderID: 1, receiverID: 2, clientMsgID: "c-1", type: .text,
                                            content: "hi", attachmentURL: nil, createdAtMilliseconds: 1_705_314_600_000, isRead: true))
        #expect(JSONValue.object(record.json).jsonString == """
            {"id":10,"conversationId":3,"seq":7,"senderId":1,"receiverId":2,"content":"hi","type":"text","attachmentUrl":null,\
            "attachmentName":null,"attachmentSize":null,"mimeType":null,"clientMsgId":"c-1","isRead":true,"createdAt":"2024-01-15T10:30:00.000Z","updatedAt":"2024-01-15T10:30:00.000Z",\
            "editedAt":null,"isDeleted":false,"deletedAt":null,"version":0,"reactions":[]}
            """)
    }

    @Test func updatedAtFollowsAnEdit() throws {
        let result = Self.rows(["10", "3", "7", "1", "2", "c-1", "image", "pic", "https://x/y", "y.png", "12", "image/png", "1705314600000", "1705314601234", nil, "3", "👍 2 🎉 1", "f"])
        let json = try ChatMessageRecord(row: result[0]).json
        #expect(json["updatedAt"] == "2024-01-15T10:30:01.234Z")
        #expect(json["editedAt"] == "2024-01-15T10:30:01.234Z")
        #expect(json["version"] == 3)
        #expect(json["reactions"] == [["emoji": "👍", "count": 2, "me": false], ["emoji": "🎉", "count": 1, "me": false]])
        #expect(json["attachmentUrl"] == "https://x/y")
        #expect(json["type"] == "image")
        #expect(json["isRead"] == false)
    }

    /// Issue 14: a deleted message shows no content or attachment, whatever a row still held.
    @Test func aDeletedMessageShowsNothingOfItsContent() throws {
        let result = Self.rows(["10", "3", "7", "1", nil, "c-1", "image", "left over", "https://x/y", "y.png", "12", "image/png", "1705314600000", nil,
                                "1705314602000", "4", "👍 1", "f"])
        let json = try ChatMessageRecord(row: result[0]).json
        #expect(json["isDeleted"] == true && json["content"] == "" && json["attachmentUrl"] == .null)
        #expect(json["attachmentName"] == .null && json["attachmentSize"] == .null && json["mimeType"] == .null)
        #expect(json["reactions"] == [], "a deleted message shows no reactions either")
        #expect(json["deletedAt"] == "2024-01-15T10:30:02.000Z" && json["version"] == 4 && json["roomId"] == 3)
    }

    @Test func unknownTypesAreDecodingErrors() {
        let result = Self.rows(["10", "3", "7", "1", "2", "c-1", "video", "x", nil, nil, nil, nil, "0", nil, nil, "0", nil, "f"])
        #expect(throws: PostgresError.self) { try ChatMessageRecord(row: result[0]) }
    }

    @Test func directKeysAreOrderIndependent() {
        #expect(DirectConversation.key(5, 12) == "5:12")
        #expect(DirectConversation.key(12, 5) == "5:12")
    }
}
