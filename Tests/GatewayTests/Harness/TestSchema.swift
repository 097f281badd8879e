import Glibc
@testable import Shared

/// A migrated PostgreSQL schema of a test's own on `TEST_DATABASE_URL`: `body` gets a pool whose
/// `search_path` is that schema, which is dropped afterwards. Fails (never skips) without the URL.
@LoopActor
enum TestSchema {
    struct SetupFailure: Error, CustomStringConvertible {
        let description: String
    }

    static func with(_ prefix: String, _ body: (PostgresPool) async throws -> Void) async throws {
        guard let raw = getenv("TEST_DATABASE_URL"), raw.pointee != 0 else {
            throw SetupFailure(description: "TEST_DATABASE_URL is not set: start PostgreSQL and export it")
        }
        let url = String(cString: raw)
        let schema = "\(prefix)_\(UInt32.random(in: 0...UInt32.max))_\(getpid())"
        let admin = PostgresPool(configuration: PostgresPoolConfiguration(url: url, size: 1))
        defer { admin.close() }
        try await admin.query("CREATE SCHEMA \(schema)")
        let database = PostgresPool(configuration: PostgresPoolConfiguration(url: url, size: 1, parameters: ["options": "-c search_path=\(schema)"]))
        do {
            _ = try await PostgresMigrator.migrate(pool: database, migrations: ChatSchema.migrations)
            try await body(database)
        } catch {
            database.close()
            _ = try? await admin.query("DROP SCHEMA \(schema) CASCADE")
            throw error
        }
        database.close()
        try await admin.query("DROP SCHEMA \(schema) CASCADE")
    }
}
