import Glibc
import Testing
@testable import Shared

/// Losing the server: connections dropped by the server, and (with `TEST_PG_CTL`) a real restart.
///
/// `TEST_PG_CTL` is a command prefix that accepts `pg-stop` / `pg-start`, e.g.
/// `scripts/lib/services.sh .data`. Stopping the server disturbs every other test using it, so run
/// that variant alone: `TEST_PG_CTL=... swift test --filter PostgresRecoveryTests`. Without it the
/// loss is simulated with `pg_terminate_backend` on this pool's own backends only.
@Suite(.serialized) struct PostgresRecoveryTests {
    init() { EventLoop.shared.startInBackground() }

    @LoopActor
    private static func backends(_ monitor: PostgresPool, _ name: String) async throws -> Int64 {
        try await monitor.query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1",
                                [.string(name)]).int64("n")
    }

    @LoopActor
    private static func terminate(_ monitor: PostgresPool, _ name: String) async throws {
        try await monitor.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [.string(name)])
        for _ in 0..<300 where try await backends(monitor, name) > 0 {
            await EventLoop.shared.sleep(for: .milliseconds(10))
        }
    }

    /// Runs a shell command off the loop; returns its exit status.
    @LoopActor
    private static func shell(_ command: String) async throws -> Int32 {
        let runner = ThreadPool(threads: 1, name: "pg-ctl")
        defer { runner.shutdown() }
        return try await runner.run { system(command) }
    }

    @LoopActor
    private static func warm(_ pool: PostgresPool) async throws {
        let tasks = (0..<2).map { _ in Task { @LoopActor in try await pool.query("SELECT pg_sleep(0.05)") } }
        for task in tasks { _ = try await task.value }
    }

    @Test @LoopActor func statementInFlightFailsWhenItsBackendIsTerminated() async throws {
        let url = try PostgresTestDatabase.url()
        let name = PostgresTestDatabase.uniqueName("pgkill")
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(url: url, applicationName: name, size: 1))
        let monitor = PostgresPool(configuration: PostgresPoolConfiguration(url: url, size: 1))
        defer { pool.close(); monitor.close() }
        let start = MonotonicClock.now()
        let victim = Task { @LoopActor in
            await PostgresTestDatabase.error { try await pool.query("SELECT pg_sleep(5)") }
        }
        await EventLoop.shared.sleep(for: .milliseconds(150))
        try await Self.terminate(monitor, name)
        let error = await victim.value
        guard case .connectionLost(let message) = error else {
            Issue.record("expected connectionLost, got \(String(describing: error))")
            return
        }
        #expect(message.contains("terminating connection"))
        #expect(PostgresTestDatabase.milliseconds(since: start) < 3_000)
        #expect(try await pool.query("SELECT 1 AS one").int64("one") == 1)
    }

    @Test @LoopActor func poolRecoversAfterTheServerDropsOrRestarts() async throws {
        let url = try PostgresTestDatabase.url()
        let name = PostgresTestDatabase.uniqueName("pgrecover")
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(url: url, applicationName: name, size: 2))
        defer { pool.close() }
        try await Self.warm(pool)
        #expect(pool.statistics.idle == 2)

        guard let ctl = getenv("TEST_PG_CTL").map({ String(cString: $0) }), !ctl.isEmpty else {
            // Simulated loss: every pooled connection is killed while idle.
            let monitor = PostgresPool(configuration: PostgresPoolConfiguration(url: url, size: 1))
            defer { monitor.close() }
            try await Self.terminate(monitor, name)
            // Stale connections are detected and replaced; callers see no error.
            for _ in 0..<4 { #expect(try await pool.query("SELECT 1 AS one").int64("one") == 1) }
            try await Self.warm(pool)
            try await Self.terminate(monitor, name)
            try await pool.transaction { connection in try await connection.query("SELECT 1") }
            return
        }

        #expect(try await Self.shell("\(ctl) pg-stop") == 0)
        var start = MonotonicClock.now()
        let first = await PostgresTestDatabase.error { try await pool.query("SELECT 1") }
        switch first {
        case .unavailable?, .connectionLost?: break
        default: Issue.record("expected unavailable or connectionLost, got \(String(describing: first))")
        }
        #expect(PostgresTestDatabase.milliseconds(since: start) < 2_000)
        start = MonotonicClock.now()
        for _ in 0..<20 {
            guard case .unavailable = await PostgresTestDatabase.error({ try await pool.query("SELECT 1") }) else {
                Issue.record("expected unavailable while the server is down")
                break
            }
        }
        #expect(PostgresTestDatabase.milliseconds(since: start) < 500)  // fail fast, no connect per request
        #expect(await pool.ping() == false)

        #expect(try await Self.shell("\(ctl) pg-start") == 0)
        start = MonotonicClock.now()
        var recovered = false
        while !recovered && PostgresTestDatabase.milliseconds(since: start) < 10_000 {
            recovered = (try? await pool.query("SELECT 1")) != nil
            if !recovered { await EventLoop.shared.sleep(for: .milliseconds(100)) }
        }
        #expect(recovered)
        #expect(await pool.ping())
    }
}
