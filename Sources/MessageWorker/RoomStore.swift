import Shared

/// Applies room commands (issue 13): each in one transaction that locks the room's row first
/// (so it is ordered with the room's sends, which lock it too), checks `RoomRules` on what it read,
/// writes, checks the shards' fence last, and commits. Refusals are outcomes, not errors: the
/// transaction then ends without writes.
///
/// Events for the room's members go once to the room's channel (`RoomEvent`); events for one user
/// (`roomJoined`, `roomLeft`) to that user's channel.
@LoopActor
final class RoomStore {
    private let database: PostgresPool
    private let memberLimit: Int
    private let roomsPerUser: Int

    init(database: PostgresPool, memberLimit: Int, roomsPerUser: Int = RoomDefaults.roomsPerUser) {
        self.database = database
        self.memberLimit = memberLimit
        self.roomsPerUser = roomsPerUser
    }

    /// Applies `command` (a room command) and returns its outcome.
    func apply(_ command: BatchCommand, fence: [Int: Int64]) async throws -> CommandOutcome {
        guard case .room(let room) = command.envelope.command else {
            return CommandOutcome(entryID: command.entryID, reply: command.envelope.reply.map {
                ChatReply(reply: $0, error: ChatErrors.unsupportedCommand(command.envelope.command.typeName))
            }, events: [])
        }
        let actor = command.envelope.userID
        let limits = Limits(members: memberLimit, roomsPerUser: roomsPerUser)
        let entry = command.entryID
        let result = try await database.transaction { connection -> Applied in
            // Applied before (committed, then the batch failed or the worker died before
            // publishing and acknowledging): the same answer and events again, nothing applied twice.
            let logged = try await connection.query("SELECT result FROM room_commands WHERE entry = $1", [.string(entry)])
            if !logged.isEmpty, let replay = Applied(logged: try logged.string("result")) { return replay }
            let applied: Applied
            do {
                applied = try await Self.apply(room, by: actor, limits: limits, on: connection)
            } catch let refusal as APIError {
                return Applied(result: .failure(refusal), events: [])
            }
            if let logged = applied.logged {
                try await connection.query("INSERT INTO room_commands (entry, result) VALUES ($1, $2)", [.string(entry), .string(logged)])
                // A redelivery comes within minutes; a day of log is plenty (an index range, usually empty).
                try await connection.query("DELETE FROM room_commands WHERE applied_at < now() - interval '1 day'")
            }
            try await ShardFence.check(fence, on: connection)
            return applied
        }
        let reply = command.envelope.reply.map { address in
            switch result.result {
            case .success(let json): ChatReply(reply: address, outcome: .ok(json))
            case .failure(let error): ChatReply(reply: address, error: error)
            }
        }
        return CommandOutcome(entryID: command.entryID, reply: reply, events: result.events, roomEvents: result.roomEvents)
    }

    /// What a command did: its result for the caller (or the refusal) and the events to publish.
    private struct Applied {
        var result: Result<JSONValue, APIError>
        var events: [ChatEvent]
        var roomEvents: [RoomEvent]

        init(result: Result<JSONValue, APIError>, events: [ChatEvent], roomEvents: [RoomEvent] = []) {
            self.result = result
            self.events = events
            self.roomEvents = roomEvents
        }

        /// A success as `room_commands` keeps it: `{"result", "events": [[user, event, data], ...],
        /// "roomEvents": [[room, except, event, data], ...]}`.
        var logged: String? {
            guard case .success(let json) = result else { return nil }
            let events = JSONValue.array(events.map { .array([.int($0.userID), .string($0.name), $0.data]) })
            let roomEvents = JSONValue.array(roomEvents.map {
                .array([.int($0.roomID), $0.except.map { .int($0) } ?? .null, .string($0.event.name), $0.data])
            })
            return JSONValue.object(["result": json, "events": events, "roomEvents": roomEvents]).jsonString
        }

