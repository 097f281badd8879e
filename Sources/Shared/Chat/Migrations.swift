import JSON
import Postgres
import Runtime
import Support

/// Applies `ChatSchema` at start-up, waiting for the database when asked to.
@LoopActor
package enum Migrations {
    /// Returns true once the schema is current. With `retryForever` a missing database is waited for
    /// (processes may start before Postgres); otherwise it gives up after about a minute.
    package static func apply(pool: PostgresPool, logger: Logger, retryForever: Bool, isStopping: @LoopActor () -> Bool) async -> Bool {
        let deadline = MonotonicClock.deadline(after: .seconds(60), from: MonotonicClock.now())
        var delay = Duration.milliseconds(250)
        while !isStopping() {
            do {
                let applied = try await PostgresMigrator.migrate(pool: pool, migrations: ChatSchema.migrations)
                logger.info("database schema is current", [
                    "applied": .array(applied.map { .int(Int64($0)) }),
                    "latest": .int(Int64(ChatSchema.migrations.last?.version ?? 0)),
                ])
                return true
            } catch {
                let transient: Bool
                switch error {
                case .server: transient = false
                default: transient = true
                }
                logger.warn("cannot apply migrations", ["error": .string(String(describing: error)), "retrying": .bool(transient)])
                guard transient, retryForever || MonotonicClock.now() < deadline else { return false }
                await EventLoop.shared.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
        return false
    }
}
