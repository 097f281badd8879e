import Shared

/// A user as other users see them in presence and the user directory: never the email.
struct PublicUser: Sendable, Equatable {
    let id: Int64
    let username: String
    let displayName: String
    let lastSeenMilliseconds: Int64?
    var avatarURL: String?
    var statusText: String?

    static let columns = """
        u.id, u.username, u.display_name, (extract(epoch FROM u.last_seen_at) * 1000)::bigint AS last_seen_ms, u.avatar_url, u.status_text
        """

    init(id: Int64, username: String, displayName: String, lastSeenMilliseconds: Int64?, avatarURL: String? = nil, statusText: String? = nil) {
        self.id = id
        self.username = username
        self.displayName = displayName
        self.lastSeenMilliseconds = lastSeenMilliseconds
        self.avatarURL = avatarURL
        self.statusText = statusText
    }

    init(row: PostgresRow) throws(PostgresError) {
        id = try row.int64("id")
        username = try row.string("username")
        displayName = try row.string("display_name")
        lastSeenMilliseconds = try row.optionalInt64("last_seen_ms")
        avatarURL = try row.optionalString("avatar_url")
        statusText = try row.optionalString("status_text")
    }

    /// `{id, username, displayName, isOnline, lastSeen}`. Presence is shared with contacts only:
    /// for anyone else (`isOnline` nil) both `isOnline` and `lastSeen` are null.
    func json(isOnline: Bool?) -> JSONValue {
        var object: JSONObject = [
            "id": .int(id),
            "username": .string(username),
            "displayName": .string(displayName),
            "isOnline": isOnline.map { .bool($0) } ?? .null,
            "lastSeen": .null,
            "avatarUrl": avatarURL.map { .string($0) } ?? .null,
            "statusText": statusText.map { .string($0) } ?? .null,
        ]
        if isOnline != nil {
            object["lastSeen"] = lastSeenMilliseconds.map { .string(ISO8601.format(millisecondsSinceEpoch: $0)) } ?? .null
        }
        return .object(object)
    }
}

/// Who a user's contacts are (everyone sharing a direct conversation with them; room members
/// follow each other's presence by subscription instead, issue 13, unless `PRESENCE_ROOM_CONTACTS`
/// makes them contacts too), user lookups and the username search: the Postgres side of presence.
@LoopActor
final class ContactDirectory {
    private let database: PostgresPool

    /// Most contacts one announcement or online list covers; beyond it the most recently active
    /// conversations' members win. Bounds the work a single connect can cause.
    static let maxContacts = 5_000

    /// Which conversations make contacts (a fixed SQL condition on `c`): direct ones, or with
    /// `PRESENCE_ROOM_CONTACTS` every live one, rooms included.
    private let contactConversations: StaticString

    init(database: PostgresPool, roomMembersAreContacts: Bool = false) {
        self.database = database
        contactConversations = roomMembersAreContacts ? Self.liveConversations : "c.kind = 'direct'"
    }

    private static let liveConversations: StaticString = "c.archived_at IS NULL AND c.deleted_at IS NULL"

    /// The user and their contacts; nil when the user does not exist.
    func contacts(of userID: Int64) async throws -> (user: PublicUser, contacts: [PublicUser])? {
        let rows = try await database.query("""
            SELECT \(PublicUser.columns), u.id = $1 AS is_self FROM users u WHERE u.id = $1
            UNION ALL
            (SELECT \(PublicUser.columns), false FROM users u WHERE u.id IN (
                SELECT recent_contacts.user_id FROM (
                    SELECT m2.user_id, max(c.last_message_at) AS recent
                    FROM conversation_members m1
                    JOIN conversation_members m2 ON m2.conversation_id = m1.conversation_id AND m2.user_id <> m1.user_id
                    JOIN conversations c ON c.id = m1.conversation_id AND \(contactConversations)
                    WHERE m1.user_id = $1
                    GROUP BY m2.user_id
                    ORDER BY recent DESC NULLS LAST
                    LIMIT \(Self.maxContacts)) recent_contacts)
             ORDER BY u.id)
            """, [.int64(userID)])
        var user: PublicUser?
        var contacts: [PublicUser] = []
        for row in rows {
            let record = try PublicUser(row: row)
            if try row.bool("is_self") { user = record } else { contacts.append(record) }
        }
        return user.map { ($0, contacts) }
    }

