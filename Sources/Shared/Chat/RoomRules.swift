import API
import HTTP
import Security
import Support

// Group conversations (rooms, issue 13): the pure rules every room operation is checked against,
// by the gateway before it appends a command and by the worker again inside the transaction.

extension ErrorCode {
    /// No such room, or a private room the caller is not a member of (its existence is not revealed).
    package static let roomNotFound = ErrorCode("room_not_found", .notFound, "no such room")
    /// A public room the caller has not joined: join it first.
    package static let notAMember = ErrorCode("not_a_member", .forbidden, "you are not a member of this room")
    /// Only the room's admins may do this.
    package static let adminRequired = ErrorCode("admin_required", .forbidden, "only an admin of this room can do this")
    /// The caller (or the user to add) is a member already.
    package static let alreadyAMember = ErrorCode("already_a_member", .conflict, "already a member of this room")
    /// The user to remove or whose role to change is not a member.
    package static let memberNotFound = ErrorCode("member_not_found", .notFound, "no such member in this room")
    /// The room has as many members as it may have.
    package static let roomFull = ErrorCode("room_full", .conflict, "this room has reached its member limit")
    /// The invite code is wrong, rotated or revoked.
    package static let inviteInvalid = ErrorCode("invite_invalid", .notFound, "this invite code is not valid")
    /// The only admin cannot step down while other members remain.
    package static let lastAdmin = ErrorCode("last_admin", .conflict, "a room needs an admin: make another member admin first")
    /// The user is in as many rooms as a user may be (`ROOMS_PER_USER`).
    package static let tooManyRooms = ErrorCode("too_many_rooms", .conflict, "you are in as many rooms as a user may be: leave one first")
}

/// Room limits when not configured.
package enum RoomDefaults {
    /// Most members of one room (`ROOM_MAX_MEMBERS`).
    package static let memberLimit = 10_000
    /// Most rooms one user may be a member of (`ROOMS_PER_USER`).
    package static let roomsPerUser = 1_000
}

/// A member's role in a room.
package enum RoomRole: String, Sendable, CaseIterable, Comparable {
    case admin
    case member

    package static func < (lhs: RoomRole, rhs: RoomRole) -> Bool { lhs == .admin && rhs == .member }
}

/// What the rules need to know about a room.
package struct RoomFacts: Sendable, Equatable {
    /// Private rooms are joined by invite code only and hidden from non-members.
    package var isPrivate: Bool
    /// Deleted by an admin, or archived when its last member left: gone for everyone.
    package var isGone: Bool
    package var memberCount: Int
    package var adminCount: Int
    /// Most members the room may have (`ROOM_MAX_MEMBERS`).
    package var memberLimit: Int

    package init(isPrivate: Bool, isGone: Bool = false, memberCount: Int, adminCount: Int, memberLimit: Int) {
        self.isPrivate = isPrivate
        self.isGone = isGone
        self.memberCount = memberCount
        self.adminCount = adminCount
        self.memberLimit = memberLimit
    }
}

/// Something a user asks to do in a room.
package enum RoomRequest: Sendable, Equatable {
    /// See the room's details and members.
    case view
    /// Read its history, sync it, mark it read.
    case read
    /// Send a message, type.
    case send
    /// Join a public room by its id.
    case join
    /// Join (any room) with an invite code; `codeMatches`: the code is the room's current one.
    case joinByInvite(codeMatches: Bool)
    case leave
    /// Add a user (`targetRole`: the user's role now, nil when not a member).
    case addMember(targetRole: RoomRole?)
    /// Remove a member (`isSelf`: the actor names itself, which is `leave`).
    case removeMember(targetRole: RoomRole?, isSelf: Bool)
    /// Change a member's role (`isSelf`: an admin changing its own role).
    case changeRole(targetRole: RoomRole?, to: RoomRole, isSelf: Bool)
    /// Change name, description or privacy.
    case update
    /// Issue a new invite code (the old one stops working), or revoke it.
    case rotateInvite
    case delete
}

