import Shared

/// The read side of messaging, straight from Postgres (parameterised SQL only): history pages,
/// the conversation list, unread counts, sync. Writes go through the command stream instead.
///
/// Read state is one pointer per member (`last_read_seq`): a message is read when its receiver's
/// pointer reached its seq, and a member's unread count is `last_seq - last_read_seq`.
@LoopActor
final class ConversationReader {
    private let database: PostgresPool
    private let presence: any PresenceLookup
    /// Direct conversations and rooms in one list, and unread counts by conversation (issue 14).
    let list: ConversationList

    init(database: PostgresPool, presence: any PresenceLookup) {
        self.database = database
        self.presence = presence
        list = ConversationList(database: database, presence: presence)
    }

    /// Message rows are selected as `ChatMessageRecord.columns` (shared with the workers), so a
    /// message reads the same in history, events and acks.
    private static let columns = ChatMessageRecord.columns

    // MARK: Users

    /// Whether a user exists (a quick 404 before a send is enqueued; the worker checks again).
    func userExists(_ userID: Int64) async throws(PostgresError) -> Bool {
        try await database.query("SELECT 1 FROM users WHERE id = $1", [.int64(userID)]).count == 1
    }

    /// A message this sender already stored under `clientMsgID`, if any (idempotent REST retries).
    func message(senderID: Int64, clientMsgID: String) async throws(PostgresError) -> JSONValue? {
        let rows = try await database.query("""
            SELECT \(Self.columns) FROM \(ChatMessageRecord.tables)
            WHERE m.sender_id = $1 AND m.client_msg_id = $2
            """, [.int64(senderID), .string(clientMsgID)])
        guard let row = rows.first else { return nil }
        return .object(try ChatMessageRecord(row: row).json)
    }

    // MARK: History

    /// Seed 000 history with `otherUserID`: oldest first, each message with `isRead` and the
    /// `sender` / `receiver` objects (`{id, username}`, plus `email` on the caller's own object only). nil when the other user does not exist; `[]` before the first
    /// message. `hasMore` says whether the page stopped short of the requested range's end.
    func history(userID: Int64, otherUserID: Int64, page: HistoryPage) async throws(PostgresError)
        -> (messages: [JSONValue], hasMore: Bool)? {
        let peopleQuery: PostgresQuery = """
            SELECT id, username, email,
                   (SELECT c.id FROM conversations c WHERE c.direct_key = \(Self.directKey(userID, otherUserID))) AS conversation_id
            FROM users WHERE id = \(userID) OR id = \(otherUserID)
            """
        let people = try await database.query(peopleQuery)
        var persons: [Int64: JSONValue] = [:]
        var conversationID: Int64?
        for row in people {
            let id = try row.int64("id")
            var person: JSONObject = ["id": .int(id), "username": .string(try row.string("username"))]
            // A user's email is shown to that user only (seed 000 showed both: a privacy leak).
            if id == userID { person["email"] = .string(try row.string("email")) }
            persons[id] = .object(person)
            conversationID = try row.optionalInt64("conversation_id")
        }
        guard persons[otherUserID] != nil else { return nil }
        guard let conversationID, userID != otherUserID else { return ([], false) }

        let rows = try await database.query(page.query(conversationID: conversationID))
        var messages: [JSONValue] = []
        messages.reserveCapacity(min(rows.count, page.limit))
        for row in rows.prefix(page.limit) {
            let message = try ChatMessageRecord(row: row)
            var json = message.json
            json["sender"] = persons[message.senderID] ?? .null
            json["receiver"] = message.receiverID.flatMap { persons[$0] } ?? .null
            messages.append(.object(json))
        }
        if !page.fromOldest { messages.reverse() }
        return (try await ReactionMarks.mark(messages, viewer: userID, database: database), rows.count > page.limit)
    }

    /// The other member of direct conversation `conversationID` when `userID` is a member of it;
    /// nil otherwise (another user's conversation, a room, no such conversation).
    func directPartner(conversationID: Int64, userID: Int64) async throws(PostgresError) -> Int64? {
        let rows = try await database.query("""
            SELECT c.direct_key FROM conversations c
            JOIN conversation_members me ON me.conversation_id = c.id AND me.user_id = $2
            WHERE c.id = $1 AND c.kind = 'direct'
            """, [.int64(conversationID), .int64(userID)])
        guard let key = try rows.first?.optionalString("direct_key") else { return nil }
        let ids = key.split(separator: ":").compactMap { Int64($0) }
        guard ids.count == 2 else { return nil }
        return ids[0] == userID ? ids[1] : ids[0]
    }

    /// The conversation's last `seq` (how many messages it ever had: seqs are gap-free).
    func lastSeq(conversationID: Int64) async throws(PostgresError) -> Int64 {
        try await database.query("SELECT last_seq FROM conversations WHERE id = $1", [.int64(conversationID)]).first?.int64("last_seq") ?? 0
    }

    /// `direct_key` of the conversation between two users: `"<smaller id>:<larger id>"`.
    nonisolated static func directKey(_ first: Int64, _ second: Int64) -> String {
        "\(min(first, second)):\(max(first, second))"
    }