        /// A logged success read back (nil when the text is not one).
        init?(logged text: String) {
            guard let json = try? JSONParser.parse(Array(text.utf8)), let result = json["result"] else { return nil }
            func event(_ name: JSONValue) -> SocketEvent? { name.stringValue.flatMap { name in SocketEvent.server.first { $0.name == name } } }
            var events: [ChatEvent] = []
            for item in json["events"]?.arrayValue ?? [] {
                guard let parts = item.arrayValue, parts.count == 3, let user = parts[0].int64Value, let name = event(parts[1]) else { continue }
                events.append(ChatEvent(userID: user, event: name, data: parts[2]))
            }
            var roomEvents: [RoomEvent] = []
            for item in json["roomEvents"]?.arrayValue ?? [] {
                guard let parts = item.arrayValue, parts.count == 4, let room = parts[0].int64Value, let name = event(parts[2]) else { continue }
                roomEvents.append(RoomEvent(roomID: room, event: name, data: parts[3], except: parts[1].int64Value))
            }
            self.init(result: .success(result), events: events, roomEvents: roomEvents)
        }
    }

    // MARK: The commands

    /// The configured limits.
    private struct Limits {
        var members: Int
        var roomsPerUser: Int
    }

    private static func apply(_ command: RoomCommand, by actor: Int64, limits: Limits, on connection: PostgresConnection) async throws -> Applied {
        let memberLimit = limits.members
        if case .create(let name, let description, let isPrivate) = command {
            try await checkRoomCount(of: actor, limit: limits.roomsPerUser, on: connection)
            return try await create(name: name, description: description, isPrivate: isPrivate, by: actor, on: connection)
        }
        guard let roomID = command.roomID, let room = try await lockRoom(roomID, on: connection) else {
            throw APIError(.roomNotFound)
        }
        let actorRole = try await Self.role(of: actor, in: roomID, on: connection)
        switch command {
        case .create:
            throw APIError(.unsupportedCommand)
        case .join:
            try check(.join, actor: actorRole, room: room, memberLimit: memberLimit)
            try await checkRoomCount(of: actor, limit: limits.roomsPerUser, on: connection)
            return try await addMember(actor, to: room, on: connection)
        case .joinByInvite(_, let code):
            try check(.joinByInvite(codeMatches: room.inviteCode == code), actor: actorRole, room: room, memberLimit: memberLimit)
            try await checkRoomCount(of: actor, limit: limits.roomsPerUser, on: connection)
            return try await addMember(actor, to: room, on: connection)
        case .leave:
            try check(.leave, actor: actorRole, room: room, memberLimit: memberLimit)
            return try await removeMember(actor, role: actorRole ?? .member, from: room, reason: "left", on: connection)
        case .addMember(_, let user):
            let target = try await Self.role(of: user, in: roomID, on: connection)
            try check(.addMember(targetRole: target), actor: actorRole, room: room, memberLimit: memberLimit)
            guard try await connection.query("SELECT 1 FROM users WHERE id = $1", [.int64(user)]).count == 1 else {
                throw APIError(.userNotFound)
            }
            try await checkRoomCount(of: user, limit: limits.roomsPerUser, on: connection)
            return try await addMember(user, to: room, addedBy: actor, on: connection)
        case .removeMember(_, let user):
            let target = try await Self.role(of: user, in: roomID, on: connection)
            try check(.removeMember(targetRole: target, isSelf: user == actor), actor: actorRole, room: room, memberLimit: memberLimit)
            return try await removeMember(user, role: target ?? .member, from: room, reason: user == actor ? "left" : "removed",
                                          on: connection)
        case .changeRole(_, let user, let newRole):
            let target = try await Self.role(of: user, in: roomID, on: connection)
            var facts = room
            facts.adminCount = try await adminCount(roomID, on: connection)
            try check(.changeRole(targetRole: target, to: newRole, isSelf: user == actor), actor: actorRole, room: facts, memberLimit: memberLimit)
            try await connection.query("UPDATE conversation_members SET role = $3 WHERE conversation_id = $1 AND user_id = $2",
                                       [.int64(roomID), .int64(user), .string(newRole.rawValue)])
            let change: JSONValue = ["roomId": .int(roomID), "userId": .int(user), "role": .string(newRole.rawValue), "by": .int(actor)]
            return Applied(result: .success(change), events: [], roomEvents: [RoomEvent(roomID: roomID, event: .memberRoleChanged, data: change)])
        case .update(_, let name, let description, let isPrivate):
            try check(.update, actor: actorRole, room: room, memberLimit: memberLimit)
            var updated = room
            if let name { updated.name = try RoomProfileRules.name(name) }
            if let description { updated.description = try RoomProfileRules.description(description) }
            if let isPrivate { updated.isPrivate = isPrivate }
            if updated.isPrivate, updated.inviteCode == nil { updated.inviteCode = InviteCode.generate() }
            try await connection.query("""
                UPDATE conversations SET name = $2, description = $3, is_private = $4, invite_code = $5 WHERE id = $1
                """, [.int64(roomID), .string(updated.name), updated.description.map { .string($0) }, .bool(updated.isPrivate),
                      updated.inviteCode.map { .string($0) }])
            return Applied(result: .success(updated.json(role: .admin)), events: [],
                           roomEvents: [RoomEvent(roomID: roomID, event: .roomUpdated, data: updated.json(role: nil))])
        case .rotateInvite(_, let revoke):
            try check(.rotateInvite, actor: actorRole, room: room, memberLimit: memberLimit)
            var updated = room
            updated.inviteCode = revoke ? nil : InviteCode.generate()
            try await connection.query("UPDATE conversations SET invite_code = $2 WHERE id = $1",
                                       [.int64(roomID), updated.inviteCode.map { .string($0) }])
            return Applied(result: .success(updated.json(role: .admin)), events: [])
        case .delete:
            try check(.delete, actor: actorRole, room: room, memberLimit: memberLimit)
            try await connection.query("UPDATE conversations SET deleted_at = now(), invite_code = NULL WHERE id = $1", [.int64(roomID)])
            try await connection.query("UPDATE messages SET deleted_at = now() WHERE conversation_id = $1 AND deleted_at IS NULL",
                                       [.int64(roomID)])
            let gone: JSONValue = ["roomId": .int(roomID), "reason": "deleted", "by": .int(actor)]
            return Applied(result: .success(["roomId": .int(roomID), "deleted": true]), events: [],
                           roomEvents: [RoomEvent(roomID: roomID, event: .roomLeft, data: gone)])
        }
    }

