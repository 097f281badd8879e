import Shared

/// Applies a batch of commands (the writes of `MessageBatch`) to PostgreSQL.
@LoopActor
protocol BatchApplier: AnyObject {
    /// Applies every command in one transaction and returns their outcomes in command order. The
    /// transaction commits only if every shard in `fence` is still at its epoch (else it throws
    /// `ShardFence.Fenced` and nothing is written).
    func apply(_ commands: [BatchCommand], fence: [Int: Int64]) async throws -> [CommandOutcome]
}

/// The SQL of a batch: one transaction, a fixed number of set-based statements whatever the batch
/// size (arrays travel as single parameters and are `unnest`ed).
///
/// Locks are taken in one global order — conversations by id, then memberships by
/// (conversation, user) — so concurrent workers wait for each other instead of deadlocking
/// (PostgreSQL would detect and abort one; `BatchFailure.conflict` retries it). The conversation
/// row lock serializes every writer of a conversation, which makes its `seq` gap-free and ordered.
@LoopActor
final class BatchStore: BatchApplier {
    private let database: PostgresPool
    private let rooms: RoomStore
    private let changes: MessageChangeStore

    /// A store writing through `database`; rooms take at most `roomMemberLimit` members, a user
    /// joins at most `roomsPerUser` rooms, a message may be edited for `editWindow` (zero: always).
    init(database: PostgresPool, roomMemberLimit: Int = RoomDefaults.memberLimit, roomsPerUser: Int = RoomDefaults.roomsPerUser,
         editWindow: Duration = .milliseconds(172_800_000)) {
        self.database = database
        rooms = RoomStore(database: database, memberLimit: roomMemberLimit, roomsPerUser: roomsPerUser)
        changes = MessageChangeStore(database: database, editWindow: editWindow)
    }

    /// Messages and reads go in one transaction per run of them; each room command and each edit
    /// or delete (rare) in a transaction of its own, in stream order between them, so a room's
    /// membership changes and its messages are applied in the order they were sent.
    func apply(_ commands: [BatchCommand], fence: [Int: Int64]) async throws -> [CommandOutcome] {
        var outcomes: [CommandOutcome] = []
        var run: [BatchCommand] = []
        for command in commands {
            guard command.isRoomCommand || command.isMessageChange else {
                run.append(command)
                continue
            }
            if !run.isEmpty { outcomes += try await applyMessages(run, fence: fence) }
            run = []
            if command.isRoomCommand {
                outcomes.append(try await rooms.apply(command, fence: fence))
            } else {
                outcomes.append(try await changes.apply(command, fence: fence))
            }
        }
        if !run.isEmpty { outcomes += try await applyMessages(run, fence: fence) }
        return outcomes
    }

    private func applyMessages(_ commands: [BatchCommand], fence: [Int: Int64]) async throws -> [CommandOutcome] {
        var batch = MessageBatch(commands: commands)
        let users = batch.userIDsToCheck
        if !users.isEmpty {
            let rows = try await database.query(BatchStatements.existingUsers(users))
            batch.recordExistingUsers(Set(try rows.map { try $0.int64("id") }))
        }
        let inserted = try await database.transaction { connection in
            let inserted = try await Self.write(&batch, on: connection)
            try await ShardFence.check(fence, on: connection)
            return inserted
        }
        return try batch.outcomes(inserted: inserted)
    }

    /// Everything between BEGIN and COMMIT: read and lock, plan, write. Returns the inserted messages.
    private static func write(_ batch: inout MessageBatch, on connection: PostgresConnection) async throws -> [InsertedMessage] {
        let snapshot = try await readSnapshot(for: batch, on: connection)
        let writes = batch.plan(snapshot)
        var inserted: [InsertedMessage] = []
        if !writes.messages.isEmpty {
            inserted = try await insertMessages(writes.messages, on: connection)  // and the conversations' heads
        }
        if !writes.pointers.isEmpty {
            try await connection.query(BatchStatements.movePointers(writes.pointers))
        }
        if !writes.deliveries.isEmpty {
            try await connection.query(BatchStatements.moveDeliveries(writes.deliveries))
        }
        return inserted
    }

    // MARK: Reading the snapshot

    /// What the plan depends on, read in lock order: conversations (created when missing), the
    /// messages named, stored sends, then the memberships and totals those lead to.
    private static func readSnapshot(for batch: MessageBatch, on connection: PostgresConnection) async throws -> BatchSnapshot {
        var snapshot = BatchSnapshot()
        try await lockConversations(batch, into: &snapshot, on: connection)
        try await lockRooms(batch.roomIDs, into: &snapshot, on: connection)
        snapshot.messages = try await messages(batch.messageIDs, on: connection)
        snapshot.existing = try await storedSends(batch.idempotencyKeys, on: connection)
        snapshot.pointers = try await lockMemberships(batch.memberKeys(snapshot), on: connection)
        snapshot.totals = try await totalUnread(batch.totalUserIDs(snapshot), on: connection)
        return snapshot
    }