    // MARK: Conversations

    /// Seed 000 conversation list, most recent first: `partner` (without the email: it is the
    /// partner's own), `lastMessage`, `unreadCount`, plus `conversationId` and `lastSeq`.
    func conversations(userID: Int64, limit: Int) async throws(PostgresError) -> [JSONValue] {
        let rows = try await database.query("""
            SELECT c.id AS conversation_id, c.last_seq, me.last_read_seq,
                   p.id AS partner_id, p.username,
                   \(Self.milliseconds("p.last_seen_at")) AS last_seen_ms,
                   m.id AS message_id, m.seq AS message_seq, m.sender_id, m.content,
                   \(Self.milliseconds("m.created_at")) AS created_ms,
                   CASE WHEN m.sender_id = me.user_id THEN pm.last_read_seq ELSE me.last_read_seq END >= m.seq AS is_read
            FROM conversation_members me
            JOIN conversations c ON c.id = me.conversation_id AND c.kind = 'direct'
            JOIN conversation_members pm ON pm.conversation_id = c.id AND pm.user_id <> me.user_id
            JOIN users p ON p.id = pm.user_id
            LEFT JOIN messages m ON m.id = c.last_message_id
            WHERE me.user_id = $1
            ORDER BY c.last_message_at DESC NULLS LAST, c.id DESC
            LIMIT $2
            """, [.int64(userID), .int(limit)])
        var partnerIDs: [Int64] = []
        for row in rows { partnerIDs.append(try row.int64("partner_id")) }
        let online = await presence.onlineUsers(among: partnerIDs)
        var list: [JSONValue] = []
        list.reserveCapacity(rows.count)
        for row in rows {
            let partnerID = try row.int64("partner_id")
            let partner: JSONValue = [
                "id": .int(partnerID),
                "username": .string(try row.string("username")),
                "isOnline": .bool(online.contains(partnerID)),
                "lastSeen": Self.timestamp(try row.optionalInt64("last_seen_ms")),
            ]
            var lastMessage = JSONValue.null
            if let messageID = try row.optionalInt64("message_id") {
                lastMessage = [
                    "id": .int(messageID),
                    "content": .string(try row.string("content")),
                    "isRead": .bool(try row.bool("is_read")),
                    "createdAt": Self.timestamp(try row.optionalInt64("created_ms")),
                    "senderId": .int(try row.int64("sender_id")),
                    "seq": .int(try row.int64("message_seq")),
                ]
            }
            let lastSeq = try row.int64("last_seq")
            list.append([
                "conversationId": .int(try row.int64("conversation_id")),
                "partner": partner,
                "lastMessage": lastMessage,
                "unreadCount": .int(Unread.inConversation(lastSeq: lastSeq, lastReadSeq: try row.int64("last_read_seq"))),
                "lastSeq": .int(lastSeq),
            ])
        }
        return list
    }

    /// Unread messages over all of the user's conversations.
    func unreadCount(userID: Int64) async throws(PostgresError) -> Int64 {
        let rows = try await database.query("""
            SELECT coalesce(sum(greatest(c.last_seq - me.last_read_seq, 0)), 0)::bigint AS unread
            FROM conversation_members me JOIN conversations c ON c.id = me.conversation_id
            WHERE me.user_id = $1
            """, [.int64(userID)])
        return try rows.first?.int64("unread") ?? 0
    }

    // MARK: Sync