    /// Sets `last_seen_at` of users who went offline (never moving it back) and returns each with
    /// their contacts' ids, for the `userOffline` events.
    func recordLastSeen(_ entries: [(userID: Int64, lastSeenMilliseconds: Int64)]) async throws -> [(user: PublicUser, contacts: [Int64])] {
        guard !entries.isEmpty else { return [] }
        let rows = try await database.query("""
            WITH seen AS (
                SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS v(id, ms)
            ), updated AS (
                UPDATE users u
                SET last_seen_at = greatest(coalesce(u.last_seen_at, '-infinity'::timestamptz),
                                            timestamptz 'epoch' + seen.ms * interval '1 millisecond')
                FROM seen WHERE u.id = seen.id
                RETURNING \(PublicUser.columns)
            )
            SELECT DISTINCT u.id, u.username, u.display_name, u.last_seen_ms, u.avatar_url, u.status_text, m2.user_id AS contact
            FROM updated u
            LEFT JOIN (conversation_members m1 JOIN conversations c ON c.id = m1.conversation_id AND \(contactConversations))
                ON m1.user_id = u.id
            LEFT JOIN conversation_members m2 ON m2.conversation_id = m1.conversation_id AND m2.user_id <> u.id
            """, [.string(PostgresArrayLiteral.integers(entries.map(\.userID))),
                  .string(PostgresArrayLiteral.integers(entries.map(\.lastSeenMilliseconds)))])
        var users: [Int64: PublicUser] = [:]
        var contacts: [Int64: [Int64]] = [:]
        for row in rows {
            let user = try PublicUser(row: row)
            users[user.id] = user
            if let contact = try row.optionalInt64("contact") { contacts[user.id, default: []].append(contact) }
        }
        return users.keys.sorted().compactMap { id in users[id].map { ($0, contacts[id] ?? []) } }
    }

    /// Which of `userIDs` share a conversation with `callerID` (the caller counts as their own
    /// contact): the users whose presence the caller may see.
    func contacts(of callerID: Int64, among userIDs: [Int64]) async throws -> Set<Int64> {
        try await sharing(with: callerID, among: userIDs, conversations: contactConversations)
    }

    /// Which of `userIDs` share a conversation or a room with `callerID` (the caller included):
    /// whose presence the caller may subscribe to.
    func peers(of callerID: Int64, among userIDs: [Int64]) async throws -> Set<Int64> {
        try await sharing(with: callerID, among: userIDs, conversations: Self.liveConversations)
    }

    /// Which of `userIDs` are members of a conversation `conversations` (a fixed SQL condition on
    /// `c`, never outside input) that `callerID` is a member of too; the caller counts as sharing.
    private func sharing(with callerID: Int64, among userIDs: [Int64], conversations condition: StaticString) async throws -> Set<Int64> {
        guard !userIDs.isEmpty else { return [] }
        let rows = try await database.query("""
            SELECT DISTINCT m2.user_id FROM conversation_members m1
            JOIN conversations c ON c.id = m1.conversation_id AND \(condition)
            JOIN conversation_members m2 ON m2.conversation_id = m1.conversation_id
            WHERE m1.user_id = $1 AND m2.user_id = ANY($2::bigint[])
            """, [.int64(callerID), .string(PostgresArrayLiteral.integers(userIDs))])
        var sharing = Set(try rows.map { try $0.int64("user_id") })
        if userIDs.contains(callerID) { sharing.insert(callerID) }
        return sharing
    }

    /// One user by username, in any case (deleted accounts are not found by their old name: it
    /// was freed).
    func user(named name: String) async throws -> PublicUser? {
        let rows = try await database.query("SELECT \(PublicUser.columns) FROM users u WHERE lower(u.username) = lower($1)", [.string(name)])
        return try rows.first.map { try PublicUser(row: $0) }
    }

    /// One user by id.
    func user(_ userID: Int64) async throws -> PublicUser? {
        let rows = try await database.query("SELECT \(PublicUser.columns) FROM users u WHERE u.id = $1", [.int64(userID)])
        return try rows.first.map { try PublicUser(row: $0) }
    }

    /// Users whose lowercased username starts with `prefix` (any when empty), after `cursor` (a
    /// lowercased username), in byte order, the caller excluded; `limit + 1` rows tell whether
    /// there is a next page.
    func search(prefix: String, after cursor: String?, limit: Int, excluding callerID: Int64) async throws -> [PublicUser] {
        // The range [prefix, prefix + DEL) in byte order holds exactly the names starting with
        // prefix (usernames are ASCII); the expression matches users_username_search_idx.
        let lower = max(prefix, cursor ?? "")
        let query: PostgresQuery = """
            SELECT \(unescaped: PublicUser.columns) FROM users u
            WHERE lower(u.username) COLLATE "C" >= \(lower) AND lower(u.username) COLLATE "C" < \(prefix + "\u{7F}")
              AND (\(cursor)::text IS NULL OR lower(u.username) COLLATE "C" > \(cursor)) AND u.id <> \(callerID)
            ORDER BY lower(u.username) COLLATE "C"
            LIMIT \(limit + 1)
            """
        let rows = try await database.query(query)
        return try rows.map { try PublicUser(row: $0) }
    }
}
