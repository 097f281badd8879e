import Shared

/// Every room operation (issue 13), shared by the REST routes (`RoomRoutes`) and the socket
/// events (`SocketRooms`): arguments in a JSON object, the answer as JSON. Reads come straight from
/// Postgres; writes are room commands on the room's shard, checked here first against
/// `RoomRules` for a fast answer and applied (and checked again, authoritatively) by the worker
/// that holds the shard.
@LoopActor
final class RoomService {
    private let reader: RoomReader
    private let submitter: CommandSubmitter
    private let configuration: MessagingConfiguration
    /// Rooms a user may create per window (`RATE_LIMIT_ROOM_CREATE`; nil: no limit).
    private let creations: RateLimiter?
    /// Who is online (the presence registry); set by the composition root.
    var presence: (any PresenceLookup)?

    /// Largest page of the room lists and member lists.
    static let maxPage = 100

    init(reader: RoomReader, submitter: CommandSubmitter, configuration: MessagingConfiguration, creations: RateLimiter? = nil) {
        self.reader = reader
        self.submitter = submitter
        self.configuration = configuration
        self.creations = creations
    }

    private var memberLimit: Int { configuration.roomMemberLimit }

    // MARK: Reads

    /// The room, with the caller's `role` (and the invite code for admins).
    func room(_ roomID: Int64, userID: Int64) async throws -> JSONValue {
        let (room, role) = try await checked(.view, roomID: roomID, userID: userID)
        return room.json(role: role)
    }

    /// My rooms, most recent activity first, with `role`, `unreadCount` and `lastMessage`;
    /// `nextCursor` when there are more. Arguments: `limit`, `cursor`.
    func myRooms(userID: Int64, _ arguments: JSONObject) async throws -> JSONValue {
        let limit = try HistoryPage.limit(Self.text(arguments, "limit"), default: 50, max: Self.maxPage)
        let cursor = try Self.text(arguments, "cursor").map { text throws(APIError) in try ActivityCursor(text: text) }
        let page = try await reader.rooms(of: userID, limit: limit, after: cursor)
        return ["rooms": .array(page.rooms), "nextCursor": page.next.map { .string($0.text) } ?? .null]
    }

    /// Public rooms whose name starts with `query` (case-insensitive), by name. Arguments: `query`,
    /// `limit`, `cursor`.
    func publicRooms(_ arguments: JSONObject) async throws -> JSONValue {
        let query = try AccountRules.sqlText(Self.text(arguments, "query"), field: "query") ?? ""
        guard query.unicodeScalars.count <= RoomProfileRules.nameLength.upperBound else {
            throw APIError.invalidField("query", "field 'query' must be at most \(RoomProfileRules.nameLength.upperBound) characters")
        }
        let limit = try HistoryPage.limit(Self.text(arguments, "limit"), default: 50, max: Self.maxPage)
        let cursor = try Self.text(arguments, "cursor").map { text throws(APIError) in try Self.directoryCursor(text) }
        let page = try await reader.publicRooms(prefix: query, limit: limit, after: cursor)
        let next = page.next.map { JSONValue.string(Base64URL.encode(Array(JSONValue.array([.string($0.name), .int($0.id)]).jsonString.utf8))) }
        return ["rooms": .array(page.rooms), "nextCursor": next ?? .null]
    }

    /// What an invite link opens, before joining: name, description, privacy, member count.
    func invitePreview(_ code: String) async throws -> JSONValue {
        try await roomFor(inviteCode: code).json(role: nil)
    }

    /// Members by user id. Arguments: `limit`, `afterUserId`.
    func members(_ roomID: Int64, userID: Int64, _ arguments: JSONObject) async throws -> JSONValue {
        _ = try await checked(.view, roomID: roomID, userID: userID)
        let limit = try HistoryPage.limit(Self.text(arguments, "limit"), default: 100, max: Self.maxPage)
        let after = try Self.text(arguments, "afterUserId").map { text throws(APIError) -> Int64 in
            guard let id = ChatCommand.idValue(.string(text)), id > 0 else {
                throw APIError.invalidField("afterUserId", "field 'afterUserId' must be a positive integer id")
            }
            return id
        }
        return ["members": .array(try await reader.members(of: roomID, limit: limit, afterUserID: after))]
    }

    /// A page of the room's history (members only). Arguments: `before`, `after`, `limit`.
    func messages(_ roomID: Int64, userID: Int64, _ arguments: JSONObject) async throws -> (messages: [JSONValue], hasMore: Bool) {
        _ = try await checked(.read, roomID: roomID, userID: userID)
        let page = try HistoryPage(before: Self.text(arguments, "before"), after: Self.text(arguments, "after"),
                                   limit: Self.text(arguments, "limit"), defaultLimit: configuration.historyDefaultLimit,
                                   maxLimit: configuration.historyMaxLimit)
        return try await reader.messages(of: roomID, page: page, viewer: userID)
    }

