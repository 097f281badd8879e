import Testing
@testable import Shared

/// Room commands on the stream (issue 13): what gateways write is what workers read, and bad
/// fields are refused with the field named.
@Suite struct RoomCommandTests {
    private static let code = InviteCode.generate()
    private static let all: [RoomCommand] = [
        .create(name: "Team", description: "the team", isPrivate: true), .create(name: "Open", description: nil, isPrivate: false),
        .join(roomID: 7), .joinByInvite(roomID: 7, code: code), .leave(roomID: 7), .addMember(roomID: 7, userID: 9),
        .removeMember(roomID: 7, userID: 9), .changeRole(roomID: 7, userID: 9, role: .admin),
        .update(roomID: 7, name: "New", description: .some(nil), isPrivate: nil), .update(roomID: 7, name: nil, description: "d", isPrivate: true),
        .rotateInvite(roomID: 7, revoke: true), .delete(roomID: 7),
    ]

    @Test func everyCommandSurvivesTheStream() throws {
        for command in Self.all {
            guard case .object(let body) = command.body else { Issue.record("\(command): body is not an object"); continue }
            #expect(RoomCommand.typeNames.contains(command.typeName))
            #expect(try ChatCommand.parse(type: command.typeName, body: body) == .room(command))
            let envelope = CommandEnvelope(command: .room(command), userID: 3, reply: ReplyAddress(gateway: "g", request: "r"))
            let fields = envelope.streamFields()
            var pairs: [(String, [UInt8])] = []
            for index in stride(from: 0, to: fields.count, by: 2) { pairs.append((fields[index], Array(fields[index + 1].utf8))) }
            #expect(try CommandEnvelope.decode(fields: pairs) == envelope)
        }
        #expect(Set(Self.all.map(\.typeName)) == RoomCommand.typeNames)
    }

    @Test func roomCommandsGoToTheirRoomsShardAndCreationToTheCreators() {
        let shards = CommandShards(count: 64)
        #expect(shards.shard(of: .room(.join(roomID: 7)), userID: 3) == shards.shard(room: 7))
        #expect(shards.shard(of: .room(.delete(roomID: 7)), userID: 5) == shards.shard(room: 7))
        #expect(shards.shard(of: .room(.create(name: "x", description: nil, isPrivate: false)), userID: 3) == shards.shard(directBetween: 3, 3))
    }

    @Test func badFieldsAreRefusedNamingTheField() {
        let cases: [(String, JSONObject, String)] = [
            ("room.create", [:], "name"),
            ("room.create", ["name": "   "], "name"),
            ("room.create", ["name": .int(5)], "name"),
            ("room.create", ["name": "ok", "isPrivate": "yes"], "isPrivate"),
            ("room.create", ["name": "ok", "description": .string(String(repeating: "d", count: 1001))], "description"),
            ("room.changeRole", ["roomId": 1, "userId": 2, "role": "owner"], "role"),
            ("room.update", ["roomId": 1, "description": .int(3)], "description"),
        ]
        for (type, body, field) in cases {
            do {
                _ = try ChatCommand.parse(type: type, body: body)
                Issue.record("\(type) \(body) was accepted")
            } catch {
                #expect(error.code == .validationFailed && error.details["field"] == .string(field), "\(type) \(body): \(error)")
            }
        }
        #expect(throws: APIError.self) { try ChatCommand.parse(type: "room.join", body: ["roomId": 0]) }
        #expect(throws: APIError.self) { try ChatCommand.parse(type: "room.update", body: ["roomId": 1]) }
        #expect(throws: APIError.self) { try ChatCommand.parse(type: "room.explode", body: ["roomId": 1]) }
        do {
            _ = try ChatCommand.parse(type: "room.joinByInvite", body: ["roomId": 1, "inviteCode": "short"])
            Issue.record("a malformed code was accepted")
        } catch {
            #expect(error.code == .inviteInvalid)
        }
    }
}
