import Shared

/// The room requests of a socket (issue 13), each the twin of a `/api/rooms` route and limited
/// like it: every one spends the user's API budget first. The answer is the ack's argument; a
/// `get…` without an ack answers with an event of its own name; a refusal is the ack's error or an
/// `error` event with its code.
@LoopActor
final class SocketRooms {
    private let service: RoomService
    private let spendAPIBudget: @LoopActor (Int64) async -> APIError?

    init(service: RoomService, spendAPIBudget: @escaping @LoopActor (Int64) async -> APIError?) {
        self.service = service
        self.spendAPIBudget = spendAPIBudget
    }

    /// Whether `event` is a room request.
    static func handles(_ event: SocketEvent) -> Bool { SocketEvent.rooms.contains(event) }

    func handle(_ event: SocketEvent, _ argument: JSONValue, ackID: Int64?, session: SocketSession, userID: Int64) {
        Task.onLoop {
            if let refusal = await self.spendAPIBudget(userID) { return session.emitError(refusal, ackID: ackID) }
            do {
                let arguments = argument.isNull ? JSONObject() : try MessagePayload.object(argument)
                let answer = try await self.perform(event, arguments, userID: userID)
                if let ackID {
                    session.sendAck(ackID, [answer])
                } else if SocketEvent.server.contains(event) {
                    session.emit(event, answer)
                }
            } catch {
                session.emitError(APIError.from(error), ackID: ackID)
            }
        }
    }

    private func perform(_ event: SocketEvent, _ arguments: JSONObject, userID: Int64) async throws -> JSONValue {
        func room() throws(APIError) -> Int64 { try ChatCommand.requiredID(arguments, "roomId") }
        func target() throws(APIError) -> Int64 { try ChatCommand.requiredID(arguments, "userId") }
        switch event {
        case .createRoom: return try await service.create(userID: userID, arguments)
        case .getRoom: return try await service.room(try room(), userID: userID)
        case .getMyRooms: return try await service.myRooms(userID: userID, arguments)
        case .getPublicRooms: return try await service.publicRooms(arguments)
        case .joinRoom:
            if let code = arguments["inviteCode"], !code.isNull {
                guard let text = code.stringValue else { throw APIError.invalidField("inviteCode", "field 'inviteCode' must be a string") }
                return try await service.join(inviteCode: text, userID: userID)
            }
            return try await service.join(try room(), userID: userID)
        case .leaveRoom: return try await service.leave(try room(), userID: userID)
        case .getRoomMembers: return try await service.members(try room(), userID: userID, arguments)
        case .addRoomMember: return try await service.addMember(try room(), target: try target(), userID: userID)
        case .removeRoomMember: return try await service.removeMember(try room(), target: try target(), userID: userID)
        case .setRoomMemberRole: return try await service.changeRole(try room(), target: try target(), userID: userID, arguments)
        case .updateRoom: return try await service.update(try room(), userID: userID, arguments)
        case .rotateRoomInvite: return try await service.rotateInvite(try room(), userID: userID, arguments)
        case .deleteRoom: return try await service.delete(try room(), userID: userID)
        case .getRoomPresence:
            return try await service.presence(try room(), userID: userID, arguments)
        case .getMessageReceipts:
            return try await service.receipts(try room(), messageID: try ChatCommand.requiredID(arguments, "messageId"), userID: userID)
        case .messageDelivered:
            return try await service.delivered(try room(), seq: try ChatCommand.requiredID(arguments, "seq"), userID: userID)
        case .getRoomMessages:
            let page = try await service.messages(try room(), userID: userID, arguments)
            return ["messages": .array(page.messages), "hasMore": .bool(page.hasMore)]
        default:
            throw APIError(.unknownEvent, message: "unknown event '\(event)'")
        }
    }
}