/// Who may do what in a room. Pure: the gateway checks before it appends a command, the worker
/// checks again under the room's lock, with the same rules.
package enum RoomRules {
    /// Nil when `actor` (its role in the room, nil when not a member) may do `request`.
    package static func refusal(of request: RoomRequest, actor: RoomRole?, room: RoomFacts) -> ErrorCode? {
        if room.isGone { return .roomNotFound }
        // A private room does not exist for non-members, except to the holder of its invite code.
        if actor == nil, room.isPrivate {
            if case .joinByInvite(true) = request { return room.memberCount >= room.memberLimit ? .roomFull : nil }
            return request == .joinByInvite(codeMatches: false) ? .inviteInvalid : .roomNotFound
        }
        switch request {
        case .view:
            return nil
        case .read, .send, .leave:
            return actor == nil ? .notAMember : nil
        case .join, .joinByInvite:
            if actor != nil { return .alreadyAMember }
            if case .joinByInvite(false) = request { return .inviteInvalid }
            return room.memberCount >= room.memberLimit ? .roomFull : nil
        case .addMember(let target):
            guard let actor else { return .notAMember }
            guard actor == .admin else { return .adminRequired }
            if target != nil { return .alreadyAMember }
            return room.memberCount >= room.memberLimit ? .roomFull : nil
        case .removeMember(let target, let isSelf):
            guard let actor else { return .notAMember }
            if isSelf { return nil }  // the same as leaving
            guard actor == .admin else { return .adminRequired }
            return target == nil ? .memberNotFound : nil
        case .changeRole(let target, let role, let isSelf):
            guard let actor else { return .notAMember }
            guard actor == .admin else { return .adminRequired }
            guard let target else { return .memberNotFound }
            if isSelf, target == .admin, role == .member, room.adminCount <= 1, room.memberCount > 1 { return .lastAdmin }
            return nil
        case .update, .rotateInvite, .delete:
            guard let actor else { return .notAMember }
            return actor == .admin ? nil : .adminRequired
        }
    }
}

/// A member as leave planning needs it.
package struct RoomMember: Sendable, Equatable {
    package var userID: Int64
    package var role: RoomRole
    /// When the user joined (milliseconds since the epoch): the oldest member is promoted first.
    package var joinedAtMilliseconds: Int64

    package init(userID: Int64, role: RoomRole, joinedAtMilliseconds: Int64) {
        self.userID = userID
        self.role = role
        self.joinedAtMilliseconds = joinedAtMilliseconds
    }
}

/// What happens when a member leaves or is removed.
package enum RoomDeparture: Sendable, Equatable {
    /// The member goes; nothing else changes.
    case leaves
    /// The member was the last admin: the oldest remaining member becomes admin.
    case leavesPromoting(Int64)
    /// The member was the last one: the room is archived (its messages kept, nobody can join it,
    /// its invite code revoked).
    case leavesArchiving

    /// The departure of a member with `role`, given how many admins stay (`otherAdmins`) and the
    /// oldest remaining member (earliest join, then lowest id; nil when nobody stays). The oldest
    /// is promoted when the last admin goes, so a room always has an admin while it has members.
    /// (What the store reads under the room's lock: two indexed queries, whatever the room's size.)
    package static func plan(role: RoomRole, otherAdmins: Int, oldestOther: Int64?) -> RoomDeparture {
        guard let oldestOther else { return .leavesArchiving }
        return role == .admin && otherAdmins == 0 ? .leavesPromoting(oldestOther) : .leaves
    }

    /// `plan` for a room whose every member is known (`members` include the one leaving); nil
    /// when `userID` is not a member.
    package static func plan(_ userID: Int64, members: [RoomMember]) -> RoomDeparture? {
        guard let leaving = members.first(where: { $0.userID == userID }) else { return nil }
        let others = members.filter { $0.userID != userID }
        let oldest = others.min { ($0.joinedAtMilliseconds, $0.userID) < ($1.joinedAtMilliseconds, $1.userID) }
        return plan(role: leaving.role, otherAdmins: others.filter { $0.role == .admin }.count, oldestOther: oldest?.userID)
    }
}

/// A private room's invite code: 128 random bits, base64url (22 characters), unguessable, stored
/// with a unique index; rotating it makes the old one fail.
package enum InviteCode {
    /// Random bytes per code (128 bits; at least 96 are required).
    package static let byteCount = 16
    /// Characters per code.
    package static let length = 22

    /// A new code.
    package static func generate() -> String { SecureRandom.token(byteCount: byteCount) }

    /// Whether `text` can be a code (checked before any lookup: a malformed code is simply invalid).
    package static func isWellFormed(_ text: String) -> Bool {
        text.utf8.count == length && text.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }
}

/// The editable fields of a room, validated.
package enum RoomProfileRules {
    /// Room names: 1-100 characters (Unicode scalars) after trimming spaces.
    package static let nameLength = 1...100
    /// Descriptions: at most 1000 characters.
    package static let maxDescriptionLength = 1000

    /// A name, trimmed; no control characters (NUL included).
    package static func name(_ raw: String) throws(APIError) -> String {
        try AccountRules.printableLine(raw, field: "name", length: nameLength)
    }

    /// An optional description, trimmed (empty: none); newlines and tabs allowed, other control
    /// characters (NUL included) not.
    package static func description(_ raw: String?) throws(APIError) -> String? {
        guard let raw else { return nil }
        let trimmed = String(Substring(raw).trimmingSpaces())
        guard !trimmed.isEmpty else { return nil }
        guard trimmed.unicodeScalars.count <= maxDescriptionLength else {
            throw APIError.invalidField("description", "field 'description' must be at most \(maxDescriptionLength) characters")
        }
        for scalar in trimmed.unicodeScalars where scalar.properties.generalCategory == .control && scalar != "\n" && scalar != "\t" {
            throw APIError.invalidField("description", "field 'description' must not contain control characters")
        }
        return trimmed
    }
}
