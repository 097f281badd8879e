import Shared

/// The statements of a batch, each built with its parameters in place (`PostgresQuery`): arrays
/// travel as one parameter each and are `unnest`ed, so the statement count is fixed whatever the
/// batch size. `BatchStore` runs them; `MessageBatch` decides what goes in them.
enum BatchStatements {
    /// Which of `ids` are users (run before the transaction).
    static func existingUsers(_ ids: [Int64]) -> PostgresQuery {
        "SELECT id FROM users WHERE id = ANY(\(integers: ids))"
    }

    // MARK: Reads, under locks where the plan depends on them

    /// The direct conversations of `keys`, locked in id order (the global lock order).
    static func lockConversations(_ keys: [String]) -> PostgresQuery {
        """
        SELECT id, direct_key, last_seq FROM conversations
        WHERE direct_key = ANY(\(texts: keys))
        ORDER BY id
        FOR NO KEY UPDATE
        """
    }

    /// The rooms of `ids` that are not archived or deleted, locked in id order (issue 13).
    static func lockRooms(_ ids: [Int64]) -> PostgresQuery {
        """
        SELECT id, last_seq, is_private FROM conversations
        WHERE id = ANY(\(integers: ids)) AND kind = 'room' AND archived_at IS NULL AND deleted_at IS NULL
        ORDER BY id
        FOR NO KEY UPDATE
        """
    }

    /// Creates the missing direct conversations, in key order so two workers creating the same
    /// pairs take the unique-index locks in one order; a pair another worker created meanwhile is
    /// skipped (and then locked by `lockConversations`).
    static func createConversations(_ missing: [ConversationToCreate]) -> PostgresQuery {
        """
        INSERT INTO conversations (kind, direct_key, created_by)
        SELECT 'direct', k, u FROM unnest(\(texts: missing.map(\.directKey)), \(integers: missing.map(\.createdBy))) AS t(k, u) ORDER BY k
        ON CONFLICT (direct_key) DO NOTHING
        RETURNING id, direct_key, last_seq
        """
    }

    /// The members of the conversations just created.
    static func addMembers(_ members: [MemberKey]) -> PostgresQuery {
        """
        INSERT INTO conversation_members (conversation_id, user_id)
        SELECT * FROM unnest(\(integers: members.map(\.conversationID)), \(integers: members.map(\.userID)))
        ON CONFLICT DO NOTHING
        """
    }

    /// The messages read commands name.
    static func messages(_ ids: [Int64]) -> PostgresQuery {
        """
        SELECT \(unescaped: ChatMessageRecord.columns) FROM \(unescaped: ChatMessageRecord.tables) WHERE m.id = ANY(\(integers: ids))
        """
    }

    /// The ids of the messages already stored under the sends' idempotency keys, with their
    /// conversation's `last_seq`. Only ids: a repeat is rare, and the full record's columns
    /// (correlated subqueries for reactions and read state) cost more to plan than the probes
    /// cost to run; `messages` fetches the repeats' records.
    static func storedSends(_ keys: [IdempotencyKey]) -> PostgresQuery {
        """
        SELECT m.id, c.last_seq AS conversation_last_seq
        FROM unnest(\(integers: keys.map(\.senderID)), \(texts: keys.map(\.clientMsgID))) AS k(sender_id, client_msg_id)
        JOIN messages m ON m.sender_id = k.sender_id AND m.client_msg_id = k.client_msg_id
        JOIN conversations c ON c.id = m.conversation_id
        """
    }

    /// The read pointers of `members`, locked in (conversation, user) order.
    static func lockMemberships(_ members: [MemberKey]) -> PostgresQuery {
        """
        SELECT cm.conversation_id, cm.user_id, cm.last_read_seq
        FROM conversation_members cm
        JOIN unnest(\(integers: members.map(\.conversationID)), \(integers: members.map(\.userID))) AS k(conversation_id, user_id)
          ON cm.conversation_id = k.conversation_id AND cm.user_id = k.user_id
        ORDER BY cm.conversation_id, cm.user_id
        FOR NO KEY UPDATE OF cm
        """
    }

    /// Each user's unread messages over all conversations.
    static func totalUnread(_ users: [Int64]) -> PostgresQuery {
        """
        SELECT cm.user_id, sum(\(unescaped: Unread.sqlExpression))::bigint AS unread
        FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
        WHERE cm.user_id = ANY(\(integers: users))
        GROUP BY cm.user_id
        """
    }

    // MARK: Writes of the plan

    /// The new messages, seqs assigned, and in the same statement each conversation's new head
    /// (`last_seq` and `last_message_id`: its inserted row with the highest seq; the rows are
    /// locked already); returns the messages' ids and creation times. One round trip, not two.
    static func insertMessages(_ rows: [NewMessageRow]) -> PostgresQuery {
        """
        WITH inserted AS (
        INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, type, content, attachment_url, attachment_name, \
        attachment_size, mime_type)
        SELECT * FROM unnest(\(integers: rows.map(\.conversationID)), \(integers: rows.map(\.seq)), \
        \(integers: rows.map(\.senderID)), \(texts: rows.map(\.clientMsgID)), \(texts: rows.map(\.type.rawValue)), \
        \(texts: rows.map(\.content)), \(texts: rows.map(\.attachmentURL)), \(texts: rows.map(\.attachmentName)), \
        \(integers: rows.map(\.attachmentSize)), \(texts: rows.map(\.mimeType)))
        RETURNING id, conversation_id, seq, created_at
        ), heads AS (
        UPDATE conversations c
        SET last_seq = h.seq, last_message_id = h.id, last_message_at = now()
        FROM (SELECT DISTINCT ON (conversation_id) conversation_id, seq, id FROM inserted ORDER BY conversation_id, seq DESC) AS h
        WHERE c.id = h.conversation_id
        )
        SELECT id, conversation_id, seq, floor(extract(epoch FROM created_at) * 1000)::bigint AS created_ms FROM inserted
        """
    }

    /// Moves read pointers forward; `GREATEST`: a pointer never moves backwards, whatever the plan says.
    static func movePointers(_ pointers: [(key: MemberKey, lastReadSeq: Int64)]) -> PostgresQuery {
        """
        UPDATE conversation_members cm
        SET last_read_seq = GREATEST(cm.last_read_seq, t.seq), last_delivered_seq = GREATEST(cm.last_delivered_seq, t.seq)
        FROM unnest(\(integers: pointers.map(\.key.conversationID)), \(integers: pointers.map(\.key.userID)), \
        \(integers: pointers.map(\.lastReadSeq))) AS t(conversation_id, user_id, seq)
        WHERE cm.conversation_id = t.conversation_id AND cm.user_id = t.user_id
        """
    }

    /// Moves delivery pointers forward, never back and never past the conversation's last message
    /// (a device cannot have received what does not exist).
    static func moveDeliveries(_ deliveries: [(key: MemberKey, seq: Int64)]) -> PostgresQuery {
        """
        UPDATE conversation_members cm
        SET last_delivered_seq = GREATEST(cm.last_delivered_seq, LEAST(t.seq, c.last_seq))
        FROM unnest(\(integers: deliveries.map(\.key.conversationID)), \(integers: deliveries.map(\.key.userID)), \
        \(integers: deliveries.map(\.seq))) AS t(conversation_id, user_id, seq)
        JOIN conversations c ON c.id = t.conversation_id
        WHERE cm.conversation_id = t.conversation_id AND cm.user_id = t.user_id
        """
    }
}
