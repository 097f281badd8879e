import JSON
import Postgres

/// A room's row as gateways and workers read it (`columns`), and its JSON for its members.
package struct RoomRecord: Sendable, Equatable {
    /// The columns, of `conversations` aliased `c`.
    package static let columns = """
        c.id, c.name, c.description, c.is_private, c.invite_code, c.member_count, c.created_by, c.last_seq,
        (extract(epoch FROM c.created_at) * 1000)::bigint AS created_ms, (c.archived_at IS NOT NULL OR c.deleted_at IS NOT NULL) AS gone
        """

    package var id: Int64
    package var name: String
    package var description: String?
    package var isPrivate: Bool
    package var inviteCode: String?
    package var memberCount: Int
    package var createdBy: Int64?
    package var lastSeq: Int64
    package var createdAtMilliseconds: Int64
    package var isGone: Bool
    /// Admins (read only where a rule needs it).
    package var adminCount = 1

    package init(_ row: PostgresRow) throws(PostgresError) {
        id = try row.int64("id")
        name = try row.string("name")
        description = try row.optionalString("description")
        isPrivate = try row.bool("is_private")
        inviteCode = try row.optionalString("invite_code")
        memberCount = Int(try row.int64("member_count"))
        createdBy = try row.optionalInt64("created_by")
        lastSeq = try row.int64("last_seq")
        createdAtMilliseconds = try row.int64("created_ms")
        isGone = try row.bool("gone")
    }

    package func facts(memberLimit: Int) -> RoomFacts {
        RoomFacts(isPrivate: isPrivate, isGone: isGone, memberCount: memberCount, adminCount: adminCount, memberLimit: memberLimit)
    }

    /// `{id, name, description, isPrivate, memberCount, createdBy, createdAt, lastSeq, role?, inviteCode?}`:
    /// the invite code only for an admin.
    package func json(role: RoomRole?) -> JSONValue {
        var object: JSONObject = [
            "id": .int(id), "name": .string(name), "description": description.map { .string($0) } ?? .null,
            "isPrivate": .bool(isPrivate), "memberCount": .int(Int64(memberCount)), "createdBy": createdBy.map { .int($0) } ?? .null,
            "createdAt": .string(ISO8601.format(millisecondsSinceEpoch: createdAtMilliseconds)), "lastSeq": .int(lastSeq),
        ]
        if let role {
            object["role"] = .string(role.rawValue)
            if role == .admin { object["inviteCode"] = inviteCode.map { .string($0) } ?? .null }
        }
        return .object(object)
    }
}
