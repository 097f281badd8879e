import Shared

/// A user as the API shows it (never the password hash).
struct UserRecord: Sendable, Equatable {
    let id: Int64
    let username: String
    let email: String
    let displayName: String
    let createdAtMilliseconds: Int64
    let lastSeenAtMilliseconds: Int64?
    let avatarURL: String?
    let statusText: String?

    /// Columns every user query selects, in the order `init(row:)` reads them.
    static let columns = """
        id, username, email, display_name, avatar_url, status_text, \
        (extract(epoch FROM created_at) * 1000)::bigint AS created_ms, \
        (extract(epoch FROM last_seen_at) * 1000)::bigint AS last_seen_ms
        """

    init(row: PostgresRow) throws(PostgresError) {
        id = try row.int64("id")
        username = try row.string("username")
        email = try row.string("email")
        displayName = try row.string("display_name")
        createdAtMilliseconds = try row.int64("created_ms")
        lastSeenAtMilliseconds = try row.optionalInt64("last_seen_ms")
        avatarURL = try row.optionalString("avatar_url")
        statusText = try row.optionalString("status_text")
    }

    var json: JSONValue {
        [
            "id": .int(id),
            "username": .string(username),
            "email": .string(email),
            "displayName": .string(displayName),
            "avatarUrl": avatarURL.map { .string($0) } ?? .null,
            "statusText": statusText.map { .string($0) } ?? .null,
            "createdAt": .string(ISO8601.format(millisecondsSinceEpoch: createdAtMilliseconds)),
            "lastSeen": lastSeenAtMilliseconds.map { .string(ISO8601.format(millisecondsSinceEpoch: $0)) } ?? .null,
        ]
    }
}
