import API
import JSON

/// A room operation (issue 13), carried on the command stream as `ChatCommand.room`. Gateways
/// build it from a REST call or socket event; the worker that holds the room's shard applies it,
/// in stream order with the room's messages.
package enum RoomCommand: Sendable, Equatable {
    /// Create a room; the creator becomes its admin. (On the creator's own shard: the room has no
    /// id yet.)
    case create(name: String, description: String?, isPrivate: Bool)
    /// Join a public room.
    case join(roomID: Int64)
    /// Join a room with its invite code (the gateway found the room by the code; the worker checks
    /// the code again under the room's lock).
    case joinByInvite(roomID: Int64, code: String)
    case leave(roomID: Int64)
    case addMember(roomID: Int64, userID: Int64)
    case removeMember(roomID: Int64, userID: Int64)
    case changeRole(roomID: Int64, userID: Int64, role: RoomRole)
    /// Change what is given; `description` `.some(nil)` clears it.
    case update(roomID: Int64, name: String?, description: String??, isPrivate: Bool?)
    /// A new invite code, or none (`revoke`).
    case rotateInvite(roomID: Int64, revoke: Bool)
    case delete(roomID: Int64)

    /// Every stream `type` of a room command.
    package static let typeNames: Set<String> = [
        "room.create", "room.join", "room.joinByInvite", "room.leave", "room.addMember", "room.removeMember",
        "room.changeRole", "room.update", "room.rotateInvite", "room.delete",
    ]

    /// The stream's `type` field.
    package var typeName: String {
        switch self {
        case .create: "room.create"
        case .join: "room.join"
        case .joinByInvite: "room.joinByInvite"
        case .leave: "room.leave"
        case .addMember: "room.addMember"
        case .removeMember: "room.removeMember"
        case .changeRole: "room.changeRole"
        case .update: "room.update"
        case .rotateInvite: "room.rotateInvite"
        case .delete: "room.delete"
        }
    }

    /// The room the command is about (nil for `create`).
    package var roomID: Int64? {
        switch self {
        case .create: nil
        case .join(let id), .joinByInvite(let id, _), .leave(let id), .addMember(let id, _), .removeMember(let id, _),
             .changeRole(let id, _, _), .update(let id, _, _, _), .rotateInvite(let id, _), .delete(let id): id
        }
    }

    /// The stream's `body` field as JSON.
    package var body: JSONValue {
        switch self {
        case .create(let name, let description, let isPrivate):
            var object: JSONObject = ["name": .string(name), "isPrivate": .bool(isPrivate)]
            if let description { object["description"] = .string(description) }
            return .object(object)
        case .join(let id), .leave(let id), .delete(let id):
            return ["roomId": .int(id)]
        case .joinByInvite(let id, let code):
            return ["roomId": .int(id), "inviteCode": .string(code)]
        case .addMember(let id, let user), .removeMember(let id, let user):
            return ["roomId": .int(id), "userId": .int(user)]
        case .changeRole(let id, let user, let role):
            return ["roomId": .int(id), "userId": .int(user), "role": .string(role.rawValue)]
        case .update(let id, let name, let description, let isPrivate):
            var object: JSONObject = ["roomId": .int(id)]
            if let name { object["name"] = .string(name) }
            if let description { object["description"] = description.map { .string($0) } ?? .null }
            if let isPrivate { object["isPrivate"] = .bool(isPrivate) }
            return .object(object)
        case .rotateInvite(let id, let revoke):
            return ["roomId": .int(id), "revoke": .bool(revoke)]
        }
    }

    /// Builds a command from its stream `type` and JSON `body` (also the shape of client
    /// payloads), validating every field as `validate` does.
    package static func parse(type: String, body: JSONObject) throws(APIError) -> RoomCommand {
        let command: RoomCommand
        do {
            switch type {
            case "room.create":
                command = .create(name: try body.requiredString("name"), description: try body.optionalString("description"),
                                  isPrivate: try body.optionalBool("isPrivate") ?? false)
            case "room.join":
                command = .join(roomID: try ChatCommand.requiredID(body, "roomId"))
            case "room.joinByInvite":
                command = .joinByInvite(roomID: try ChatCommand.requiredID(body, "roomId"), code: try body.requiredString("inviteCode"))
            case "room.leave":
                command = .leave(roomID: try ChatCommand.requiredID(body, "roomId"))
            case "room.addMember":
                command = .addMember(roomID: try ChatCommand.requiredID(body, "roomId"), userID: try ChatCommand.requiredID(body, "userId"))
            case "room.removeMember":
                command = .removeMember(roomID: try ChatCommand.requiredID(body, "roomId"), userID: try ChatCommand.requiredID(body, "userId"))
            case "room.changeRole":
                let roleName = try body.requiredString("role")
                guard let role = RoomRole(rawValue: roleName) else {
                    throw APIError.invalidField("role", "field 'role' must be 'admin' or 'member'")
                }
                command = .changeRole(roomID: try ChatCommand.requiredID(body, "roomId"), userID: try ChatCommand.requiredID(body, "userId"),
                                      role: role)
            case "room.update":
                var description: String??
                if let value = body["description"] {
                    if value.isNull {
                        description = .some(nil)
                    } else if let text = value.stringValue {
                        description = .some(text)
                    } else {
                        throw APIError.invalidField("description", "field 'description' must be a string or null")
                    }
                }
                command = .update(roomID: try ChatCommand.requiredID(body, "roomId"), name: try body.optionalString("name"),
                                  description: description, isPrivate: try body.optionalBool("isPrivate"))
            case "room.rotateInvite":
                command = .rotateInvite(roomID: try ChatCommand.requiredID(body, "roomId"), revoke: try body.optionalBool("revoke") ?? false)
            case "room.delete":
                command = .delete(roomID: try ChatCommand.requiredID(body, "roomId"))
            default:
                throw ChatErrors.unsupportedCommand(type)
            }
        } catch let error as JSONFieldError {
            throw APIError.invalidField(error.field, error.message)
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.validation(String(describing: error))
        }
        try command.validate()
        return command
    }

    /// Checks every field: ids positive, name and description by `RoomProfileRules`, the invite
    /// code's shape, an update that changes something.
    package func validate() throws(APIError) {
        if let roomID { try ChatCommand.validateID(roomID, field: "roomId") }
        switch self {
        case .create(let name, let description, _):
            _ = try RoomProfileRules.name(name)
            _ = try RoomProfileRules.description(description)
        case .joinByInvite(_, let code):
            guard InviteCode.isWellFormed(code) else { throw APIError(.inviteInvalid) }
        case .addMember(_, let user), .removeMember(_, let user), .changeRole(_, let user, _):
            try ChatCommand.validateID(user, field: "userId")
        case .update(_, let name, let description, let isPrivate):
            guard name != nil || description != nil || isPrivate != nil else {
                throw APIError.validation("nothing to update: give name, description or isPrivate")
            }
            if let name { _ = try RoomProfileRules.name(name) }
            if let description { _ = try RoomProfileRules.description(description) }
        case .join, .leave, .rotateInvite, .delete:
            break
        }
    }
}
