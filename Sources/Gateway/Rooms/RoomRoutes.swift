import Shared

/// The room REST API under `/api/rooms` (issue 13). Reads come straight from Postgres; writes are
/// room commands on the room's shard, checked here first against `RoomRules` for a fast answer and
/// applied (and checked again, authoritatively) by the worker that holds the shard.
@LoopActor
final class RoomRoutes {
    private let reader: RoomReader
    private let submitter: CommandSubmitter
    private let memberLimit: Int
    private let historyDefaultLimit: Int
    private let historyMaxLimit: Int

    /// Largest page of the room lists and member lists.
    static let maxPage = 100

    init(reader: RoomReader, submitter: CommandSubmitter, configuration: MessagingConfiguration) {
        self.reader = reader
        self.submitter = submitter
        memberLimit = configuration.roomMemberLimit
        historyDefaultLimit = configuration.historyDefaultLimit
        historyMaxLimit = configuration.historyMaxLimit
    }

    func register(on router: APIRouter) {
        router.add(.POST, "/api/rooms", authenticated: true) { [unowned self] in try await self.create($0) }
        router.add(.GET, "/api/rooms", authenticated: true) { [unowned self] in try await self.myRooms($0) }
        router.add(.GET, "/api/rooms/public", authenticated: true) { [unowned self] in try await self.publicRooms($0) }
        router.add(.GET, "/api/rooms/invite/:inviteCode", authenticated: true) { [unowned self] in try await self.invitePreview($0) }
        router.add(.POST, "/api/rooms/join", authenticated: true) { [unowned self] in try await self.joinByInvite($0) }
        router.add(.GET, "/api/rooms/:roomId", authenticated: true) { [unowned self] in try await self.room($0) }
        router.add(.PATCH, "/api/rooms/:roomId", authenticated: true) { [unowned self] in try await self.update($0) }
        router.add(.DELETE, "/api/rooms/:roomId", authenticated: true) { [unowned self] in try await self.delete($0) }
        router.add(.POST, "/api/rooms/:roomId/join", authenticated: true) { [unowned self] in try await self.join($0) }
        router.add(.POST, "/api/rooms/:roomId/leave", authenticated: true) { [unowned self] in try await self.leave($0) }
        router.add(.POST, "/api/rooms/:roomId/invite", authenticated: true) { [unowned self] in try await self.rotateInvite($0) }
        router.add(.GET, "/api/rooms/:roomId/members", authenticated: true) { [unowned self] in try await self.members($0) }
        router.add(.GET, "/api/rooms/:roomId/messages", authenticated: true) { [unowned self] in try await self.messages($0) }
        router.add(.POST, "/api/rooms/:roomId/members", authenticated: true) { [unowned self] in try await self.addMember($0) }
        router.add(.PATCH, "/api/rooms/:roomId/members/:userId", authenticated: true) { [unowned self] in try await self.changeRole($0) }
        router.add(.DELETE, "/api/rooms/:roomId/members/:userId", authenticated: true) { [unowned self] in
            try await self.removeMember($0)
        }
    }

    // MARK: Reads

    /// `GET /api/rooms/:roomId`: the room, with the caller's `role` (and the invite code for admins).
    private func room(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let (room, role) = try await checked(.view, roomID: try request.idParameter("roomId"), userID: userID)
        return .json(.ok, room.json(role: role))
    }

    /// `GET /api/rooms?limit=&cursor=`: my rooms, most recent activity first, with `role`,
    /// `unreadCount` and `lastMessage`; `nextCursor` when there are more.
    private func myRooms(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let http = request.http
        let limit = try HistoryPage.limit(http.queryParameter("limit"), default: 50, max: Self.maxPage)
        let cursor = try http.queryParameter("cursor").map { text throws(APIError) in try RoomListCursor(text: text) }
        let page = try await reader.rooms(of: userID, limit: limit, after: cursor)
        return .json(.ok, ["rooms": .array(page.rooms), "nextCursor": page.next.map { .string($0.text) } ?? .null])
    }

