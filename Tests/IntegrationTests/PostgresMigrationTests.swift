import Testing
@testable import Shared

/// `PostgresMigrator` against a real server, each test in a schema of its own.
@Suite struct PostgresMigrationTests {
    init() { EventLoop.shared.startInBackground() }

    private static let migrations = [
        PostgresMigration(version: 1, name: "create_notes", sql: """
            CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL);
            CREATE TABLE applied_log (version int NOT NULL);
            INSERT INTO applied_log VALUES (1);
            """),
        PostgresMigration(version: 2, name: "add_author", sql: """
            ALTER TABLE notes ADD COLUMN author text;
            INSERT INTO applied_log VALUES (2);
            """),
        PostgresMigration(version: 5, name: "index_author", sql: """
            CREATE INDEX notes_author_idx ON notes (author);
            INSERT INTO applied_log VALUES (5);
            """),
    ]

    /// A fresh schema and a pool factory whose connections use it as `search_path`.
    @LoopActor
    private struct Sandbox {
        let url: String
        let schema: String
        let admin: PostgresPool
        let lockKey = Int64.random(in: 1...Int64.max)

        init() async throws {
            url = try PostgresTestDatabase.url()
            schema = PostgresTestDatabase.uniqueName("pgmig")
            admin = PostgresPool(configuration: PostgresPoolConfiguration(url: url, size: 1))
            try await admin.query("CREATE SCHEMA \(schema)")
        }

        func pool() -> PostgresPool {
            PostgresPool(configuration: PostgresPoolConfiguration(
                url: url, size: 2, parameters: ["options": "-c search_path=\(schema)"]))
        }

        func count(_ sql: String) async throws -> Int64 {
            try await admin.query("SELECT count(*) AS n FROM \(schema).\(sql)").int64("n")
        }

        func drop() async throws {
            try await admin.query("DROP SCHEMA \(schema) CASCADE")
            admin.close()
        }
    }

    @Test @LoopActor func appliesMissingMigrationsOnce() async throws {
        let sandbox = try await Sandbox()
        let pool = sandbox.pool()
        defer { pool.close() }
        #expect(try await PostgresMigrator.migrate(pool: pool, migrations: Array(Self.migrations.prefix(2)), lockKey: sandbox.lockKey) == [1, 2])
        #expect(try await PostgresMigrator.migrate(pool: pool, migrations: Array(Self.migrations.prefix(2)), lockKey: sandbox.lockKey) == [])
        #expect(try await PostgresMigrator.migrate(pool: pool, migrations: Self.migrations, lockKey: sandbox.lockKey) == [5])
        #expect(try await PostgresMigrator.migrate(pool: pool, migrations: Self.migrations, lockKey: sandbox.lockKey) == [])
        let recorded = try await pool.query("SELECT version, name FROM schema_migrations ORDER BY version")
        #expect(try recorded.map { try $0.int("version") } == [1, 2, 5])
        #expect(try recorded.string("name", 2) == "index_author")
        #expect(try await sandbox.count("applied_log") == 3)
        #expect(pool.statistics.leased == 0)
        try await sandbox.drop()
    }

    @Test @LoopActor func concurrentMigratorsApplyEachVersionExactlyOnce() async throws {
        let sandbox = try await Sandbox()
        let pools = (0..<3).map { _ in sandbox.pool() }
        defer { for pool in pools { pool.close() } }
        let lockKey = sandbox.lockKey
        let tasks = pools.map { pool in
            Task { @LoopActor in try await PostgresMigrator.migrate(pool: pool, migrations: Self.migrations, lockKey: lockKey) }
        }
        var results: [[Int]] = []
        for task in tasks { results.append(try await task.value) }
        #expect(results.flatMap { $0 }.sorted() == [1, 2, 5])
        #expect(results.filter { !$0.isEmpty }.count == 1)
        #expect(try await sandbox.count("applied_log") == 3)
        #expect(try await sandbox.count("schema_migrations") == 3)
        try await sandbox.drop()
    }

    @Test @LoopActor func failingMigrationRollsBackAndReleasesTheLock() async throws {
        let sandbox = try await Sandbox()
        let pool = sandbox.pool()
        defer { pool.close() }
        var broken = Self.migrations
        broken[1].sql = "ALTER TABLE notes ADD COLUMN author text; INSERT INTO applied_log VALUES (2); SELECT 1/0;"
        let error = await PostgresTestDatabase.error {
            try await PostgresMigrator.migrate(pool: pool, migrations: broken, lockKey: sandbox.lockKey)
        }
        guard case .server(let serverError) = error else {
            Issue.record("expected a server error, got \(String(describing: error))")
            return
        }
        #expect(serverError.sqlState == "22012")  // division_by_zero
        #expect(serverError.message.hasPrefix("migration 2 (add_author)"))
        #expect(try await sandbox.count("schema_migrations") == 1)
        #expect(try await sandbox.count("applied_log") == 1)
        // The lock was released: a fixed set of migrations proceeds at once (a held lock would time out).
        let applied = try await PostgresMigrator.migrate(pool: pool, migrations: Self.migrations, lockKey: sandbox.lockKey,
                                                         timeout: .milliseconds(2_000))
        #expect(applied == [2, 5])
        try await sandbox.drop()
    }

    @Test @LoopActor func invalidMigrationListIsRefusedBeforeTouchingTheDatabase() async throws {
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(url: "postgresql://nobody@127.0.0.1:1/none"))
        defer { pool.close() }
        let error = await PostgresTestDatabase.error {
            try await PostgresMigrator.migrate(pool: pool, migrations: [Self.migrations[1], Self.migrations[0]])
        }
        guard case .misuse = error else {
            Issue.record("expected misuse, got \(String(describing: error))")
            return
        }
    }
}
