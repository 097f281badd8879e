import Shared

/// The read side of rooms, straight from Postgres (parameterised SQL only): one room, my rooms,
/// the public directory, an invite preview, members, and the facts a gateway checks `RoomRules`
/// against before it appends a room command (the worker checks again under the room's lock).
@LoopActor
final class RoomReader {
    private let database: PostgresPool

    init(database: PostgresPool) {
        self.database = database
    }

    /// A room and `userID`'s role in it (nil: not a member); nil when there is no such room.
    func room(_ roomID: Int64, for userID: Int64) async throws(PostgresError) -> (room: RoomRecord, role: RoomRole?)? {
        let rows = try await database.query("""
            SELECT \(RoomRecord.columns), me.role AS my_role
            FROM conversations c
            LEFT JOIN conversation_members me ON me.conversation_id = c.id AND me.user_id = $2
            WHERE c.id = $1 AND c.kind = 'room'
            """, [.int64(roomID), .int64(userID)])
        guard let row = rows.first else { return nil }
        return (try RoomRecord(row), try row.optionalString("my_role").flatMap(RoomRole.init(rawValue:)))
    }

    /// The room whose current invite code is `code`, if any (for a join by code and the invite
    /// link's preview).
    func room(inviteCode code: String) async throws(PostgresError) -> RoomRecord? {
        let rows = try await database.query(
            "SELECT \(RoomRecord.columns) FROM conversations c WHERE c.invite_code = $1 AND c.kind = 'room'", [.string(code)])
        return try rows.first.map { row throws(PostgresError) in try RoomRecord(row) }
    }

    /// `userID`'s rooms, most recent activity first, each with `role`, `unreadCount` and
    /// `lastMessage`; `after` continues a previous page (its `nextCursor`).
    func rooms(of userID: Int64, limit: Int, after cursor: ActivityCursor?) async throws(PostgresError) -> (rooms: [JSONValue], next: ActivityCursor?) {
        let rows = try await database.query("""
            SELECT \(RoomRecord.columns), me.role AS my_role, c.last_seq - me.last_read_seq AS unread, c.last_message_id,
                   (extract(epoch FROM coalesce(c.last_message_at, c.created_at)) * 1000000)::bigint AS activity_us
            FROM conversation_members me
            JOIN conversations c ON c.id = me.conversation_id AND c.kind = 'room'
                AND c.archived_at IS NULL AND c.deleted_at IS NULL
            WHERE me.user_id = $1
              AND ($2::bigint IS NULL OR (coalesce(c.last_message_at, c.created_at), c.id)
                   < (timestamptz 'epoch' + $2 * interval '1 microsecond', $3))
            ORDER BY coalesce(c.last_message_at, c.created_at) DESC, c.id DESC
            LIMIT \(limit + 1)
            """, [.int64(userID), cursor.map { .int64($0.activityMicroseconds) }, .int64(cursor?.conversationID ?? 0)])
        var lastMessageIDs: [Int64] = []
        for row in rows.prefix(limit) { if let id = try row.optionalInt64("last_message_id") { lastMessageIDs.append(id) } }
        let lastMessages = try await ConversationList.messages(lastMessageIDs, database: database)
        var rooms: [JSONValue] = []
        var next: ActivityCursor?
        for (index, row) in rows.enumerated() where index < limit {
            let room = try RoomRecord(row)
            guard case .object(var json) = room.json(role: try row.optionalString("my_role").flatMap(RoomRole.init(rawValue:))) else { continue }
            json["unreadCount"] = .int(max(0, try row.int64("unread")))
            json["lastMessage"] = try row.optionalInt64("last_message_id").flatMap { lastMessages[$0] } ?? .null
            rooms.append(.object(json))
            if index == limit - 1, rows.count > limit {
                next = ActivityCursor(activityMicroseconds: try row.int64("activity_us"), conversationID: room.id)
            }
        }
        return (rooms, next)
    }

    /// Public rooms whose name starts with `prefix` (any when empty), by name; `after` continues a
    /// previous page (the last name and id).
    func publicRooms(prefix: String, limit: Int, after cursor: (name: String, id: Int64)?) async throws(PostgresError)
        -> (rooms: [JSONValue], next: (name: String, id: Int64)?) {
        let rows = try await database.query("""
            SELECT \(RoomRecord.columns), lower(c.name) AS sort_name FROM conversations c
            WHERE c.kind = 'room' AND NOT c.is_private AND c.archived_at IS NULL AND c.deleted_at IS NULL
              AND (lower(c.name) COLLATE "C") >= ($1 COLLATE "C") AND (lower(c.name) COLLATE "C") < ($2 COLLATE "C")
              AND ($3::text IS NULL OR ((lower(c.name) COLLATE "C"), c.id) > (($3::text COLLATE "C"), $4))
            ORDER BY lower(c.name) COLLATE "C", c.id
            LIMIT \(limit + 1)
            """, [.string(prefix.lowercased()), .string(Self.prefixEnd(prefix.lowercased())), cursor.map { .string($0.name) },
                  .int64(cursor?.id ?? 0)])
        var rooms: [JSONValue] = []
        var next: (name: String, id: Int64)?
        for (index, row) in rows.enumerated() where index < limit {
            let room = try RoomRecord(row)
            rooms.append(room.json(role: nil))
            if index == limit - 1, rows.count > limit { next = (try row.string("sort_name"), room.id) }
        }
        return (rooms, next)
    }

