import Glibc
import Testing
@testable import Shared
@testable import Postgres

/// `PostgresPool` against a real server.
@Suite struct PostgresPoolTests {
    init() { EventLoop.shared.startInBackground() }

    private static func pool(_ url: String, name: String = PostgresTestDatabase.uniqueName("pgpool"), size: Int = 2,
                             acquireTimeout: Duration = .milliseconds(2_000)) -> PostgresPoolConfiguration {
        PostgresPoolConfiguration(url: url, applicationName: name, size: size,
                                  acquireTimeout: acquireTimeout)
    }

    @LoopActor
    private static func backends(_ monitor: PostgresPool, applicationName: String) async throws -> Int64 {
        try await monitor.query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1",
                                [.string(applicationName)]).int64("n")
    }

    /// Mutable state shared by a test's tasks (all on the loop).
    @LoopActor
    private final class Observations {
        var running = true
        var maxBackends: Int64 = 0
        var order: [Int] = []
    }

    @LoopActor
    private static func doubled(_ pool: PostgresPool, _ index: Int) async throws -> (Int, Int64) {
        let rows = try await pool.query("SELECT pg_sleep(0.01), $1::int * 2 AS doubled", [.int(index)])
        return (index, try rows.int64("doubled"))
    }

    @Test @LoopActor func fiftyConcurrentQueriesOnTwoConnections() async throws {
        let url = try PostgresTestDatabase.url()
        let name = PostgresTestDatabase.uniqueName("pgpool")
        let pool = PostgresPool(configuration: Self.pool(url, name: name, size: 2))
        let monitor = PostgresPool(configuration: Self.pool(url, size: 1))
        defer { pool.close(); monitor.close() }

        let observed = Observations()
        let watcher = Task { @LoopActor in
            while observed.running {
                let count = (try? await Self.backends(monitor, applicationName: name)) ?? 0
                observed.maxBackends = max(observed.maxBackends, count)
                await EventLoop.shared.sleep(for: .milliseconds(5))
            }
        }
        let tasks = (0..<50).map { index in Task { @LoopActor in try await Self.doubled(pool, index) } }
        var results: [Int: Int64] = [:]
        for task in tasks {
            let (index, value) = try await task.value
            results[index] = value
        }
        observed.running = false
        await watcher.value
        let maxBackends = observed.maxBackends
        #expect(results.count == 50)
        #expect(results.allSatisfy { Int64($0.key * 2) == $0.value })
        #expect(maxBackends >= 1 && maxBackends <= 2)
        #expect(try await Self.backends(monitor, applicationName: name) <= 2)
        let statistics = pool.statistics
        #expect(statistics.leased == 0 && statistics.waiting == 0 && statistics.idle <= 2)
    }

    @Test @LoopActor func acquireTimesOutWhenAllConnectionsAreBusy() async throws {
        let pool = PostgresPool(configuration: Self.pool(try PostgresTestDatabase.url(), size: 1, acquireTimeout: .milliseconds(200)))
        defer { pool.close() }
        let holder = Task { @LoopActor in
            try await pool.withConnection { _ in await EventLoop.shared.sleep(for: .milliseconds(700)) }
        }
        await EventLoop.shared.sleep(for: .milliseconds(50))
        let start = MonotonicClock.now()
        let error = await PostgresTestDatabase.error { try await pool.query("SELECT 1") }
        let elapsed = PostgresTestDatabase.milliseconds(since: start)
        #expect(error == .poolExhausted)
        #expect(elapsed >= 190 && elapsed < 600)
        try await holder.value
        #expect(try await pool.query("SELECT 1 AS one").int64("one") == 1)
    }

    @Test @LoopActor func waitersAreServedInOrderWhenConnectionsFree() async throws {
        let pool = PostgresPool(configuration: Self.pool(try PostgresTestDatabase.url(), size: 1))
        defer { pool.close() }
        let observed = Observations()
        var tasks: [Task<Void, any Error>] = []
        for index in 0..<5 {
            tasks.append(Task { @LoopActor in
                try await pool.withConnection { connection in
                    observed.order.append(index)
                    try await connection.query("SELECT pg_sleep(0.01)")
                }
            })
            await EventLoop.shared.sleep(for: .milliseconds(2))
        }
        for task in tasks { try await task.value }
        #expect(observed.order == [0, 1, 2, 3, 4])
    }

    @Test @LoopActor func queryTimeoutDiscardsOnlyThatConnection() async throws {
        let pool = PostgresPool(configuration: Self.pool(try PostgresTestDatabase.url(), size: 2))
        defer { pool.close() }
        let start = MonotonicClock.now()
        let error = await PostgresTestDatabase.error { try await pool.query("SELECT pg_sleep(5)", timeout: .milliseconds(200)) }
        #expect(error == .timeout)
        // Well below the statement's 5 s: the timeout ended the wait.
        #expect(PostgresTestDatabase.milliseconds(since: start) < 3_000)
        #expect(pool.statistics.leased == 0)
        for _ in 0..<3 { #expect(try await pool.query("SELECT 1 AS one").int64("one") == 1) }
        #expect(await pool.ping())
    }

    @Test @LoopActor func transactionsCommitAndRollBack() async throws {
        struct Abort: Error {}
        let pool = PostgresPool(configuration: Self.pool(try PostgresTestDatabase.url(), size: 2))
        let table = PostgresTestDatabase.uniqueName("pgtx")
        defer { pool.close() }
        try await pool.query("CREATE TABLE \(table) (id int PRIMARY KEY)")
        do {
            try await pool.transaction { connection in
                try await connection.query("INSERT INTO \(table) VALUES ($1)", [1])
                try await connection.query("INSERT INTO \(table) VALUES ($1)", [2])
            }
            await #expect(throws: Abort.self) {
                try await pool.transaction { connection in
                    try await connection.query("INSERT INTO \(table) VALUES ($1)", [3])
                    throw Abort()
                }
            }
            let duplicate = await PostgresTestDatabase.error {
                try await pool.transaction { connection in
                    try await connection.query("INSERT INTO \(table) VALUES ($1)", [4])
                    try await connection.query("INSERT INTO \(table) VALUES ($1)", [1])
                }
            }
            #expect(duplicate?.isUniqueViolation == true)
            let ids = try await pool.query("SELECT id FROM \(table) ORDER BY id").map { try $0.int("id") }
            #expect(ids == [1, 2])
            #expect(pool.statistics.leased == 0)
        } catch {
            Issue.record("\(error)")
        }
        try await pool.query("DROP TABLE \(table)")
    }

    @Test @LoopActor func connectionLeftInATransactionIsNotReused() async throws {
        let pool = PostgresPool(configuration: Self.pool(try PostgresTestDatabase.url(), size: 1))
        defer { pool.close() }
        let firstPID = try await pool.withConnection { connection in
            try await connection.query("BEGIN")
            return connection.backendPID
        }
        let secondPID = try await pool.withConnection { connection in
            #expect(!connection.isInTransaction)
            return connection.backendPID
        }
        #expect(firstPID != secondPID)
    }

    @Test @LoopActor func downServerFailsFastAndPingIsFalse() async throws {
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(url: "postgresql://nobody@127.0.0.1:1/none"))
        defer { pool.close() }
        guard case .unavailable = await PostgresTestDatabase.error({ try await pool.query("SELECT 1") }) else {
            Issue.record("expected unavailable")
            return
        }
        // Within the fail-fast period no connect is attempted at all.
        let start = MonotonicClock.now()
        let second = await PostgresTestDatabase.error { try await pool.query("SELECT 1") }
        guard case .unavailable(let message) = second else {
            Issue.record("expected unavailable, got \(String(describing: second))")
            return
        }
        #expect(message.contains("last connect attempt"))
        #expect(PostgresTestDatabase.milliseconds(since: start) < 50)
        #expect(await pool.ping() == false)
        #expect(pool.statistics == PostgresPoolStatistics(idle: 0, leased: 0, opening: 0, waiting: 0))
    }

    @Test @LoopActor func closedPoolRefusesWork() async throws {
        let pool = PostgresPool(configuration: Self.pool(try PostgresTestDatabase.url()))
        #expect(await pool.ping())
        pool.close()
        #expect(await PostgresTestDatabase.error { try await pool.query("SELECT 1") } == .unavailable("the connection pool is closed"))
    }
}