    private static func check(_ request: RoomRequest, actor: RoomRole?, room: RoomRecord, memberLimit: Int) throws(APIError) {
        if let code = RoomRules.refusal(of: request, actor: actor, room: room.facts(memberLimit: memberLimit)) { throw APIError(code) }
    }

    private static func create(name: String, description: String?, isPrivate: Bool, by actor: Int64,
                               on connection: PostgresConnection) async throws -> Applied {
        let name = try RoomProfileRules.name(name)
        let description = try RoomProfileRules.description(description)
        let code = isPrivate ? InviteCode.generate() : nil
        let rows = try await connection.query("""
            INSERT INTO conversations AS c (kind, name, description, is_private, invite_code, member_count, created_by)
            VALUES ('room', $1, $2, $3, $4, 1, $5)
            RETURNING \(RoomRecord.columns)
            """, [.string(name), description.map { .string($0) }, .bool(isPrivate), code.map { .string($0) }, .int64(actor)])
        let room = try RoomRecord(rows[0])
        try await connection.query("""
            INSERT INTO conversation_members (conversation_id, user_id, role) VALUES ($1, $2, 'admin')
            """, [.int64(room.id), .int64(actor)])
        let json = room.json(role: .admin)
        return Applied(result: .success(json), events: [ChatEvent(userID: actor, event: .roomJoined, data: json)])
    }

    /// Adds `user` (its read and delivery pointers at the room's last seq: history before the join
    /// is not unread); events to the other members and to the user's devices.
    private static func addMember(_ user: Int64, to room: RoomRecord, addedBy: Int64? = nil, on connection: PostgresConnection) async throws -> Applied {
        try await connection.query("""
            INSERT INTO conversation_members (conversation_id, user_id, role, last_read_seq, last_delivered_seq)
            VALUES ($1, $2, 'member', $3, $3)
            """, [.int64(room.id), .int64(user), .int64(room.lastSeq)])
        try await connection.query("UPDATE conversations SET member_count = member_count + 1 WHERE id = $1", [.int64(room.id)])
        var joined = room
        joined.memberCount += 1
        var change: JSONObject = ["roomId": .int(room.id), "userId": .int(user), "role": "member", "memberCount": .int(Int64(joined.memberCount))]
        if let addedBy { change["by"] = .int(addedBy) }
        let own = joined.json(role: .member)
        return Applied(result: .success(addedBy == nil ? own : .object(change)),
                       events: [ChatEvent(userID: user, event: .roomJoined, data: own)],
                       roomEvents: [RoomEvent(roomID: room.id, event: .memberJoined, data: .object(change), except: user)])
    }