    /// How many of the room's members are online, and a page of the online ones by user id.
    /// Arguments: `limit`, `afterUserId`.
    func presence(_ roomID: Int64, userID: Int64, _ arguments: JSONObject) async throws -> JSONValue {
        _ = try await checked(.view, roomID: roomID, userID: userID)
        let limit = try HistoryPage.limit(Self.text(arguments, "limit"), default: 100, max: Self.maxPage)
        let after = try Self.text(arguments, "afterUserId").flatMap { ChatCommand.idValue(.string($0)) } ?? 0
        let members = try await reader.memberIDs(of: roomID)
        let online = await presence?.onlineUsers(among: members) ?? []
        let page = online.sorted().filter { $0 > after }.prefix(limit)
        return ["roomId": .int(roomID), "online": .int(Int64(online.count)), "members": .array(try await reader.people(Array(page)))]
    }

    /// How many of the room's other members received and read a message (members only).
    func receipts(_ roomID: Int64, messageID: Int64, userID: Int64) async throws -> JSONValue {
        _ = try await checked(.read, roomID: roomID, userID: userID)
        guard let receipts = try await reader.receipts(of: messageID, in: roomID) else { throw APIError(.messageNotFound) }
        return receipts
    }

    // MARK: Writes

    /// One of the caller's devices received the room's messages up to `seq`: the delivery pointer
    /// moves (the worker checks the membership); the other members hear `memberDelivered`.
    func delivered(_ roomID: Int64, seq: Int64, userID: Int64) async throws -> JSONValue {
        try ChatCommand.validateID(seq, field: "seq")
        return try await submitter.submit(.delivered(roomID: roomID, seq: seq), userID: userID)
    }

    /// Creates a room (the caller is its admin). Arguments: `name`, `description`, `isPrivate`.
    func create(userID: Int64, _ arguments: JSONObject) async throws -> JSONValue {
        let command = try RoomCommand.parse(type: "room.create", body: arguments)
        if let creations, var refusal = await creations.check("user:\(userID)").refusal(creations.policy, what: "too many rooms created") {
            if refusal.status == .tooManyRequests { refusal.details["limit"] = "roomCreate" }
            throw refusal
        }
        return try await submitter.submit(.room(command), userID: userID)
    }

    /// Joins a public room.
    func join(_ roomID: Int64, userID: Int64) async throws -> JSONValue {
        _ = try await checked(.join, roomID: roomID, userID: userID)
        return try await submitter.submit(.room(.join(roomID: roomID)), userID: userID)
    }

    /// Joins the room whose current invite code this is.
    func join(inviteCode code: String, userID: Int64) async throws -> JSONValue {
        let room = try await roomFor(inviteCode: code)
        _ = try await checked(.joinByInvite(codeMatches: true), roomID: room.id, userID: userID)
        return try await submitter.submit(.room(.joinByInvite(roomID: room.id, code: code)), userID: userID)
    }

    func leave(_ roomID: Int64, userID: Int64) async throws -> JSONValue {
        _ = try await checked(.leave, roomID: roomID, userID: userID)
        return try await submitter.submit(.room(.leave(roomID: roomID)), userID: userID)
    }

    /// Deletes the room (admins): gone for everyone, its messages deleted.
    func delete(_ roomID: Int64, userID: Int64) async throws -> JSONValue {
        _ = try await checked(.delete, roomID: roomID, userID: userID)
        return try await submitter.submit(.room(.delete(roomID: roomID)), userID: userID)
    }

    /// A new invite code, or none (admins). Arguments: `revoke`.
    func rotateInvite(_ roomID: Int64, userID: Int64, _ arguments: JSONObject) async throws -> JSONValue {
        let revoke: Bool
        do {
            revoke = try arguments.optionalBool("revoke") ?? false
        } catch {
            throw APIError.invalidField(error.field, error.message)
        }
        _ = try await checked(.rotateInvite, roomID: roomID, userID: userID)
        return try await submitter.submit(.room(.rotateInvite(roomID: roomID, revoke: revoke)), userID: userID)
    }