    /// Finds, creates (sends only) and locks the batch's direct conversations.
    private static func lockConversations(_ batch: MessageBatch, into snapshot: inout BatchSnapshot, on connection: PostgresConnection) async throws {
        let keys = batch.conversationKeys
        guard !keys.isEmpty else { return }
        try await selectConversations(keys, into: &snapshot, on: connection)

        let missing = batch.conversationsToCreate.filter { snapshot.conversations[$0.directKey] == nil }
        guard !missing.isEmpty else { return }
        let created = try await connection.query(BatchStatements.createConversations(missing))
        var newMembers: [MemberKey] = []
        for row in created {
            let id = try row.int64("id")
            let key = try row.string("direct_key")
            snapshot.conversations[key] = (id: id, lastSeq: try row.int64("last_seq"))
            for user in missing.first(where: { $0.directKey == key })?.members ?? [] {
                newMembers.append(MemberKey(conversationID: id, userID: user))
            }
        }
        if !newMembers.isEmpty {
            try await connection.query(BatchStatements.addMembers(newMembers))
        }
        // Created meanwhile by another worker (its insert won the conflict): now committed, lock it.
        let raced = missing.map(\.directKey).filter { snapshot.conversations[$0] == nil }
        if !raced.isEmpty { try await selectConversations(raced, into: &snapshot, on: connection) }
    }

    private static func selectConversations(_ keys: [String], into snapshot: inout BatchSnapshot, on connection: PostgresConnection) async throws {
        for row in try await connection.query(BatchStatements.lockConversations(keys)) {
            snapshot.conversations[try row.string("direct_key")] = (id: try row.int64("id"), lastSeq: try row.int64("last_seq"))
        }
    }

    /// Locks the rooms the batch sends in, when not gone (issue 13). Their members are not read:
    /// a room message is published once, on the room's channel.
    private static func lockRooms(_ ids: [Int64], into snapshot: inout BatchSnapshot, on connection: PostgresConnection) async throws {
        guard !ids.isEmpty else { return }
        for row in try await connection.query(BatchStatements.lockRooms(ids)) {
            snapshot.rooms[try row.int64("id")] = (lastSeq: try row.int64("last_seq"), isPrivate: try row.bool("is_private"))
        }
    }

    /// The messages read commands name, by id.
    private static func messages(_ ids: [Int64], on connection: PostgresConnection) async throws -> [Int64: ChatMessageRecord] {
        var messages: [Int64: ChatMessageRecord] = [:]
        guard !ids.isEmpty else { return messages }
        for row in try await connection.query(BatchStatements.messages(ids)) {
            let record = try ChatMessageRecord(row: row)
            messages[record.id] = record
        }
        return messages
    }

    /// Messages already stored under the sends' idempotency keys.
    private static func storedSends(
        _ keys: [IdempotencyKey], on connection: PostgresConnection
    ) async throws -> [IdempotencyKey: (record: ChatMessageRecord, conversationLastSeq: Int64)] {
        var stored: [IdempotencyKey: (record: ChatMessageRecord, conversationLastSeq: Int64)] = [:]
        guard !keys.isEmpty else { return stored }
        var lastSeqs: [Int64: Int64] = [:]
        for row in try await connection.query(BatchStatements.storedSends(keys)) {
            lastSeqs[try row.int64("id")] = try row.int64("conversation_last_seq")
        }
        guard !lastSeqs.isEmpty else { return stored }
        for (id, record) in try await messages(Array(lastSeqs.keys).sorted(), on: connection) {
            stored[IdempotencyKey(senderID: record.senderID, clientMsgID: record.clientMsgID)] =
                (record: record, conversationLastSeq: lastSeqs[id] ?? record.seq)
        }
        return stored
    }

    /// The read pointers of the memberships, locked (absent: not a member).
    private static func lockMemberships(_ members: [MemberKey], on connection: PostgresConnection) async throws -> [MemberKey: Int64] {
        var pointers: [MemberKey: Int64] = [:]
        guard !members.isEmpty else { return pointers }
        for row in try await connection.query(BatchStatements.lockMemberships(members)) {
            pointers[MemberKey(conversationID: try row.int64("conversation_id"), userID: try row.int64("user_id"))] =
                try row.int64("last_read_seq")
        }
        return pointers
    }

    /// Each user's total unread count before the batch.
    private static func totalUnread(_ users: [Int64], on connection: PostgresConnection) async throws -> [Int64: Int64] {
        var totals: [Int64: Int64] = [:]
        guard !users.isEmpty else { return totals }
        for row in try await connection.query(BatchStatements.totalUnread(users)) { totals[try row.int64("user_id")] = try row.int64("unread") }
        return totals
    }

    // MARK: Writing the plan

    /// Inserts the planned rows and moves their conversations' heads; returns what `RETURNING` gave back.
    private static func insertMessages(_ rows: [NewMessageRow], on connection: PostgresConnection) async throws -> [InsertedMessage] {
        try await connection.query(BatchStatements.insertMessages(rows)).map { row throws(PostgresError) in
            InsertedMessage(id: try row.int64("id"), conversationID: try row.int64("conversation_id"),
                            seq: try row.int64("seq"), createdAtMilliseconds: try row.int64("created_ms"))
        }
    }
}
