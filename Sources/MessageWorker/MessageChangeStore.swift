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

    /// A reaction by `actor`: any member, on a message that is not deleted (the store decides
    /// whether it changes anything).
    static func react(by actor: Int64, _ facts: Facts) -> Decision {
        guard facts.actorIsMember else { return .refused(APIError(.messageNotFound)) }
        guard !facts.isDeleted else { return .refused(APIError(.messageDeleted)) }
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

    /// Adds or removes `actor`'s `emoji` on a message whose row is locked: `.change` when it did,
    /// `.unchanged` when it was so already, `too_many_reactions` for a new emoji past the limit.
    private static func react(_ messageID: Int64, emoji: String, add: Bool, by actor: Int64,
                              on connection: PostgresConnection) async throws -> MessageChangeRules.Decision {
        guard add else {
            let removed = try await connection.query(
                "DELETE FROM message_reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3 RETURNING 1",
                [.int64(messageID), .string(emoji), .int64(actor)])
            return removed.isEmpty ? .unchanged(announce: false) : .change
        }
        let state = try await connection.query("""
            SELECT count(DISTINCT emoji) AS kinds, coalesce(bool_or(emoji = $2), false) AS has_emoji,
                   coalesce(bool_or(emoji = $2 AND user_id = $3), false) AS mine
            FROM message_reactions WHERE message_id = $1
            """, [.int64(messageID), .string(emoji), .int64(actor)])
        if try state.bool("mine") { return .unchanged(announce: false) }
        if try !state.bool("has_emoji"), try state.int64("kinds") >= Int64(ReactionRules.maxDistinct) {
            return .refused(APIError(.tooManyReactions))
        }
        try await connection.query("INSERT INTO message_reactions (message_id, emoji, user_id) VALUES ($1, $2, $3)",
                                   [.int64(messageID), .string(emoji), .int64(actor)])
        return .change
    }

    func apply(_ command: BatchCommand, fence: [Int: Int64]) async throws -> CommandOutcome {
        let actor = command.envelope.userID
        let windowMilliseconds = editWindow.wholeMilliseconds
        let result: Result<(ChatMessageRecord, announce: Bool, mine: Set<String>), APIError> = try await database.transaction { connection in
            let messageID: Int64
            switch command.envelope.command {
            case .edit(let id, _), .delete(let id), .react(let id, _, _): messageID = id
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
            var decision: MessageChangeRules.Decision
            switch command.envelope.command {
            case .edit(_, let content): decision = MessageChangeRules.edit(by: actor, to: content, facts)
            case .react(_, let emoji, let add):
                decision = MessageChangeRules.react(by: actor, facts)
                if decision == .change {
                    decision = try await Self.react(messageID, emoji: emoji, add: add, by: actor, on: connection)
                }
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
                    try await connection.query("UPDATE messages SET content = $2, edited_at = now(), version = $3, changed_at = now() WHERE id = $1",
                                               [.int64(messageID), .string(content), .int64(version)])
                } else if case .react = command.envelope.command {
                    try await connection.query("UPDATE messages SET version = $2, changed_at = now() WHERE id = $1", [.int64(messageID), .int64(version)])
                } else {
                    try await connection.query("""
                        UPDATE messages SET content = '', attachment_url = NULL, attachment_name = NULL, attachment_size = NULL, mime_type = NULL,
                                            deleted_at = now(), version = $2, changed_at = now() WHERE id = $1
                        """, [.int64(messageID), .int64(version)])
                }
            }
            let stored = try await connection.query(
                "SELECT \(ChatMessageRecord.columns) FROM \(ChatMessageRecord.tables) WHERE m.id = $1", [.int64(messageID)])
            guard let storedRow = stored.first else { return .failure(APIError(.messageNotFound)) }
            var mine = Set<String>()
            if case .react = command.envelope.command {
                let rows = try await connection.query("SELECT emoji FROM message_reactions WHERE message_id = $1 AND user_id = $2",
                                                      [.int64(messageID), .int64(actor)])
                for row in rows { mine.insert(try row.string("emoji")) }
            }
            try await ShardFence.check(fence, on: connection)
            return .success((try ChatMessageRecord(row: storedRow), announce: announce, mine: mine))
        }
        switch result {
        case .failure(let error):
            return CommandOutcome(entryID: command.entryID, reply: command.envelope.reply.map { ChatReply(reply: $0, error: error) }, events: [])
        case .success(let (record, announce, mine)):
            var message = record.json
            let event: SocketEvent
            var data: JSONValue
            switch command.envelope.command {
            case .delete:
                event = .messageDeleted
                data = .object(message)
            case .react(_, let emoji, let add):
                event = add ? .reactionAdded : .reactionRemoved
                data = ["messageId": .int(record.id), "conversationId": .int(record.conversationID), "userId": .int(actor),
                        "emoji": .string(emoji), "version": .int(record.version), "reactions": message["reactions"] ?? .array([])]
                if record.receiverID == nil, case .object(var object) = data {
                    object["roomId"] = .int(record.conversationID)
                    data = .object(object)
                }
                // The answer marks the actor's own reactions.
                message["reactions"] = .array((message["reactions"]?.arrayValue ?? []).map { reaction in
                    guard case .object(var fields) = reaction else { return reaction }
                    fields["me"] = .bool(mine.contains(fields["emoji"]?.stringValue ?? ""))
                    return .object(fields)
                })
            default:
                event = .messageEdited
                data = .object(message)
            }
            let answer = JSONValue.object(message)
            var events: [ChatEvent] = []
            var roomEvents: [RoomEvent] = []
            if announce {
                if let receiver = record.receiverID {
                    events = [ChatEvent(userID: record.senderID, event: event, data: data), ChatEvent(userID: receiver, event: event, data: data)]
                } else {
                    roomEvents = [RoomEvent(roomID: record.conversationID, event: event, data: data)]
                }
            }
            return CommandOutcome(entryID: command.entryID, reply: command.envelope.reply.map { ChatReply(reply: $0, outcome: .ok(answer)) },
                                  events: events, roomEvents: roomEvents)
        }
    }
}