    /// Changes name, description or privacy (admins). Arguments: `name`, `description`, `isPrivate`.
    func update(_ roomID: Int64, userID: Int64, _ arguments: JSONObject) async throws -> JSONValue {
        var body = arguments
        body["roomId"] = .int(roomID)
        let command = try RoomCommand.parse(type: "room.update", body: body)
        _ = try await checked(.update, roomID: roomID, userID: userID)
        return try await submitter.submit(.room(command), userID: userID)
    }

    /// Adds `target` (admins).
    func addMember(_ roomID: Int64, target: Int64, userID: Int64) async throws -> JSONValue {
        let (room, role) = try await checked(nil, roomID: roomID, userID: userID)
        let targetRole = try await reader.room(roomID, for: target)?.role
        if let code = RoomRules.refusal(of: .addMember(targetRole: targetRole), actor: role, room: room.facts(memberLimit: memberLimit)) {
            throw APIError(code)
        }
        // An unknown user is answered user_not_found by the worker, which checks under the room's lock.
        return try await submitter.submit(.room(.addMember(roomID: roomID, userID: target)), userID: userID)
    }

    /// Removes `target` (admins; or oneself, which is leaving).
    func removeMember(_ roomID: Int64, target: Int64, userID: Int64) async throws -> JSONValue {
        let (room, role) = try await checked(nil, roomID: roomID, userID: userID)
        let targetRole = try await reader.room(roomID, for: target)?.role
        if let code = RoomRules.refusal(of: .removeMember(targetRole: targetRole, isSelf: target == userID), actor: role,
                                        room: room.facts(memberLimit: memberLimit)) {
            throw APIError(code)
        }
        return try await submitter.submit(.room(.removeMember(roomID: roomID, userID: target)), userID: userID)
    }

    /// Changes `target`'s role (admins). Arguments: `role`.
    func changeRole(_ roomID: Int64, target: Int64, userID: Int64, _ arguments: JSONObject) async throws -> JSONValue {
        var body = arguments
        body["roomId"] = .int(roomID)
        body["userId"] = .int(target)
        let command = try RoomCommand.parse(type: "room.changeRole", body: body)
        guard case .changeRole(_, _, let newRole) = command else { throw APIError.validation("field 'role' is required") }
        var (room, role) = try await checked(nil, roomID: roomID, userID: userID)
        let targetRole = try await reader.room(roomID, for: target)?.role
        if target == userID, newRole == .member { room.adminCount = try await reader.adminCount(of: roomID) }
        if let code = RoomRules.refusal(of: .changeRole(targetRole: targetRole, to: newRole, isSelf: target == userID), actor: role,
                                        room: room.facts(memberLimit: memberLimit)) {
            throw APIError(code)
        }
        return try await submitter.submit(.room(command), userID: userID)
    }

    // MARK: Checks

    /// The room and the caller's role, after `RoomRules` allowed `request` (nil: only that the
    /// room exists for the caller). Throws the refusal.
    private func checked(_ request: RoomRequest?, roomID: Int64, userID: Int64) async throws -> (RoomRecord, RoomRole?) {
        guard let (room, role) = try await reader.room(roomID, for: userID) else { throw APIError(.roomNotFound) }
        if let code = RoomRules.refusal(of: request ?? .view, actor: role, room: room.facts(memberLimit: memberLimit)) {
            throw APIError(code)
        }
        return (room, role)
    }

    /// The room of a well-formed, current invite code; `invite_invalid` otherwise.
    private func roomFor(inviteCode code: String) async throws -> RoomRecord {
        guard InviteCode.isWellFormed(code), let room = try await reader.room(inviteCode: code), !room.isGone else {
            throw APIError(.inviteInvalid)
        }
        return room
    }

    /// A public-directory cursor: base64url of `["<lowercased name>", <id>]`.
    private static func directoryCursor(_ text: String) throws(APIError) -> (name: String, id: Int64) {
        let invalid = APIError.invalidField("cursor", "field 'cursor' must be a cursor returned by the previous page")
        guard text.utf8.count <= 1024, let bytes = Base64URL.decode(text), let json = try? JSONParser.parse(bytes),
              let parts = json.arrayValue, parts.count == 2, let name = parts[0].stringValue, !name.utf8.contains(0),
              let id = parts[1].int64Value, id > 0 else { throw invalid }
        return (name, id)
    }

    /// An argument as text: a string as it is, a number in decimal (query parameters arrive as
    /// text, socket arguments as JSON), nil when absent or null.
    static func text(_ arguments: JSONObject, _ name: String) throws(APIError) -> String? {
        guard let value = arguments[name], !value.isNull else { return nil }
        if let text = value.stringValue { return text }
        if let number = value.int64Value { return String(number) }
        throw APIError.invalidField(name, "field '\(name)' must be a string or an integer")
    }
}
