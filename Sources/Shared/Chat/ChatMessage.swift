import JSON
import Postgres

/// A stored message as every part of the system shows it (REST history, events, acks).
///
/// Query with `SELECT \(ChatMessageRecord.columns) FROM \(ChatMessageRecord.tables) WHERE ...`:
/// `m` is `messages`, `c` its conversation. `receiver_id` is derived from the direct conversation's
/// key, `is_read` from the read pointers (one per member per conversation: a message is read when
/// another member's `last_read_seq` reached its `seq`).
package struct ChatMessageRecord: Sendable, Equatable {
    /// `messages.id`.
    package var id: Int64
    /// The conversation it belongs to.
    package var conversationID: Int64
    /// Its position in the conversation: 1, 2, 3, ... without gaps.
    package var seq: Int64
    /// Who sent it.
    package var senderID: Int64
    /// The other member of a direct conversation (nil for rooms).
    package var receiverID: Int64?
    /// The sender's idempotency key.
    package var clientMsgID: String
    /// The kind of content.
    package var type: MessageType
    /// The text (or caption).
    package var content: String
    /// The attachment's URL, if any, and what the sender said of it.
    package var attachmentURL: String?
    package var attachmentName: String?
    package var attachmentSize: Int64?
    package var mimeType: String?
    /// When it was stored, in milliseconds since the epoch (truncated).
    package var createdAtMilliseconds: Int64
    /// When it was last edited, if ever.
    package var editedAtMilliseconds: Int64?
    /// When it was deleted, if it was (its content is then empty; issue 14).
    package var deletedAtMilliseconds: Int64?
    /// The conversation's change counter at its last edit or delete (0: never changed).
    package var version: Int64
    /// Its reactions: each emoji with how many users chose it, in the order they first appeared.
    package var reactions: [Reaction] = []

    /// One emoji's count on a message.
    package struct Reaction: Sendable, Equatable {
        package var emoji: String
        package var count: Int64

        package init(emoji: String, count: Int64) {
            self.emoji = emoji
            self.count = count
        }
    }
    /// Whether another member's read pointer reached it.
    package var isRead: Bool

    /// A record from its values.
    package init(id: Int64, conversationID: Int64, seq: Int64, senderID: Int64, receiverID: Int64?, clientMsgID: String,
                 type: MessageType, content: String, attachmentURL: String?, attachmentName: String? = nil, attachmentSize: Int64? = nil,
                 mimeType: String? = nil, createdAtMilliseconds: Int64,
                 editedAtMilliseconds: Int64? = nil, deletedAtMilliseconds: Int64? = nil, version: Int64 = 0, isRead: Bool) {
        self.id = id
        self.conversationID = conversationID
        self.seq = seq
        self.senderID = senderID
        self.receiverID = receiverID
        self.clientMsgID = clientMsgID
        self.type = type
        self.content = content
        self.attachmentURL = attachmentURL
        self.attachmentName = attachmentName
        self.attachmentSize = attachmentSize
        self.mimeType = mimeType
        self.createdAtMilliseconds = createdAtMilliseconds
        self.editedAtMilliseconds = editedAtMilliseconds
        self.deletedAtMilliseconds = deletedAtMilliseconds
        self.version = version
        self.isRead = isRead
    }

    /// The `FROM` clause the column list expects.
    package static let tables = "messages m JOIN conversations c ON c.id = m.conversation_id"

    /// The SQL expression for the receiver of message `m` in direct conversation `c`.
    package static let receiverExpression = """
        CASE WHEN c.kind = 'direct' THEN \
        CASE WHEN split_part(c.direct_key, ':', 1)::bigint = m.sender_id \
        THEN split_part(c.direct_key, ':', 2)::bigint ELSE split_part(c.direct_key, ':', 1)::bigint END END
        """

    /// Columns in the order `init(row:)` reads them.
    package static let columns = """
        m.id, m.conversation_id, m.seq, m.sender_id, \(receiverExpression) AS receiver_id, \
        m.client_msg_id, m.type, m.content, m.attachment_url, m.attachment_name, m.attachment_size, m.mime_type, \
        floor(extract(epoch FROM m.created_at) * 1000)::bigint AS created_ms, \
        floor(extract(epoch FROM m.edited_at) * 1000)::bigint AS edited_ms, \
        floor(extract(epoch FROM m.deleted_at) * 1000)::bigint AS deleted_ms, m.version, \
        (SELECT string_agg(r.emoji || ' ' || r.n, ' ' ORDER BY r.first) FROM (SELECT emoji, count(*) AS n, min(created_at) AS first \
        FROM message_reactions WHERE message_id = m.id GROUP BY emoji) r) AS reactions, \
        EXISTS (SELECT 1 FROM conversation_members r WHERE r.conversation_id = m.conversation_id \
        AND r.user_id <> m.sender_id AND r.last_read_seq >= m.seq) AS is_read
        """

    /// Decodes a row selected with `columns`.
    package init(row: PostgresRow) throws(PostgresError) {
        id = try row.int64("id")
        conversationID = try row.int64("conversation_id")
        seq = try row.int64("seq")
        senderID = try row.int64("sender_id")
        receiverID = try row.optionalInt64("receiver_id")
        clientMsgID = try row.string("client_msg_id")
        let typeName = try row.string("type")
        guard let type = MessageType(rawValue: typeName) else {
            throw .decoding(column: "type", reason: "unknown message type '\(typeName)'")
        }
        self.type = type
        content = try row.string("content")
        attachmentURL = try row.optionalString("attachment_url")
        attachmentName = try row.optionalString("attachment_name")
        attachmentSize = try row.optionalInt64("attachment_size")
        mimeType = try row.optionalString("mime_type")
        createdAtMilliseconds = try row.int64("created_ms")
        editedAtMilliseconds = try row.optionalInt64("edited_ms")
        deletedAtMilliseconds = try row.optionalInt64("deleted_ms")
        version = try row.int64("version")
        reactions = Self.reactions(try row.optionalString("reactions"))
        isRead = try row.bool("is_read")
    }

    /// `"<emoji> <count> <emoji> <count> ..."` (emoji hold no spaces) as pairs.
    package static func reactions(_ text: String?) -> [Reaction] {
        guard let text else { return [] }
        let parts = text.split(separator: " ")
        var pairs: [Reaction] = []
        var index = 0
        while index + 1 < parts.count {
            if let count = Int64(parts[index + 1]) { pairs.append(Reaction(emoji: String(parts[index]), count: count)) }
            index += 2
        }
        return pairs
    }

    /// The message JSON: `{"id", "conversationId", "seq", "senderId", "receiverId", "content", "type",
    /// "attachmentUrl", "attachmentName", "attachmentSize", "mimeType", "clientMsgId", "isRead", "createdAt", "updatedAt", "editedAt", "isDeleted",
    /// "deletedAt", "version"}` (timestamps ISO 8601 with ms); a room's message has `receiverId` null
    /// and `roomId` (its conversation) instead. A deleted message shows no content or attachment.
    package var json: JSONObject {
        let created = ISO8601.format(millisecondsSinceEpoch: createdAtMilliseconds)
        var object: JSONObject = [
            "id": .int(id),
            "conversationId": .int(conversationID),
            "seq": .int(seq),
            "senderId": .int(senderID),
            "receiverId": receiverID.map { .int($0) } ?? .null,
            "content": .string(content),
            "type": .string(type.rawValue),
            "attachmentUrl": attachmentURL.map { .string($0) } ?? .null,
            "attachmentName": attachmentName.map { .string($0) } ?? .null,
            "attachmentSize": attachmentSize.map { .int($0) } ?? .null,
            "mimeType": mimeType.map { .string($0) } ?? .null,
            "clientMsgId": .string(clientMsgID),
            "isRead": .bool(isRead),
            "createdAt": .string(created),
            "updatedAt": .string(editedAtMilliseconds.map { ISO8601.format(millisecondsSinceEpoch: $0) } ?? created),
            "editedAt": editedAtMilliseconds.map { .string(ISO8601.format(millisecondsSinceEpoch: $0)) } ?? .null,
            "isDeleted": .bool(deletedAtMilliseconds != nil),
            "deletedAt": deletedAtMilliseconds.map { .string(ISO8601.format(millisecondsSinceEpoch: $0)) } ?? .null,
            "version": .int(version),
            "reactions": .array(reactions.map { ["emoji": .string($0.emoji), "count": .int($0.count), "me": false] }),
        ]
        if deletedAtMilliseconds != nil {
            object["content"] = .string("")
            for key in ["attachmentUrl", "attachmentName", "attachmentSize", "mimeType"] { object[key] = .null }
            object["reactions"] = .array([])
        }
        if receiverID == nil { object["roomId"] = .int(conversationID) }
        return object
    }
}

/// The one direct conversation of a pair of users, found by `conversations.direct_key`.
package enum DirectConversation {
    /// `"<smaller id>:<larger id>"`: the same for both members, whoever writes first.
    package static func key(_ first: Int64, _ second: Int64) -> String {
        "\(min(first, second)):\(max(first, second))"
    }
}