    /// `GET /api/rooms/public?query=&limit=&cursor=`: public rooms whose name starts with `query`
    /// (case-insensitive), by name.
    private func publicRooms(_ request: APIRequest) async throws -> HTTPResponse {
        let http = request.http
        let query = try AccountRules.sqlText(http.queryParameter("query"), field: "query") ?? ""
        guard query.unicodeScalars.count <= RoomProfileRules.nameLength.upperBound else {
            throw APIError.invalidField("query", "field 'query' must be at most \(RoomProfileRules.nameLength.upperBound) characters")
        }
        let limit = try HistoryPage.limit(http.queryParameter("limit"), default: 50, max: Self.maxPage)
        let cursor = try http.queryParameter("cursor").map { text throws(APIError) in try Self.directoryCursor(text) }
        let page = try await reader.publicRooms(prefix: query, limit: limit, after: cursor)
        let next = page.next.map { JSONValue.string(Base64URL.encode(Array(JSONValue.array([.string($0.name), .int($0.id)]).jsonString.utf8))) }
        return .json(.ok, ["rooms": .array(page.rooms), "nextCursor": next ?? .null])
    }

    /// `GET /api/rooms/invite/:inviteCode`: what an invite link opens, before joining: the room's
    /// name, description, privacy and member count (not its code).
    private func invitePreview(_ request: APIRequest) async throws -> HTTPResponse {
        let room = try await roomFor(inviteCode: request.parameters["inviteCode"] ?? "")
        return .json(.ok, room.json(role: RoomRole?.none))
    }

    /// `GET /api/rooms/:roomId/members?limit=&afterUserId=`: members by user id.
    private func members(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let roomID = try request.idParameter("roomId")
        _ = try await checked(.view, roomID: roomID, userID: userID)
        let http = request.http
        let limit = try HistoryPage.limit(http.queryParameter("limit"), default: 100, max: Self.maxPage)
        let after = try http.queryParameter("afterUserId").map { text throws(APIError) -> Int64 in
            guard let id = ChatCommand.idValue(.string(text)) else {
                throw APIError.invalidField("afterUserId", "field 'afterUserId' must be a positive integer id")
            }
            return id
        }
        return .json(.ok, ["members": .array(try await reader.members(of: roomID, limit: limit, afterUserID: after))])
    }

    /// `GET /api/rooms/:roomId/messages?before=&after=&limit=`: members only, oldest first, with
    /// `X-Has-More` as for direct history. (Messages are sent with `POST /api/messages` or
    /// `sendMessage` and `roomId`.)
    private func messages(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let roomID = try request.idParameter("roomId")
        _ = try await checked(.read, roomID: roomID, userID: userID)
        let http = request.http
        let page = try HistoryPage(before: http.queryParameter("before"), after: http.queryParameter("after"),
                                   limit: http.queryParameter("limit"), defaultLimit: historyDefaultLimit, maxLimit: historyMaxLimit)
        let history = try await reader.messages(of: roomID, page: page)
        var response = HTTPResponse.json(.ok, .array(history.messages))
        response.headers.replaceOrAdd(name: "X-Has-More", value: history.hasMore ? "true" : "false")
        return response
    }

    // MARK: Writes

    /// `POST /api/rooms {name, description?, isPrivate?}`: 201 with the room (the caller is its admin).
    private func create(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let command = try RoomCommand.parse(type: "room.create", body: try request.jsonObject())
        return .json(.created, try await submitter.submit(.room(command), userID: userID))
    }

    /// `POST /api/rooms/:roomId/join`: a public room.
    private func join(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let roomID = try request.idParameter("roomId")
        _ = try await checked(.join, roomID: roomID, userID: userID)
        return .json(.ok, try await submitter.submit(.room(.join(roomID: roomID)), userID: userID))
    }

    /// `POST /api/rooms/join {inviteCode}`: any room whose current code this is.
    private func joinByInvite(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let code: String
        do {
            code = try request.jsonObject().requiredString("inviteCode")
        } catch let error as JSONFieldError {
            throw APIError.invalidField(error.field, error.message)
        }
        let room = try await roomFor(inviteCode: code)
        _ = try await checked(.joinByInvite(codeMatches: true), roomID: room.id, userID: userID)
        return .json(.ok, try await submitter.submit(.room(.joinByInvite(roomID: room.id, code: code)), userID: userID))
    }

    /// `POST /api/rooms/:roomId/leave`.
    private func leave(_ request: APIRequest) async throws -> HTTPResponse {
        try await simple(request, .leave) { .leave(roomID: $0) }
    }

    /// `DELETE /api/rooms/:roomId` (admins): the room is gone for everyone, its messages deleted.
    private func delete(_ request: APIRequest) async throws -> HTTPResponse {
        try await simple(request, .delete) { .delete(roomID: $0) }
    }