    /// A room's members, oldest first, `{userId, username, displayName, role, joinedAt}`.
    func members(of roomID: Int64, limit: Int, afterUserID: Int64?) async throws(PostgresError) -> [JSONValue] {
        let rows = try await database.query("""
            SELECT u.id, u.username, u.display_name, me.role, (extract(epoch FROM me.joined_at) * 1000)::bigint AS joined_ms
            FROM conversation_members me JOIN users u ON u.id = me.user_id
            WHERE me.conversation_id = $1 AND me.user_id > $2
            ORDER BY me.user_id LIMIT \(limit)
            """, [.int64(roomID), .int64(afterUserID ?? 0)])
        return try rows.map { row throws(PostgresError) in
            [
                "userId": .int(try row.int64("id")), "username": .string(try row.string("username")),
                "displayName": .string(try row.string("display_name")), "role": .string(try row.string("role")),
                "joinedAt": .string(ISO8601.format(millisecondsSinceEpoch: try row.int64("joined_ms"))),
            ]
        }
    }

    /// A page of a room's messages (the caller was checked to be a member), in seq order as
    /// `page` asks, with `hasMore` when the range holds more.
    func messages(of roomID: Int64, page: HistoryPage, viewer: Int64) async throws(PostgresError) -> (messages: [JSONValue], hasMore: Bool) {
        let rows = try await database.query(page.query(conversationID: roomID))
        var messages: [JSONValue] = []
        for row in rows.prefix(page.limit) { messages.append(.object(try ChatMessageRecord(row: row).json)) }
        if !page.fromOldest { messages.reverse() }
        return (try await ReactionMarks.mark(messages, viewer: viewer, database: database), rows.count > page.limit)
    }

    /// How many of a room's members other than its sender received (`delivered`) and read a
    /// message, from the members' pointers; nil when the room has no such message.
    func receipts(of messageID: Int64, in roomID: Int64) async throws(PostgresError) -> JSONValue? {
        let rows = try await database.query("""
            SELECT m.seq, m.sender_id,
                   count(cm.user_id) FILTER (WHERE cm.user_id <> m.sender_id) AS others,
                   count(cm.user_id) FILTER (WHERE cm.user_id <> m.sender_id AND cm.last_delivered_seq >= m.seq) AS delivered,
                   count(cm.user_id) FILTER (WHERE cm.user_id <> m.sender_id AND cm.last_read_seq >= m.seq) AS read
            FROM messages m LEFT JOIN conversation_members cm ON cm.conversation_id = m.conversation_id
            WHERE m.id = $1 AND m.conversation_id = $2
            GROUP BY m.seq, m.sender_id
            """, [.int64(messageID), .int64(roomID)])
        guard let row = rows.first else { return nil }
        return ["messageId": .int(messageID), "roomId": .int(roomID), "seq": .int(try row.int64("seq")),
                "members": .int(try row.int64("others")), "delivered": .int(try row.int64("delivered")), "read": .int(try row.int64("read"))]
    }

    /// The rooms (not archived or deleted) of each of `users`: the room channels their gateway subscribes.
    func roomIDs(of users: [Int64]) async throws(PostgresError) -> [Int64: [Int64]] {
        guard !users.isEmpty else { return [:] }
        let rows = try await database.query("""
            SELECT me.user_id, me.conversation_id FROM conversation_members me
            JOIN conversations c ON c.id = me.conversation_id AND c.kind = 'room' AND c.archived_at IS NULL AND c.deleted_at IS NULL
            WHERE me.user_id = ANY($1::bigint[])
            """, [.string(PostgresArrayLiteral.integers(users))])
        var rooms: [Int64: [Int64]] = [:]
        for row in rows { rooms[try row.int64("user_id"), default: []].append(try row.int64("conversation_id")) }
        return rooms
    }

    /// Every member of a room, by user id.
    func memberIDs(of roomID: Int64) async throws(PostgresError) -> [Int64] {
        try await database.query("SELECT user_id FROM conversation_members WHERE conversation_id = $1 ORDER BY user_id", [.int64(roomID)])
            .map { row throws(PostgresError) in try row.int64("user_id") }
    }

    /// `{userId, username, displayName}` of these users, by id.
    func people(_ ids: [Int64]) async throws(PostgresError) -> [JSONValue] {
        guard !ids.isEmpty else { return [] }
        return try await database.query("""
            SELECT id, username, display_name FROM users WHERE id = ANY($1::bigint[]) ORDER BY id
            """, [.string(PostgresArrayLiteral.integers(ids))]).map { row throws(PostgresError) in
            ["userId": .int(try row.int64("id")), "username": .string(try row.string("username")),
             "displayName": .string(try row.string("display_name"))]
        }
    }

    /// The room's admins (the one rule that needs them: the only admin may not step down).
    func adminCount(of roomID: Int64) async throws(PostgresError) -> Int {
        Int(try await database.query("SELECT count(*) AS n FROM conversation_members WHERE conversation_id = $1 AND role = 'admin'",
                                     [.int64(roomID)]).int64("n"))
    }

    /// The smallest string greater than every string starting with `prefix` (byte order): the
    /// prefix with its last byte raised, or the maximum when there is no prefix.
    nonisolated static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0x7F {
                bytes[bytes.count - 1] = last + 1
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.removeLast()
        }
        return "\u{10FFFF}"
    }
}
