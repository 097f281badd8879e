import Runtime

/// One versioned schema change. `sql` may hold several statements but no transaction control
/// (`BEGIN`/`COMMIT`) and nothing that refuses to run in a transaction (`CREATE INDEX CONCURRENTLY`):
/// the migrator wraps it in a transaction of its own.
package struct PostgresMigration: Sendable, Equatable {
    /// Position in the sequence; versions are unique and strictly increasing.
    package var version: Int
    /// Short description, stored in `schema_migrations`.
    package var name: String
    /// The script.
    package var sql: String

    /// Creates a migration.
    package init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// Applies versioned migrations at start-up, safely when many processes start at once.
///
/// On one connection: take a session advisory lock (other processes wait here), make sure
/// `schema_migrations` exists, read which versions it lists, and apply each missing migration in
/// its own transaction together with its `schema_migrations` row; then unlock. If anything fails
/// the lock is released (by `pg_advisory_unlock`, or by closing the session) and the error is
/// rethrown; migrations applied before the failure stay applied. Versions recorded in the database
/// but unknown to this code (a newer release ran) are ignored, so rolling deploys keep working.
package enum PostgresMigrator {
    /// The advisory lock key shared by every process of this application (arbitrary, fixed).
    package static let defaultLockKey: Int64 = 0x0C4A_7D15_3E9B_2F01

    /// The bookkeeping table.
    package static let createTableSQL = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """

    /// Checks that versions are positive, unique and strictly increasing (a programming error otherwise).
    package static func validate(_ migrations: [PostgresMigration]) throws(PostgresError) {
        var previous: PostgresMigration?
        for migration in migrations {
            guard migration.version > 0 else {
                throw .misuse("migration \"\(migration.name)\" has version \(migration.version); versions start at 1")
            }
            guard migration.version <= Int(Int32.max) else {
                throw .misuse("migration \"\(migration.name)\" has version \(migration.version), beyond integer range")
            }
            if let previous, migration.version <= previous.version {
                throw .misuse("""
                    migration \(migration.version) (\(migration.name)) must come after \(previous.version) \
                    (\(previous.name)): versions must be unique and strictly increasing
                    """)
            }
            previous = migration
        }
    }

    /// Applies the missing `migrations` in order; returns the versions applied by this call
    /// (empty when the schema was already current). `timeout` bounds each statement,
    /// including the wait for the lock while another process migrates.
    @discardableResult
    @LoopActor
    package static func migrate(
        pool: PostgresPool, migrations: [PostgresMigration], lockKey: Int64 = defaultLockKey,
        timeout: Duration = PostgresDefaults.migrationTimeout
    ) async throws(PostgresError) -> [Int] {
        try validate(migrations)
        let connection = try await pool.acquire()
        do {
            try await connection.query("SELECT pg_advisory_lock($1)", [.int64(lockKey)], timeout: timeout)
        } catch {
            pool.release(connection)
            throw error
        }
        do {
            let applied = try await applyMissing(migrations, on: connection, timeout: timeout)
            await unlock(connection, key: lockKey)
            pool.release(connection)
            return applied
        } catch {
            await unlock(connection, key: lockKey)
            pool.release(connection)
            throw error
        }
    }

    @LoopActor
    private static func applyMissing(
        _ migrations: [PostgresMigration], on connection: PostgresConnection, timeout: Duration
    ) async throws(PostgresError) -> [Int] {
        try await connection.query(createTableSQL, timeout: timeout)
        let rows = try await connection.query("SELECT version FROM schema_migrations")
        let done = Set(try rows.map { row throws(PostgresError) in try row.int("version") })
        var applied: [Int] = []
        for migration in migrations where !done.contains(migration.version) {
            do throws(PostgresError) {
                try await connection.query("BEGIN")
                try await connection.execute(script: migration.sql, timeout: timeout)
                try await connection.query(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    [.int(migration.version), .string(migration.name)])
                let commit = try await connection.query("COMMIT", timeout: timeout)
                if commit.commandTag == "ROLLBACK" {
                    throw PostgresError.server(PostgresServerError(
                        sqlState: PostgresSQLState.inFailedSQLTransaction,
                        message: "transaction rolled back at COMMIT"))
                }
            } catch {
                await connection.rollback()
                throw context(error, migration)
            }
            applied.append(migration.version)
        }
        return applied
    }

    /// Names the failing migration in a server error's message, so the start-up log says which one.
    private static func context(_ error: PostgresError, _ migration: PostgresMigration) -> PostgresError {
        guard case .server(var serverError) = error else { return error }
        serverError.message = "migration \(migration.version) (\(migration.name)): \(serverError.message)"
        return .server(serverError)
    }

    @LoopActor
    private static func unlock(_ connection: PostgresConnection, key: Int64) async {
        guard connection.isIdle else {
            connection.close()  // ending the session releases its advisory locks
            return
        }
        do {
            try await connection.query("SELECT pg_advisory_unlock($1)", [.int64(key)])
        } catch {
            connection.close()
        }
    }
}

/// How a process gets the schema it needs at start-up (`MIGRATIONS`).
package enum MigrationMode: String, Sendable, CaseIterable {
    /// Apply the missing migrations itself (under the advisory lock, so many processes may race).
    case apply
    /// Only wait until the schema reaches the version this build needs: a migration Job
    /// (`--migrate-only`) applies it. For orchestrators that roll out the migration first.
    case wait
}
