import Shared

/// Applies a batch of commands (the writes of `MessageBatch`) to PostgreSQL.
@LoopActor
protocol BatchApplier: AnyObject {
    /// Applies every command in one transaction and returns their outcomes in command order.
    func apply(_ commands: [BatchCommand]) async throws -> [CommandOutcome]
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

    /// A store writing through `database`.
    init(database: PostgresPool) {
        self.database = database
    }

    func apply(_ commands: [BatchCommand]) async throws -> [CommandOutcome] {
        var batch = MessageBatch(commands: commands)
        let users = batch.userIDsToCheck
        if !users.isEmpty {
            let rows = try await database.query("SELECT id FROM users WHERE id = ANY($1::bigint[])",
                                                [.string(PostgresArrayLiteral.integers(users))])
            batch.recordExistingUsers(Set(try rows.map { try $0.int64("id") }))
        }
        let inserted = try await database.transaction { connection in
            try await Self.write(&batch, on: connection)
        }
        return try batch.outcomes(inserted: inserted)
    }

    /// Everything between BEGIN and COMMIT; returns the inserted messages.
    private static func write(_ batch: inout MessageBatch, on connection: PostgresConnection) async throws -> [InsertedMessage] {
        var snapshot = BatchSnapshot()
        try await lockConversations(batch, into: &snapshot, on: connection)

        let messageIDs = batch.messageIDs
        if !messageIDs.isEmpty {
            let rows = try await connection.query("""
                SELECT \(ChatMessageRecord.columns) FROM \(ChatMessageRecord.tables) WHERE m.id = ANY($1::bigint[])
                """, [.string(PostgresArrayLiteral.integers(messageIDs))])
            for row in rows {
                let record = try ChatMessageRecord(row: row)
                snapshot.messages[record.id] = record
            }
        }

        let keys = batch.idempotencyKeys
        if !keys.isEmpty {
            let rows = try await connection.query("""
                SELECT \(ChatMessageRecord.columns), c.last_seq AS conversation_last_seq
                FROM \(ChatMessageRecord.tables)
                JOIN unnest($1::bigint[], $2::text[]) AS k(sender_id, client_msg_id)
                  ON m.sender_id = k.sender_id AND m.client_msg_id = k.client_msg_id
                """, [.string(PostgresArrayLiteral.integers(keys.map(\.senderID))), .string(PostgresArrayLiteral.texts(keys.map(\.clientMsgID)))])
            for row in rows {
                let record = try ChatMessageRecord(row: row)
                snapshot.existing[IdempotencyKey(senderID: record.senderID, clientMsgID: record.clientMsgID)] =
                    (record: record, conversationLastSeq: try row.int64("conversation_last_seq"))
            }
        }

        let members = batch.memberKeys(snapshot)
        if !members.isEmpty {
            let rows = try await connection.query("""
                SELECT cm.conversation_id, cm.user_id, cm.last_read_seq
                FROM conversation_members cm
                JOIN unnest($1::bigint[], $2::bigint[]) AS k(conversation_id, user_id)
                  ON cm.conversation_id = k.conversation_id AND cm.user_id = k.user_id
                ORDER BY cm.conversation_id, cm.user_id
                FOR NO KEY UPDATE OF cm
                """, [.string(PostgresArrayLiteral.integers(members.map(\.conversationID))),
                      .string(PostgresArrayLiteral.integers(members.map(\.userID)))])
            for row in rows {
                snapshot.pointers[MemberKey(conversationID: try row.int64("conversation_id"), userID: try row.int64("user_id"))] =
                    try row.int64("last_read_seq")
            }
        }

        let totalUsers = batch.totalUserIDs(snapshot)
        if !totalUsers.isEmpty {
            let rows = try await connection.query("""
                SELECT cm.user_id, sum(\(Unread.sqlExpression))::bigint AS unread
                FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
                WHERE cm.user_id = ANY($1::bigint[])
                GROUP BY cm.user_id
                """, [.string(PostgresArrayLiteral.integers(totalUsers))])
            for row in rows { snapshot.totals[try row.int64("user_id")] = try row.int64("unread") }
        }

        let writes = batch.plan(snapshot)

        var inserted: [InsertedMessage] = []
        if !writes.messages.isEmpty {
            let rows = try await connection.query("""
                INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, type, content, attachment_url)
                SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
                RETURNING id, conversation_id, seq, floor(extract(epoch FROM created_at) * 1000)::bigint AS created_ms
                """, [
                    .string(PostgresArrayLiteral.integers(writes.messages.map(\.conversationID))),
                    .string(PostgresArrayLiteral.integers(writes.messages.map(\.seq))),
                    .string(PostgresArrayLiteral.integers(writes.messages.map(\.senderID))),
                    .string(PostgresArrayLiteral.texts(writes.messages.map(\.clientMsgID))),
                    .string(PostgresArrayLiteral.texts(writes.messages.map(\.type.rawValue))),
                    .string(PostgresArrayLiteral.texts(writes.messages.map(\.content))),
                    .string(PostgresArrayLiteral.texts(writes.messages.map(\.attachmentURL))),
                ])
            inserted = try rows.map { row throws(PostgresError) in
                InsertedMessage(id: try row.int64("id"), conversationID: try row.int64("conversation_id"),
                                seq: try row.int64("seq"), createdAtMilliseconds: try row.int64("created_ms"))
            }
            let heads = batch.conversationUpdates(inserted: inserted)
            try await connection.query("""
                UPDATE conversations c
                SET last_seq = t.last_seq, last_message_id = t.message_id, last_message_at = now()
                FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS t(id, last_seq, message_id)
                WHERE c.id = t.id
                """, [.string(PostgresArrayLiteral.integers(heads.map(\.conversationID))),
                      .string(PostgresArrayLiteral.integers(heads.map(\.lastSeq))),
                      .string(PostgresArrayLiteral.integers(heads.map(\.lastMessageID)))])
        }

        if !writes.pointers.isEmpty {
            // GREATEST: a pointer never moves backwards, whatever the plan says.
            try await connection.query("""
                UPDATE conversation_members cm
                SET last_read_seq = GREATEST(cm.last_read_seq, t.seq)
                FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS t(conversation_id, user_id, seq)
                WHERE cm.conversation_id = t.conversation_id AND cm.user_id = t.user_id
                """, [.string(PostgresArrayLiteral.integers(writes.pointers.map(\.key.conversationID))),
                      .string(PostgresArrayLiteral.integers(writes.pointers.map(\.key.userID))),
                      .string(PostgresArrayLiteral.integers(writes.pointers.map(\.lastReadSeq)))])
        }
        return inserted
    }

