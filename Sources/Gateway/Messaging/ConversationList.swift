import Shared

/// Where a page of a list by activity (`GET /api/conversations`, `GET /api/rooms`) ended: the last
/// entry's activity time and conversation id, as `<microseconds>_<id>`. Microseconds, the
/// database's own precision: a cursor truncated to milliseconds would let the entry it names
/// reappear on the next page (found by the conversation list's e2e test).
struct ActivityCursor: Sendable, Equatable {
    var activityMicroseconds: Int64
    var conversationID: Int64

    init(activityMicroseconds: Int64, conversationID: Int64) {
        self.activityMicroseconds = activityMicroseconds
        self.conversationID = conversationID
    }

    /// Parses `<microseconds>_<id>`; a malformed cursor is a 422 on `cursor`.
    init(text: String) throws(APIError) {
        let parts = text.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count <= 18, parts[1].utf8.count <= 19,
              let microseconds = Int64(parts[0]), microseconds >= 0, let id = Int64(parts[1]), id > 0 else {
            throw APIError.invalidField("cursor", "field 'cursor' must be a cursor returned by the previous page")
        }
        activityMicroseconds = microseconds
        conversationID = id
    }

    var text: String { "\(activityMicroseconds)_\(conversationID)" }
}

/// The caller's conversations, direct and rooms alike (issue 14): most recent activity first,
/// each with its last message (as every read path shows it: a deleted one without its content),
/// unread count, read pointer and change version, and who it is with: the partner of a direct
/// conversation (never their email), or the room's summary and the caller's role.
@LoopActor
final class ConversationList {
    private let database: PostgresPool
    private let presence: (any PresenceLookup)?

    /// Most conversations one page or one unread summary covers.
    static let maxPage = 100
    static let maxUnreadConversations = 1000

    init(database: PostgresPool, presence: (any PresenceLookup)?) {
        self.database = database
        self.presence = presence
    }

    /// One page: `{conversations, nextCursor, totalUnread}`.
    func page(userID: Int64, limit: Int, after cursor: ActivityCursor?) async throws(PostgresError) -> JSONValue {
        let rows = try await database.query("""
            SELECT \(RoomRecord.columns), c.kind, c.version, c.last_message_id, me.last_read_seq, me.role AS my_role,
                   (extract(epoch FROM coalesce(c.last_message_at, c.created_at)) * 1000000)::bigint AS activity_us,
                   p.id AS partner_id, p.username AS partner_username, p.display_name AS partner_display_name,
                   floor(extract(epoch FROM p.last_seen_at) * 1000)::bigint AS partner_seen_ms
            FROM conversation_members me
            JOIN conversations c ON c.id = me.conversation_id AND c.archived_at IS NULL AND c.deleted_at IS NULL
            LEFT JOIN conversation_members pm ON c.kind = 'direct' AND pm.conversation_id = c.id AND pm.user_id <> me.user_id
            LEFT JOIN users p ON p.id = pm.user_id
            WHERE me.user_id = $1
              AND ($2::bigint IS NULL OR (coalesce(c.last_message_at, c.created_at), c.id)
                   < (timestamptz 'epoch' + $2 * interval '1 microsecond', $3))
            ORDER BY coalesce(c.last_message_at, c.created_at) DESC, c.id DESC
            LIMIT $4
            """, [.int64(userID), cursor.map { .int64($0.activityMicroseconds) }, .int64(cursor?.conversationID ?? 0), .int(limit + 1)])
        let shown = rows.prefix(limit)
        var lastMessageIDs: [Int64] = []
        var partners: [Int64] = []
        for row in shown {
            if let id = try row.optionalInt64("last_message_id") { lastMessageIDs.append(id) }
            if let partner = try row.optionalInt64("partner_id") { partners.append(partner) }
        }
        let lastMessages = try await messages(lastMessageIDs)
        let online = await presence?.onlineUsers(among: partners) ?? []
        var conversations: [JSONValue] = []
        var next: ActivityCursor?
        for (index, row) in shown.enumerated() {
            let id = try row.int64("id")
            let lastSeq = try row.int64("last_seq")
            let lastReadSeq = try row.int64("last_read_seq")
            var entry: JSONObject = [
                "conversationId": .int(id),
                "kind": .string(try row.string("kind")),
                "partner": .null,
                "room": .null,
                "lastMessage": try row.optionalInt64("last_message_id").flatMap { lastMessages[$0] } ?? .null,
                "unreadCount": .int(Unread.inConversation(lastSeq: lastSeq, lastReadSeq: lastReadSeq)),
                "lastSeq": .int(lastSeq),
                "lastReadSeq": .int(lastReadSeq),
                "version": .int(try row.int64("version")),
                "activityAt": .string(ISO8601.format(millisecondsSinceEpoch: try row.int64("activity_us") / 1000)),
            ]
            if let partner = try row.optionalInt64("partner_id") {
                entry["partner"] = [
                    "id": .int(partner), "username": .string(try row.string("partner_username")),
                    "displayName": .string(try row.string("partner_display_name")), "isOnline": .bool(online.contains(partner)),
                    "lastSeen": try row.optionalInt64("partner_seen_ms").map { .string(ISO8601.format(millisecondsSinceEpoch: $0)) } ?? .null,
                ]
            } else if try row.string("kind") == "room" {
                entry["room"] = try RoomRecord(row).json(role: try row.optionalString("my_role").flatMap(RoomRole.init(rawValue:)))
            }
            conversations.append(.object(entry))
            if index == limit - 1, rows.count > limit {
                next = ActivityCursor(activityMicroseconds: try row.int64("activity_us"), conversationID: id)
            }
        }
        return ["conversations": .array(conversations), "nextCursor": next.map { .string($0.text) } ?? .null,
                "totalUnread": .int(try await totalUnread(userID: userID))]
    }

