import JSON
import Postgres
import Runtime
import Support

/// Brings the schema to `ChatSchema` at start-up, waiting for the database as long as it takes.
@LoopActor
package enum Migrations {
    /// The schema version this build needs.
    package static var requiredVersion: Int { ChatSchema.migrations.last?.version ?? 0 }

    /// Returns true once the schema is current, false when the process stops first or (without
    /// `retryForever`: `--migrate-only`) after about a minute of failures, or at once on an error
    /// retrying cannot fix. `report` hears what it waits for (`/ready` says it).
    package static func prepare(mode: MigrationMode, pool: PostgresPool, logger: Logger, retryForever: Bool,
                                isStopping: @LoopActor () -> Bool, report: @LoopActor (String) -> Void) async -> Bool {
        let deadline = MonotonicClock.deadline(after: .seconds(60), from: MonotonicClock.now())
        var delay = Duration.milliseconds(250)
        var lastWaitLog = UInt64(0)
        // Until Postgres has answered, that is what the process waits for; a retry keeps the last
        // failure as the reason (a probe during an outage never reads "applying" between attempts).
        report("waiting for postgres: connecting")
        while !isStopping() {
            do {
                switch mode {
                case .apply:
                    _ = try await schemaVersion(pool: pool)  // reachable: only now is applying what it does
                    report("applying database migrations")
                    let applied = try await PostgresMigrator.migrate(pool: pool, migrations: ChatSchema.migrations)
                    logger.info("database schema is current", [
                        "applied": .array(applied.map { .int(Int64($0)) }),
                        "latest": .int(Int64(requiredVersion)),
                    ])
                    return true
                case .wait:
                    let version = try await schemaVersion(pool: pool)
                    if version >= requiredVersion {
                        logger.info("database schema is current", ["version": .int(Int64(version)),
                                                                   "required": .int(Int64(requiredVersion))])
                        return true
                    }
                    let waiting = "waiting for schema version \(requiredVersion) (the database is at \(version); run --migrate-only)"
                    report(waiting)
                    let now = MonotonicClock.now()
                    if lastWaitLog == 0 || Duration.between(lastWaitLog, now) >= .seconds(30) {
                        lastWaitLog = now
                        logger.info(waiting)
                    }
                    await EventLoop.shared.sleep(for: .seconds(1))
                    continue
                }
            } catch {
                let transient: Bool
                switch error {
                case .server: transient = false
                default: transient = true
                }
                report("waiting for postgres: \(error)")
                logger.warn("cannot prepare the database schema", ["error": .string(String(describing: error)), "retrying": .bool(transient),
                                                                   "mode": .string(mode.rawValue)])
                guard transient, retryForever || MonotonicClock.now() < deadline else { return false }
                await EventLoop.shared.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
        return false
    }

    /// The highest applied migration; 0 before the first (no `schema_migrations` table yet).
    private static func schemaVersion(pool: PostgresPool) async throws(PostgresError) -> Int {
        let exists = try await pool.query("SELECT to_regclass('schema_migrations') IS NOT NULL AS present")
        guard try exists.bool("present") else { return 0 }
        let rows = try await pool.query("SELECT coalesce(max(version), 0)::bigint AS version FROM schema_migrations")
        return Int(try rows.int64("version"))
    }
}
