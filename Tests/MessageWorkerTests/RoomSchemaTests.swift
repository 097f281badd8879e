import Testing
@testable import MessageWorker
@testable import Shared

/// Migration 6 (rooms, issue 13) against a real PostgreSQL (`TEST_DATABASE_URL`), in a schema of
/// its own: the constraints hold rooms and direct conversations to their own fields.
@Suite(.serialized) struct RoomSchemaTests {
    init() { EventLoop.shared.startInBackground() }

    @Test @LoopActor func roomsHaveTheirFieldsAndDirectConversationsNone() async throws {
        let schema = try await ShardTestServices.Schema(poolSize: 2)
        let pool = schema.pool
        let code = InviteCode.generate()
        let room = try await pool.query("""
            INSERT INTO conversations (kind, name, description, is_private, invite_code, member_count)
            VALUES ('room', 'Team', 'Our room', true, $1, 0) RETURNING id
            """, [.string(code)])
        #expect(room.count == 1)
        // A direct conversation is as before (no room fields).
        _ = try await pool.query("INSERT INTO conversations (kind, direct_key) VALUES ('direct', '1:2')")

        let refused: [String] = [
            "INSERT INTO conversations (kind, member_count) VALUES ('room', 0)",  // no name
            "INSERT INTO conversations (kind, name) VALUES ('room', 'x')",  // no member count
            "INSERT INTO conversations (kind, name, member_count) VALUES ('room', '', 0)",
            "INSERT INTO conversations (kind, name, member_count) VALUES ('room', repeat('x', 101), 0)",
            "INSERT INTO conversations (kind, name, description, member_count) VALUES ('room', 'x', repeat('d', 1001), 0)",
            "INSERT INTO conversations (kind, name, member_count) VALUES ('room', 'x', -1)",
            "INSERT INTO conversations (kind, direct_key, invite_code) VALUES ('direct', '3:4', 'abc')",
            "INSERT INTO conversations (kind, direct_key, is_private) VALUES ('direct', '5:6', true)",
            "INSERT INTO conversations (kind, direct_key, name) VALUES ('direct', '7:8', 'named')",
        ]
        for sql in refused {
            await #expect(throws: PostgresError.self, "\(sql)") { try await pool.query(sql) }
        }
        await #expect(throws: PostgresError.self, "invite codes are unique") {
            try await pool.query("INSERT INTO conversations (kind, name, invite_code, member_count) VALUES ('room', 'Other', $1, 0)",
                                 [.string(code)])
        }
        try await schema.drop()
    }
}