    /// Finds, creates (sends only) and locks the batch's direct conversations.
    private static func lockConversations(_ batch: MessageBatch, into snapshot: inout BatchSnapshot, on connection: PostgresConnection) async throws {
        let keys = batch.conversationKeys
        guard !keys.isEmpty else { return }
        try await selectConversations(keys, into: &snapshot, on: connection)

        let missing = batch.conversationsToCreate.filter { snapshot.conversations[$0.directKey] == nil }
        guard !missing.isEmpty else { return }
        // Sorted by key, so two workers creating the same pairs take the unique-index locks in one order.
        let created = try await connection.query("""
            INSERT INTO conversations (kind, direct_key, created_by)
            SELECT 'direct', k, u FROM unnest($1::text[], $2::bigint[]) AS t(k, u) ORDER BY k
            ON CONFLICT (direct_key) DO NOTHING
            RETURNING id, direct_key, last_seq
            """, [.string(PostgresArrayLiteral.texts(missing.map(\.directKey))),
                  .string(PostgresArrayLiteral.integers(missing.map(\.createdBy)))])
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
            try await connection.query("""
                INSERT INTO conversation_members (conversation_id, user_id)
                SELECT * FROM unnest($1::bigint[], $2::bigint[])
                ON CONFLICT DO NOTHING
                """, [.string(PostgresArrayLiteral.integers(newMembers.map(\.conversationID))),
                      .string(PostgresArrayLiteral.integers(newMembers.map(\.userID)))])
        }
        // Created meanwhile by another worker (its insert won the conflict): now committed, lock it.
        let raced = missing.map(\.directKey).filter { snapshot.conversations[$0] == nil }
        if !raced.isEmpty { try await selectConversations(raced, into: &snapshot, on: connection) }
    }

    private static func selectConversations(_ keys: [String], into snapshot: inout BatchSnapshot, on connection: PostgresConnection) async throws {
        let rows = try await connection.query("""
            SELECT id, direct_key, last_seq FROM conversations
            WHERE direct_key = ANY($1::text[])
            ORDER BY id
            FOR NO KEY UPDATE
            """, [.string(PostgresArrayLiteral.texts(keys))])
        for row in rows {
            snapshot.conversations[try row.string("direct_key")] = (id: try row.int64("id"), lastSeq: try row.int64("last_seq"))
        }
    }
}
