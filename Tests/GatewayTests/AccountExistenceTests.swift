import Glibc
import Testing
@testable import Gateway
@testable import Shared

/// The batched account check of socket CONNECTs against a real PostgreSQL (`TEST_DATABASE_URL`), in
/// a schema of its own.
@Suite struct AccountExistenceTests {
    init() { EventLoop.shared.startInBackground() }

    @Test @LoopActor func concurrentChecksAreAnsweredTogetherAndCorrectly() async throws {
        try await TestSchema.with("accounts") { database in
            var ids: [Int64] = []
            for name in ["alice", "bob", "carol"] {
                let rows = try await database.query("""
                    INSERT INTO users (username, email, password_hash, display_name) VALUES ($1, $2, 'x', $1) RETURNING id
                    """, [.string(name), .string("\(name)@example.com")])
                ids.append(try rows[0].int64("id"))
            }
            let accounts = AccountExistence(database: database)
            // Many checks at once, duplicates included: one query runs, the rest wait for the next one.
            var asked: [Int64] = []
            for index in 0..<60 {
                let unknown: Int64 = 900_000 + Int64(index)
                asked.append(index % 4 == 3 ? unknown : ids[index % 3])
            }
            let checks = asked.map { id in Task { @LoopActor in (try? await accounts.exists(id)) ?? false } }
            var answers: [Bool] = []
            for check in checks { answers.append(await check.value) }
            #expect(answers == asked.map { ids.contains($0) })
            // Deleted since: the next check says so.
            try await database.query("DELETE FROM users WHERE id = $1", [.int64(ids[1])])
            #expect(try await accounts.exists(ids[1]) == false)
            #expect(try await accounts.exists(ids[0]) == true)
        }

        // Without a database every waiting check gets the error, none hangs.
        let down = AccountExistence(database: PostgresPool(configuration: PostgresPoolConfiguration(
            url: "postgresql://chat@127.0.0.1:1/chat", connectTimeout: .milliseconds(500))))
        await #expect(throws: PostgresError.self) { try await down.exists(1) }
    }
}