    /// `{totalUnread, conversations: [{conversationId, kind, unreadCount}]}`: the conversations
    /// with unread messages (most recent activity first, at most `maxUnreadConversations`).
    func unread(userID: Int64) async throws(PostgresError) -> JSONValue {
        let rows = try await database.query("""
            SELECT c.id, c.kind, c.last_seq - me.last_read_seq AS unread
            FROM conversation_members me
            JOIN conversations c ON c.id = me.conversation_id AND c.archived_at IS NULL AND c.deleted_at IS NULL
            WHERE me.user_id = $1 AND c.last_seq > me.last_read_seq
            ORDER BY coalesce(c.last_message_at, c.created_at) DESC, c.id DESC
            LIMIT $2
            """, [.int64(userID), .int(Self.maxUnreadConversations + 1)])
        var list: [JSONValue] = []
        for row in rows.prefix(Self.maxUnreadConversations) {
            list.append(["conversationId": .int(try row.int64("id")), "kind": .string(try row.string("kind")),
                         "unreadCount": .int(try row.int64("unread"))])
        }
        return ["totalUnread": .int(try await totalUnread(userID: userID)), "conversations": .array(list),
                "hasMore": .bool(rows.count > Self.maxUnreadConversations)]
    }

    private func totalUnread(userID: Int64) async throws(PostgresError) -> Int64 {
        let rows = try await database.query("""
            SELECT coalesce(sum(greatest(c.last_seq - me.last_read_seq, 0)), 0)::bigint AS unread
            FROM conversation_members me
            JOIN conversations c ON c.id = me.conversation_id AND c.archived_at IS NULL AND c.deleted_at IS NULL
            WHERE me.user_id = $1
            """, [.int64(userID)])
        return try rows.first?.int64("unread") ?? 0
    }

    private func messages(_ ids: [Int64]) async throws(PostgresError) -> [Int64: JSONValue] {
        try await Self.messages(ids, database: database)
    }

    /// Messages by id, as every read path shows them (the last messages of a list page).
    static func messages(_ ids: [Int64], database: PostgresPool) async throws(PostgresError) -> [Int64: JSONValue] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await database.query("SELECT \(ChatMessageRecord.columns) FROM \(ChatMessageRecord.tables) WHERE m.id = ANY($1::bigint[])",
                                            [.string(PostgresArrayLiteral.integers(ids))])
        var messages: [Int64: JSONValue] = [:]
        for row in rows {
            let message = try ChatMessageRecord(row: row)
            messages[message.id] = .object(message.json)
        }
        return messages
    }
}