    /// `POST /api/rooms/:roomId/invite {revoke?}` (admins): a new invite code, or none.
    private func rotateInvite(_ request: APIRequest) async throws -> HTTPResponse {
        let revoke: Bool
        do {
            revoke = try (request.http.body.isEmpty ? [:] : try request.jsonObject()).optionalBool("revoke") ?? false
        } catch let error as JSONFieldError {
            throw APIError.invalidField(error.field, error.message)
        }
        return try await simple(request, .rotateInvite) { .rotateInvite(roomID: $0, revoke: revoke) }
    }

    /// `PATCH /api/rooms/:roomId {name?, description?, isPrivate?}` (admins).
    private func update(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let roomID = try request.idParameter("roomId")
        var body = try request.jsonObject()
        body["roomId"] = .int(roomID)
        let command = try RoomCommand.parse(type: "room.update", body: body)
        _ = try await checked(.update, roomID: roomID, userID: userID)
        return .json(.ok, try await submitter.submit(.room(command), userID: userID))
    }

    /// `POST /api/rooms/:roomId/members {userId}` (admins).
    private func addMember(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let roomID = try request.idParameter("roomId")
        let target = try ChatCommand.requiredID(try request.jsonObject(), "userId")
        let (_, role) = try await checked(nil, roomID: roomID, userID: userID)
        if let code = RoomRules.refusal(of: .addMember(targetRole: nil), actor: role, room: try await facts(roomID, userID)) {
            throw APIError(code)
        }
        guard try await reader.userExists(target) else { throw APIError(.userNotFound) }
        return .json(.ok, try await submitter.submit(.room(.addMember(roomID: roomID, userID: target)), userID: userID))
    }

    /// `DELETE /api/rooms/:roomId/members/:userId` (admins, or oneself: leaving).
    private func removeMember(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let roomID = try request.idParameter("roomId")
        let target = try request.idParameter("userId")
        let (room, role) = try await checked(nil, roomID: roomID, userID: userID)
        let targetRole = try await reader.room(roomID, for: target)?.role
        if let code = RoomRules.refusal(of: .removeMember(targetRole: targetRole, isSelf: target == userID), actor: role,
                                        room: room.facts(memberLimit: memberLimit)) {
            throw APIError(code)
        }
        return .json(.ok, try await submitter.submit(.room(.removeMember(roomID: roomID, userID: target)), userID: userID))
    }

    /// `PATCH /api/rooms/:roomId/members/:userId {role}` (admins).
    private func changeRole(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let roomID = try request.idParameter("roomId")
        let target = try request.idParameter("userId")
        var body = try request.jsonObject()
        body["roomId"] = .int(roomID)
        body["userId"] = .int(target)
        let command = try RoomCommand.parse(type: "room.changeRole", body: body)
        guard case .changeRole(_, _, let newRole) = command else { throw APIError.validation("field 'role' is required") }
        let (room, role) = try await checked(nil, roomID: roomID, userID: userID)
        let targetRole = try await reader.room(roomID, for: target)?.role
        if let code = RoomRules.refusal(of: .changeRole(targetRole: targetRole, to: newRole, isSelf: target == userID), actor: role,
                                        room: room.facts(memberLimit: memberLimit)) {
            throw APIError(code)
        }
        return .json(.ok, try await submitter.submit(.room(command), userID: userID))
    }

    // MARK: Checks

    /// A room command on `:roomId` with no body, after `request` is checked.
    private func simple(_ request: APIRequest, _ check: RoomRequest, _ command: (Int64) -> RoomCommand) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let roomID = try request.idParameter("roomId")
        _ = try await checked(check, roomID: roomID, userID: userID)
        return .json(.ok, try await submitter.submit(.room(command(roomID)), userID: userID))
    }

    /// The room and the caller's role, after `RoomRules` allowed `request` (nil: only that the
    /// room exists for the caller). Throws the refusal.
    private func checked(_ request: RoomRequest?, roomID: Int64, userID: Int64) async throws -> (RoomRecord, RoomRole?) {
        guard let (room, role) = try await reader.room(roomID, for: userID) else { throw APIError(.roomNotFound) }
        let facts = room.facts(memberLimit: memberLimit)
        if let code = RoomRules.refusal(of: request ?? .view, actor: role, room: facts) { throw APIError(code) }
        return (room, role)
    }

    private func facts(_ roomID: Int64, _ userID: Int64) async throws -> RoomFacts {
        guard let (room, _) = try await reader.room(roomID, for: userID) else { throw APIError(.roomNotFound) }
        return room.facts(memberLimit: memberLimit)
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
}
