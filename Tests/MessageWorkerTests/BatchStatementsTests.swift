import Testing
@testable import MessageWorker
@testable import Shared

/// The batch's statements: the same SQL text the worker always sent, with each array bound at the
/// position of its placeholder.
@Suite struct BatchStatementsTests {
    private static func integers(_ values: [Int64]) -> PostgresValue? { .string(PostgresArrayLiteral.integers(values)) }
    private static func texts(_ values: [String?]) -> PostgresValue? { .string(PostgresArrayLiteral.texts(values)) }

    @Test func existingUsers() {
        let query = BatchStatements.existingUsers([3, 1])
        #expect(query.sql == "SELECT id FROM users WHERE id = ANY($1::bigint[])")
        #expect(query.parameters == [Self.integers([3, 1])])
    }

    @Test func conversationsAreLockedCreatedAndJoined() {
        let lock = BatchStatements.lockConversations(["1:2", "1:3"])
        #expect(lock.sql == """
            SELECT id, direct_key, last_seq FROM conversations
            WHERE direct_key = ANY($1::text[])
            ORDER BY id
            FOR NO KEY UPDATE
            """)
        #expect(lock.parameters == [Self.texts(["1:2", "1:3"])])

        let create = BatchStatements.createConversations([
            ConversationToCreate(directKey: "1:2", createdBy: 2, members: [1, 2]),
            ConversationToCreate(directKey: "1:3", createdBy: 1, members: [1, 3]),
        ])
        #expect(create.sql == """
            INSERT INTO conversations (kind, direct_key, created_by)
            SELECT 'direct', k, u FROM unnest($1::text[], $2::bigint[]) AS t(k, u) ORDER BY k
            ON CONFLICT (direct_key) DO NOTHING
            RETURNING id, direct_key, last_seq
            """)
        #expect(create.parameters == [Self.texts(["1:2", "1:3"]), Self.integers([2, 1])])

        let members = BatchStatements.addMembers([MemberKey(conversationID: 9, userID: 1), MemberKey(conversationID: 9, userID: 2)])
        #expect(members.sql == """
            INSERT INTO conversation_members (conversation_id, user_id)
            SELECT * FROM unnest($1::bigint[], $2::bigint[])
            ON CONFLICT DO NOTHING
            """)
        #expect(members.parameters == [Self.integers([9, 9]), Self.integers([1, 2])])
    }

    @Test func snapshotReads() {
        let messages = BatchStatements.messages([5, 7])
        #expect(messages.sql == """
            SELECT \(ChatMessageRecord.columns) FROM \(ChatMessageRecord.tables) WHERE m.id = ANY($1::bigint[])
            """)
        #expect(messages.parameters == [Self.integers([5, 7])])

        let stored = BatchStatements.storedSends([IdempotencyKey(senderID: 1, clientMsgID: "a"), IdempotencyKey(senderID: 2, clientMsgID: "b\"")])
        #expect(stored.sql == """
            SELECT m.id, c.last_seq AS conversation_last_seq
            FROM unnest($1::bigint[], $2::text[]) AS k(sender_id, client_msg_id)
            JOIN messages m ON m.sender_id = k.sender_id AND m.client_msg_id = k.client_msg_id
            JOIN conversations c ON c.id = m.conversation_id
            """)
        #expect(stored.parameters == [Self.integers([1, 2]), Self.texts(["a", "b\""])])

        let pointers = BatchStatements.lockMemberships([MemberKey(conversationID: 4, userID: 1), MemberKey(conversationID: 6, userID: 2)])
        #expect(pointers.sql == """
            SELECT cm.conversation_id, cm.user_id, cm.last_read_seq
            FROM conversation_members cm
            JOIN unnest($1::bigint[], $2::bigint[]) AS k(conversation_id, user_id)
              ON cm.conversation_id = k.conversation_id AND cm.user_id = k.user_id
            ORDER BY cm.conversation_id, cm.user_id
            FOR NO KEY UPDATE OF cm
            """)
        #expect(pointers.parameters == [Self.integers([4, 6]), Self.integers([1, 2])])

        let totals = BatchStatements.totalUnread([2, 8])
        #expect(totals.sql == """
            SELECT cm.user_id, sum(\(Unread.sqlExpression))::bigint AS unread
            FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
            WHERE cm.user_id = ANY($1::bigint[])
            GROUP BY cm.user_id
            """)
        #expect(totals.parameters == [Self.integers([2, 8])])
    }

    @Test func insertBindsEveryColumnAtItsPosition() {
        let rows = [
            NewMessageRow(conversationID: 4, seq: 10, senderID: 1, receiverID: 2, clientMsgID: "a", type: .text, content: "hi",
                          attachmentURL: nil),
            NewMessageRow(conversationID: 6, seq: 3, senderID: 2, receiverID: 1, clientMsgID: "b", type: .image, content: "pic",
                          attachmentURL: "https://x/y.png", attachmentName: "y.png", attachmentSize: 1234, mimeType: "image/png"),
        ]
        let query = BatchStatements.insertMessages(rows)
        #expect(query.sql == """
            WITH inserted AS (
            INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, type, content, attachment_url, attachment_name, \
            attachment_size, mime_type)
            SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
            $9::bigint[], $10::text[])
            RETURNING id, conversation_id, seq, created_at
            ), heads AS (
            UPDATE conversations c
            SET last_seq = h.seq, last_message_id = h.id, last_message_at = now()
            FROM (SELECT DISTINCT ON (conversation_id) conversation_id, seq, id FROM inserted ORDER BY conversation_id, seq DESC) AS h
            WHERE c.id = h.conversation_id
            )
            SELECT id, conversation_id, seq, floor(extract(epoch FROM created_at) * 1000)::bigint AS created_ms FROM inserted
            """)
        #expect(query.parameters == [
            Self.integers([4, 6]), Self.integers([10, 3]), Self.integers([1, 2]), Self.texts(["a", "b"]),
            Self.texts([MessageType.text.rawValue, MessageType.image.rawValue]), Self.texts(["hi", "pic"]), Self.texts([nil, "https://x/y.png"]),
            Self.texts([nil, "y.png"]), .string("{NULL,1234}"), Self.texts([nil, "image/png"]),
        ])
    }

    @Test func pointers() {
        let pointers = BatchStatements.movePointers([(key: MemberKey(conversationID: 4, userID: 2), lastReadSeq: 11)])
        #expect(pointers.sql == """
            UPDATE conversation_members cm
            SET last_read_seq = GREATEST(cm.last_read_seq, t.seq), last_delivered_seq = GREATEST(cm.last_delivered_seq, t.seq)
            FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS t(conversation_id, user_id, seq)
            WHERE cm.conversation_id = t.conversation_id AND cm.user_id = t.user_id
            """)
        #expect(pointers.parameters == [Self.integers([4]), Self.integers([2]), Self.integers([11])])

        let deliveries = BatchStatements.moveDeliveries([(key: MemberKey(conversationID: 5, userID: 3), seq: 9)])
        #expect(deliveries.sql == """
            UPDATE conversation_members cm
            SET last_delivered_seq = GREATEST(cm.last_delivered_seq, LEAST(t.seq, c.last_seq))
            FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS t(conversation_id, user_id, seq)
            JOIN conversations c ON c.id = t.conversation_id
            WHERE cm.conversation_id = t.conversation_id AND cm.user_id = t.user_id
            """)
        #expect(deliveries.parameters == [Self.integers([5]), Self.integers([3]), Self.integers([9])])
    }
}
