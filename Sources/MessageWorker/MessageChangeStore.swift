import Shared

/// Who may change a message, decided on what the change's transaction read (issue 14). Pure.
struct MessageChangeRules {
    /// What the transaction read about the message and the actor.
    struct Facts: Equatable {
        var senderID: Int64
        /// Whether the actor is a member of the message's conversation (and the room is not gone).
        var actorIsMember: Bool
        /// The actor's role in a room (nil in a direct conversation).
        var actorRoomRole: RoomRole?
        var isDeleted: Bool
        var isEdited: Bool
        var content: String
        /// Whether the message is still inside the edit window.
        var insideEditWindow: Bool
    }

    /// What to do.
    enum Decision: Equatable {
        /// Write the change (a new version).
        case change
        /// Nothing to write; answer with the message as it is (`announce`: publish its event
        /// again, for a redelivered command whose first events may have been lost).
        case unchanged(announce: Bool)
        case refused(APIError)
    }

    /// An edit by `actor` to `content`.
    static func edit(by actor: Int64, to content: String, _ facts: Facts) -> Decision {
        guard facts.actorIsMember else { return .refused(APIError(.messageNotFound)) }
        guard facts.senderID == actor else { return .refused(APIError(.notMessageSender)) }
        guard !facts.isDeleted else { return .refused(APIError(.messageDeleted)) }
        // The same text again (a retry, or a redelivered edit) changes nothing.
        if facts.content == content { return .unchanged(announce: facts.isEdited) }
        guard facts.insideEditWindow else { return .refused(APIError(.editWindowPassed)) }
        return .change
    }

    /// A delete by `actor`: its sender, or an admin of its room.
    static func delete(by actor: Int64, _ facts: Facts) -> Decision {
        guard facts.actorIsMember else { return .refused(APIError(.messageNotFound)) }
        guard facts.senderID == actor || facts.actorRoomRole == .admin else { return .refused(APIError(.notMessageSender)) }
        if facts.isDeleted { return .unchanged(announce: true) }
        return .change
    }
}

/// Applies edits and deletes (issue 14): each in one transaction that locks the message's
/// conversation first (the lock sends take, so a change is ordered with the conversation's
/// messages), then the message, checks `MessageChangeRules`, advances the conversation's `version`,
/// writes, checks the shards' fence last and commits. A delete erases the content and the
/// attachment in the row itself. The changed message goes to every member's devices:
/// `messageEdited` / `messageDeleted` on both users' channels, or once on a room's channel.
@LoopActor
final class MessageChangeStore {
    private let database: PostgresPool
    private let editWindow: Duration

    init(database: PostgresPool, editWindow: Duration) {
        self.database = database
        self.editWindow = editWindow
    }

    func apply(_ command: BatchCommand, fence: [Int: Int64]) async throws -> CommandOutcome {
        let actor = command.envelope.userID
        let windowMilliseconds = editWindow.wholeMilliseconds
        let result: Result<(ChatMessageRecord, announce: Bool), APIError> = try await database.transaction { connection in
            let messageID: Int64
            switch command.envelope.command {
            case .edit(let id, _), .delete(let id): messageID = id
            default: return .failure(ChatErrors.unsupportedCommand(command.envelope.command.typeName))
            }
            let conversation = try await connection.query("""
                SELECT c.id, c.kind FROM conversations c
                WHERE c.id = (SELECT conversation_id FROM messages WHERE id = $1) AND c.deleted_at IS NULL
                FOR UPDATE
                """, [.int64(messageID)])
            guard let conversationRow = conversation.first else { return .failure(APIError(.messageNotFound)) }
            let isRoom = try conversationRow.string("kind") == "room"
            let rows = try await connection.query("""
                SELECT m.sender_id, m.content, m.deleted_at IS NOT NULL AS is_deleted, m.edited_at IS NOT NULL AS is_edited,
                       ($3::bigint = 0 OR m.created_at > now() - $3::bigint * interval '1 millisecond') AS inside_window,
                       me.user_id IS NOT NULL AS is_member, me.role
                FROM messages m
                LEFT JOIN conversation_members me ON me.conversation_id = m.conversation_id AND me.user_id = $2
                WHERE m.id = $1
                FOR UPDATE OF m
                """, [.int64(messageID), .int64(actor), .int64(windowMilliseconds)])
            guard let row = rows.first else { return .failure(APIError(.messageNotFound)) }
            let facts = MessageChangeRules.Facts(
                senderID: try row.int64("sender_id"), actorIsMember: try row.bool("is_member"),
                actorRoomRole: isRoom ? try row.optionalString("role").flatMap(RoomRole.init(rawValue:)) : nil,
                isDeleted: try row.bool("is_deleted"), isEdited: try row.bool("is_edited"), content: try row.string("content"),
                insideEditWindow: try row.bool("inside_window"))
            let decision: MessageChangeRules.Decision
            switch command.envelope.command {
            case .edit(_, let content): decision = MessageChangeRules.edit(by: actor, to: content, facts)
            default: decision = MessageChangeRules.delete(by: actor, facts)
            }
            var announce = true
            switch decision {
            case .refused(let error):
                return .failure(error)
            case .unchanged(let again):
                announce = again
            case .change:
                let version = try await connection.query(
                    "UPDATE conversations SET version = version + 1 WHERE id = $1 RETURNING version",
                    [.int64(try conversationRow.int64("id"))]).int64("version")
                if case .edit(_, let content) = command.envelope.command {
                    try await connection.query("UPDATE messages SET content = $2, edited_at = now(), version = $3 WHERE id = $1",
                                               [.int64(messageID), .string(content), .int64(version)])
                } else {
                    try await connection.query("""
                        UPDATE messages SET content = '', attachment_url = NULL, attachment_name = NULL, attachment_size = NULL, mime_type = NULL,
                                            deleted_at = now(), version = $2 WHERE id = $1
                        """, [.int64(messageID), .int64(version)])
                }
            }
            let stored = try await connection.query(
                "SELECT \(ChatMessageRecord.columns) FROM \(ChatMessageRecord.tables) WHERE m.id = $1", [.int64(messageID)])
            guard let storedRow = stored.first else { return .failure(APIError(.messageNotFound)) }
            try await ShardFence.check(fence, on: connection)
            return .success((try ChatMessageRecord(row: storedRow), announce: announce))
        }
        switch result {
        case .failure(let error):
            return CommandOutcome(entryID: command.entryID, reply: command.envelope.reply.map { ChatReply(reply: $0, error: error) }, events: [])
        case .success(let (record, announce)):
            let data = JSONValue.object(record.json)
            let event: SocketEvent = if case .delete = command.envelope.command { .messageDeleted } else { .messageEdited }
            var events: [ChatEvent] = []
            var roomEvents: [RoomEvent] = []
            if announce {
                if let receiver = record.receiverID {
                    events = [ChatEvent(userID: record.senderID, event: event, data: data), ChatEvent(userID: receiver, event: event, data: data)]
                } else {
                    roomEvents = [RoomEvent(roomID: record.conversationID, event: event, data: data)]
                }
            }
            return CommandOutcome(entryID: command.entryID, reply: command.envelope.reply.map { ChatReply(reply: $0, outcome: .ok(data)) },
                                  events: events, roomEvents: roomEvents)
        }
    }
}
