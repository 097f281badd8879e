import Shared

/// The room REST API under `/api/rooms` (issue 13): path and query parameters into `RoomService`'s
/// arguments, its answers into responses.
@LoopActor
final class RoomRoutes {
    private let service: RoomService

    init(service: RoomService) {
        self.service = service
    }

    func register(on router: APIRouter) {
        router.add(.POST, "/api/rooms", authenticated: true) { [unowned self] request in
            .json(.created, try await self.service.create(userID: try request.caller.userID, try request.jsonObject()))
        }
        router.add(.GET, "/api/rooms", authenticated: true) { [unowned self] request in
            .json(.ok, try await self.service.myRooms(userID: try request.caller.userID, Self.query(request, "limit", "cursor")))
        }
        router.add(.GET, "/api/rooms/public", authenticated: true) { [unowned self] request in
            .json(.ok, try await self.service.publicRooms(Self.query(request, "query", "limit", "cursor")))
        }
        router.add(.GET, "/api/rooms/invite/:inviteCode", authenticated: true) { [unowned self] request in
            .json(.ok, try await self.service.invitePreview(request.parameters["inviteCode"] ?? ""))
        }
        router.add(.POST, "/api/rooms/join", authenticated: true) { [unowned self] request in
            let code: String
            do {
                code = try request.jsonObject().requiredString("inviteCode")
            } catch let error as JSONFieldError {
                throw APIError.invalidField(error.field, error.message)
            }
            return .json(.ok, try await self.service.join(inviteCode: code, userID: try request.caller.userID))
        }
        router.add(.GET, "/api/rooms/:roomId", authenticated: true) { [unowned self] request in
            .json(.ok, try await self.service.room(try request.idParameter("roomId"), userID: try request.caller.userID))
        }
        router.add(.PATCH, "/api/rooms/:roomId", authenticated: true) { [unowned self] request in
            .json(.ok, try await self.service.update(try request.idParameter("roomId"), userID: try request.caller.userID,
                                                     try request.jsonObject()))
        }
        router.add(.DELETE, "/api/rooms/:roomId", authenticated: true) { [unowned self] request in
            .json(.ok, try await self.service.delete(try request.idParameter("roomId"), userID: try request.caller.userID))
        }
        router.add(.POST, "/api/rooms/:roomId/join", authenticated: true) { [unowned self] request in
            .json(.ok, try await self.service.join(try request.idParameter("roomId"), userID: try request.caller.userID))
        }
        router.add(.POST, "/api/rooms/:roomId/leave", authenticated: true) { [unowned self] request in
            .json(.ok, try await self.service.leave(try request.idParameter("roomId"), userID: try request.caller.userID))
        }
        router.add(.POST, "/api/rooms/:roomId/invite", authenticated: true) { [unowned self] request in
            let body = request.http.body.isEmpty ? JSONObject() : try request.jsonObject()
            return .json(.ok, try await self.service.rotateInvite(try request.idParameter("roomId"), userID: try request.caller.userID, body))
        }
        router.add(.GET, "/api/rooms/:roomId/members", authenticated: true) { [unowned self] request in
            .json(.ok, try await self.service.members(try request.idParameter("roomId"), userID: try request.caller.userID,
                                                      Self.query(request, "limit", "afterUserId")))
        }
        router.add(.POST, "/api/rooms/:roomId/members", authenticated: true) { [unowned self] request in
            let target = try ChatCommand.requiredID(try request.jsonObject(), "userId")
            return .json(.ok, try await self.service.addMember(try request.idParameter("roomId"), target: target,
                                                               userID: try request.caller.userID))
        }
        router.add(.PATCH, "/api/rooms/:roomId/members/:userId", authenticated: true) { [unowned self] request in
            .json(.ok, try await self.service.changeRole(try request.idParameter("roomId"), target: try request.idParameter("userId"),
                                                         userID: try request.caller.userID, try request.jsonObject()))
        }
        router.add(.DELETE, "/api/rooms/:roomId/members/:userId", authenticated: true) { [unowned self] request in
            .json(.ok, try await self.service.removeMember(try request.idParameter("roomId"), target: try request.idParameter("userId"),
                                                           userID: try request.caller.userID))
        }
        router.add(.GET, "/api/rooms/:roomId/presence", authenticated: true) { [unowned self] request in
            .json(.ok, try await self.service.presence(try request.idParameter("roomId"), userID: try request.caller.userID,
                                                       Self.query(request, "limit", "afterUserId")))
        }
        router.add(.GET, "/api/rooms/:roomId/messages/:messageId/receipts", authenticated: true) { [unowned self] request in
            .json(.ok, try await self.service.receipts(try request.idParameter("roomId"), messageID: try request.idParameter("messageId"),
                                                       userID: try request.caller.userID))
        }
        router.add(.POST, "/api/rooms/:roomId/delivered", authenticated: true) { [unowned self] request in
            let seq = try ChatCommand.requiredID(try request.jsonObject(), "seq")
            return .json(.ok, try await self.service.delivered(try request.idParameter("roomId"), seq: seq, userID: try request.caller.userID))
        }
        router.add(.GET, "/api/rooms/:roomId/messages", authenticated: true) { [unowned self] request in
            let history = try await self.service.messages(try request.idParameter("roomId"), userID: try request.caller.userID,
                                                          Self.query(request, "before", "after", "limit"))
            var response = HTTPResponse.json(.ok, .array(history.messages))
            response.headers.replaceOrAdd(name: "X-Has-More", value: history.hasMore ? "true" : "false")
            return response
        }
    }

    /// The named query parameters that are present, as service arguments.
    private static func query(_ request: APIRequest, _ names: String...) -> JSONObject {
        var arguments = JSONObject()
        for name in names { if let value = request.http.queryParameter(name) { arguments[name] = .string(value) } }
        return arguments
    }
}