    /// What a device missed: for each of the user's conversations (most recent first, at most
    /// `maxConversations`), the messages after the seq the cursor names (after 0 when unnamed),
    /// oldest first, at most `limit`, with `hasMore`, the read pointer and the unread count.
    func sync(userID: Int64, cursor: SyncCursor, limit: Int, maxConversations: Int) async throws(PostgresError) -> JSONValue {
        let memberships = try await database.query("""
            SELECT c.id AS conversation_id, c.last_seq, c.version, me.last_read_seq
            FROM conversation_members me JOIN conversations c ON c.id = me.conversation_id
            WHERE me.user_id = $1
            ORDER BY c.last_message_at DESC NULLS LAST, c.id DESC
            LIMIT $2
            """, [.int64(userID), .int(maxConversations)])
        struct Entry {
            let id: Int64
            let lastSeq: Int64
            let lastReadSeq: Int64
            let after: Int64
            /// The conversation's change version now, and the one the device saw.
            let version: Int64
            let seenVersion: Int64
        }
        var entries: [Entry] = []
        var totalUnread: Int64 = 0
        for row in memberships {
            let id = try row.int64("conversation_id")
            let lastSeq = try row.int64("last_seq")
            let lastReadSeq = try row.int64("last_read_seq")
            totalUnread = totalUnread.addingSaturated(Unread.inConversation(lastSeq: lastSeq, lastReadSeq: lastReadSeq))
            entries.append(Entry(id: id, lastSeq: lastSeq, lastReadSeq: lastReadSeq, after: cursor.seqs[id] ?? 0,
                                 version: try row.int64("version"), seenVersion: cursor.versions[id] ?? 0))
        }
        // One query for every conversation with something new: a LATERAL page per conversation.
        let behind = entries.filter { $0.after < $0.lastSeq }
        var messagesByConversation: [Int64: [JSONValue]] = [:]
        if !behind.isEmpty {
            let rows = try await database.query("""
                SELECT \(Self.columns)
                FROM unnest($1::bigint[], $2::bigint[]) AS wanted(conversation_id, after_seq)
                CROSS JOIN LATERAL (
                    SELECT * FROM messages
                    WHERE conversation_id = wanted.conversation_id AND seq > wanted.after_seq
                    ORDER BY seq LIMIT $3
                ) m
                JOIN conversations c ON c.id = m.conversation_id
                ORDER BY m.conversation_id, m.seq
                """, [.string(PostgresArrayLiteral.integers(behind.map(\.id))), .string(PostgresArrayLiteral.integers(behind.map(\.after))),
                   .int(limit)])
            for row in rows {
                let message = try ChatMessageRecord(row: row)
                messagesByConversation[message.conversationID, default: []].append(.object(message.json))
            }
        }
        // Changes (issue 14) to the messages the device holds (seq up to its cursor) since the
        // version it saw, oldest change first: one LATERAL range of the changes index each.
        let changed = entries.filter { $0.after > 0 && $0.seenVersion < $0.version }
        var changesByConversation: [Int64: [JSONValue]] = [:]
        if !changed.isEmpty {
            let rows = try await database.query("""
                SELECT \(Self.columns)
                FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS wanted(conversation_id, upto_seq, seen_version)
                CROSS JOIN LATERAL (
                    SELECT * FROM messages
                    WHERE conversation_id = wanted.conversation_id AND version > 0 AND version > wanted.seen_version
                      AND seq <= wanted.upto_seq
                    ORDER BY version LIMIT $4
                ) m
                JOIN conversations c ON c.id = m.conversation_id
                ORDER BY m.conversation_id, m.version
                """, [.string(PostgresArrayLiteral.integers(changed.map(\.id))), .string(PostgresArrayLiteral.integers(changed.map(\.after))),
                   .string(PostgresArrayLiteral.integers(changed.map(\.seenVersion))), .int(limit)])
            for row in rows {
                let message = try ChatMessageRecord(row: row)
                changesByConversation[message.conversationID, default: []].append(.object(message.json))
            }
        }
        // The viewer's reactions, for every message of the answer in one query.
        let pages = messagesByConversation.map { (id: $0.key, changes: false, messages: $0.value) }
            + changesByConversation.map { (id: $0.key, changes: true, messages: $0.value) }
        var marked = try await ReactionMarks.mark(pages.flatMap(\.messages), viewer: userID, database: database)[...]
        for page in pages {
            let part = Array(marked.prefix(page.messages.count))
            marked = marked.dropFirst(page.messages.count)
            if page.changes { changesByConversation[page.id] = part } else { messagesByConversation[page.id] = part }
        }
        let conversations: [JSONValue] = entries.map { entry in
            let messages = messagesByConversation[entry.id] ?? []
            let changes = changesByConversation[entry.id] ?? []
            return [
                "conversationId": .int(entry.id),
                "lastSeq": .int(entry.lastSeq),
                "lastReadSeq": .int(entry.lastReadSeq),
                "unreadCount": .int(Unread.inConversation(lastSeq: entry.lastSeq, lastReadSeq: entry.lastReadSeq)),
                "messages": .array(messages),
                // The page is full and the conversation goes on beyond it.
                // (`after` is the client's, up to Int64.max; `after < lastSeq` holds for any entry with messages.)
                "hasMore": .bool(entry.after < entry.lastSeq && Int64(messages.count) < entry.lastSeq - entry.after && messages.count >= limit),
                "version": .int(entry.version),
                "changes": .array(changes),
                // A full page of changes: sync again with the last change's version for the rest.
                "changesHasMore": .bool(changes.count >= limit),
            ]
        }
        return ["conversations": .array(conversations), "totalUnread": .int(totalUnread)]
    }

    /// A page of the caller's messages matching `search` (issue 14), newest first, and whether
    /// older ones match too.
    func search(userID: Int64, _ search: MessageSearch) async throws(PostgresError) -> (messages: [JSONValue], hasMore: Bool) {
        let (sql, parameters) = search.query(userID: userID)
        let rows = try await database.query(sql, parameters)
        var messages: [JSONValue] = []
        for row in rows.prefix(search.limit) { messages.append(.object(try ChatMessageRecord(row: row).json)) }
        return (try await ReactionMarks.mark(messages, viewer: userID, database: database), rows.count > search.limit)
    }

    /// SQL for a timestamp as whole milliseconds since the epoch (truncated, as `ChatMessageRecord`).
    private nonisolated static func milliseconds(_ expression: String) -> String {
        "floor(extract(epoch FROM \(expression)) * 1000)::bigint"
    }

    private nonisolated static func timestamp(_ milliseconds: Int64?) -> JSONValue {
        milliseconds.map { .string(ISO8601.format(millisecondsSinceEpoch: $0)) } ?? .null
    }
}