    /// Removes `user` (left or removed): the last admin's departure promotes the oldest member; the
    /// last member's archives the room.
    private static func removeMember(_ user: Int64, role: RoomRole, from room: RoomRecord, reason: String,
                                     on connection: PostgresConnection) async throws -> Applied {
        let others = try await connection.query("""
            SELECT count(*) FILTER (WHERE role = 'admin') AS admins,
                   (SELECT user_id FROM conversation_members WHERE conversation_id = $1 AND user_id <> $2
                    ORDER BY joined_at, user_id LIMIT 1) AS oldest
            FROM conversation_members WHERE conversation_id = $1 AND user_id <> $2
            """, [.int64(room.id), .int64(user)])
        let departure = RoomDeparture.plan(role: role, otherAdmins: Int(try others.int64("admins")),
                                           oldestOther: try others.isNull("oldest") ? nil : try others.int64("oldest"))
        try await connection.query("DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
                                   [.int64(room.id), .int64(user)])
        try await connection.query("UPDATE conversations SET member_count = member_count - 1 WHERE id = $1", [.int64(room.id)])
        var change: JSONObject = ["roomId": .int(room.id), "userId": .int(user), "reason": .string(reason),
                                  "memberCount": .int(Int64(room.memberCount - 1))]
        switch departure {
        case .leaves:
            break
        case .leavesPromoting(let heir):
            try await connection.query("UPDATE conversation_members SET role = 'admin' WHERE conversation_id = $1 AND user_id = $2",
                                       [.int64(room.id), .int64(heir)])
            change["promoted"] = .int(heir)
        case .leavesArchiving:
            try await connection.query("UPDATE conversations SET archived_at = now(), invite_code = NULL WHERE id = $1", [.int64(room.id)])
            change["archived"] = true
        }
        var roomEvents = [RoomEvent(roomID: room.id, event: .memberLeft, data: .object(change), except: user)]
        if case .leavesPromoting(let heir) = departure {
            let promotion: JSONValue = ["roomId": .int(room.id), "userId": .int(heir), "role": "admin"]
            roomEvents.append(RoomEvent(roomID: room.id, event: .memberRoleChanged, data: promotion, except: user))
        }
        return Applied(result: .success(.object(change)),
                       events: [ChatEvent(userID: user, event: .roomLeft, data: ["roomId": .int(room.id), "reason": .string(reason)])],
                       roomEvents: roomEvents)
    }

    /// Refuses (`too_many_rooms`) when `user` is in `limit` rooms already (archived and deleted
    /// ones do not count).
    private static func checkRoomCount(of user: Int64, limit: Int, on connection: PostgresConnection) async throws {
        let rows = try await connection.query("""
            SELECT count(*) AS n FROM (
                SELECT 1 FROM conversation_members me JOIN conversations c ON c.id = me.conversation_id
                WHERE me.user_id = $1 AND c.kind = 'room' AND c.archived_at IS NULL AND c.deleted_at IS NULL
                LIMIT $2) AS mine
            """, [.int64(user), .int(limit)])
        if try rows.int64("n") >= Int64(limit) { throw APIError(.tooManyRooms) }
    }

    // MARK: Reads

    private static func lockRoom(_ id: Int64, on connection: PostgresConnection) async throws -> RoomRecord? {
        let rows = try await connection.query(
            "SELECT \(RoomRecord.columns) FROM conversations c WHERE c.id = $1 AND c.kind = 'room' FOR NO KEY UPDATE", [.int64(id)])
        return rows.isEmpty ? nil : try RoomRecord(rows[0])
    }

    private static func role(of user: Int64, in room: Int64, on connection: PostgresConnection) async throws -> RoomRole? {
        let rows = try await connection.query("SELECT role FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
                                              [.int64(room), .int64(user)])
        return rows.isEmpty ? nil : RoomRole(rawValue: try rows.string("role"))
    }

    private static func adminCount(_ room: Int64, on connection: PostgresConnection) async throws -> Int {
        Int(try await connection.query("SELECT count(*) AS n FROM conversation_members WHERE conversation_id = $1 AND role = 'admin'",
                                       [.int64(room)]).int64("n"))
    }

}
