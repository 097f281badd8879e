import Runtime
import Support

/// A snapshot of a pool's connections, for metrics and tests.
package struct PostgresPoolStatistics: Sendable, Equatable {
    /// Connected and free.
    package var idle: Int
    /// Handed out to a caller.
    package var leased: Int
    /// Connect attempts in progress.
    package var opening: Int
    /// Callers queued for a connection.
    package var waiting: Int
}

/// A bounded set of `PostgresConnection`s shared by the tasks of one process.
///
/// - Connections open lazily, up to `size`; a caller that finds none free queues (FIFO, at most
///   `maxWaiters`) for up to `acquireTimeout`, then gets `.poolExhausted`.
/// - A connection that broke, timed out or was left inside a transaction is closed on release and
///   replaced by the next acquire. Idle connections watch their socket, so a server restart or
///   `pg_terminate_backend` is noticed before they are handed out; one that dies in the last
///   instant is caught before sending, and `query` retries once on a fresh connection.
/// - When a connect attempt fails, further attempts are refused for `failFast`
///   (`PostgresCircuitBreaker`): a down database costs each request microseconds, not a connect
///   timeout, and recovery after a restart is automatic once the period is over.
@LoopActor
package final class PostgresPool {
    /// The pool's settings.
    package let configuration: PostgresPoolConfiguration

    private var idle: [PostgresConnection] = []
    private var leased = 0
    private var opening = 0
    private var breaker: PostgresCircuitBreaker
    private var closed = false

    private enum WaitOutcome {
        /// A released connection, already counted as leased to the waiter.
        case connection(PostgresConnection)
        /// A slot was freed (or a connect failed): try again.
        case retry
        case timedOut
        case closed
    }

    private struct Waiter {
        let continuation: CheckedContinuation<WaitOutcome, Never>
        let timer: TimerHandle
    }

    /// Waiters by id, and their arrival order (ids of departed waiters are skipped lazily).
    private var waiters: [UInt64: Waiter] = [:]
    private var waiterOrder: [UInt64] = []
    private var waiterHead = 0
    private var nextWaiterID: UInt64 = 0

    /// Creates a pool; no connection opens until the first use.
    package init(configuration: PostgresPoolConfiguration) {
        self.configuration = configuration
        breaker = PostgresCircuitBreaker(openFor: configuration.failFast)
    }

    isolated deinit {
        // Idle connections stay registered with the loop (which retains them) until closed.
        for connection in idle { connection.close() }
    }

    /// Current connection counts.
    package var statistics: PostgresPoolStatistics {
        PostgresPoolStatistics(idle: idle.count, leased: leased, opening: opening, waiting: waiters.count)
    }

    /// Whether `close()` was called.
    package var isClosed: Bool { closed }

    // MARK: Using connections

    /// Runs one statement on a pooled connection (see `PostgresConnection.query`).
    ///
    /// If the connection turns out to be broken before the statement is sent (`.unavailable`: it
    /// cannot have run), the statement is retried once on another connection.
    @discardableResult
    package func query(_ sql: String, _ parameters: [PostgresValue?] = [],
                       timeout: Duration? = nil) async throws(PostgresError) -> PostgresRows {
        var attempts = 0
        let started = MonotonicClock.now()
        defer { PostgresMetrics.queryDuration.observeSince(started) }
        while true {
            attempts += 1
            let connection = try await acquire()
            do {
                let rows = try await connection.query(sql, parameters, timeout: timeout)
                release(connection)
                return rows
            } catch {
                release(connection)
                if case .unavailable = error, attempts == 1 { continue }
                throw error
            }
        }
    }

    /// Runs a statement built with its parameters in place (see `PostgresQuery`) on a pooled
    /// connection; otherwise as `query(_:_:timeout:)`.
    @discardableResult
    package func query(_ query: PostgresQuery, timeout: Duration? = nil) async throws(PostgresError) -> PostgresRows {
        try await self.query(query.sql, query.parameters, timeout: timeout)
    }

    /// Runs `body` with a connection of its own, released afterwards (closed instead if `body` left
    /// it broken or inside a transaction).
    ///
    /// Untyped `throws` so `body` can throw its own errors; database errors are `PostgresError`.
    @discardableResult
    package func withConnection<T>(_ body: @LoopActor (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let value = try await body(connection)
            release(connection)
            return value
        } catch {
            release(connection)
            throw error
        }
    }

    /// Runs `body` inside `BEGIN` ... `COMMIT` on one connection. Any error from `body` rolls back
    /// and is rethrown; a connection whose `ROLLBACK` fails is discarded. A `BEGIN` that finds its
    /// connection broken before sending is retried once on another connection.
    ///
    /// Untyped `throws` so `body` can abort with its own errors; database errors are `PostgresError`.
    @discardableResult
    package func transaction<T>(_ body: @LoopActor (PostgresConnection) async throws -> T) async throws -> T {
        var attempts = 0
        let started = MonotonicClock.now()
        defer { PostgresMetrics.queryDuration.observeSince(started) }
        while true {
            attempts += 1
            let connection = try await acquire()
            do {
                try await connection.query("BEGIN")
            } catch {
                release(connection)
                if case .unavailable = error, attempts == 1 { continue }
                throw error
            }
            do {
                let value = try await connection.completeTransaction(body)
                release(connection)
                return value
            } catch {
                release(connection)
                throw error
            }
        }
    }

    /// Whether the database answers `SELECT 1` within the ping timeout (for readiness probes).
    package func ping() async -> Bool {
        do {
            _ = try await query("SELECT 1", timeout: configuration.pingTimeout)
            return true
        } catch {
            return false
        }
    }

    /// Closes idle connections and fails waiters; leased connections close when released.
    package func close() {
        closed = true
        for connection in idle { connection.close() }
        idle.removeAll()
        wakeAll(.closed)
    }

    // MARK: Acquire and release

    /// Takes a free connection, opens one, or waits for one.
    func acquire() async throws(PostgresError) -> PostgresConnection {
        let deadline = MonotonicClock.deadline(after: configuration.acquireTimeout, from: MonotonicClock.now())
        while true {
            if closed { throw .unavailable("the connection pool is closed") }
            while let candidate = idle.popLast() {
                if candidate.isReusable {
                    leased += 1
                    return candidate
                }
                // Died while idle (server restart, idle-session timeout): replace it.
                candidate.close()
            }
            if leased + opening < configuration.size {
                if let reason = breaker.rejection(now: MonotonicClock.now()) { throw .unavailable(reason) }
                // Counted before the first `await`: the check and the count are one step, whatever
                // the runtime does at the call.
                opening += 1
                return try await open()
            }
            let now = MonotonicClock.now()
            guard now < deadline, waiters.count < configuration.maxWaiters else { throw .poolExhausted }
            switch await wait(for: MonotonicClock.duration(until: deadline, from: now)) {
            case .connection(let connection):
                if connection.isReusable { return connection }
                leased -= 1
                connection.close()
            case .retry:
                continue
            case .timedOut:
                throw .poolExhausted
            case .closed:
                throw .unavailable("the connection pool is closed")
            }
        }
    }

    /// Returns a connection taken with `acquire`.
    func release(_ connection: PostgresConnection) {
        leased -= 1
        if closed {
            connection.close()
            return
        }
        if connection.isReusable {
            if let waiter = popWaiter() {
                leased += 1
                waiter.continuation.resume(returning: .connection(connection))
            } else {
                idle.append(connection)
            }
        } else {
            // Broken, timed out, or left in a transaction we cannot vouch for: never reuse it.
            connection.close()
            if let waiter = popWaiter() { waiter.continuation.resume(returning: .retry) }
        }
    }

    /// Opens a connection; the caller has counted it in `opening`.
    private func open() async throws(PostgresError) -> PostgresConnection {
        let result: Result<PostgresConnection, PostgresError>
        do {
            result = .success(try await PostgresConnection.connect(configuration.connection))
        } catch {
            result = .failure(error)
        }
        opening -= 1
        switch result {
        case .success(let connection):
            breaker.recordSuccess()
            if closed {
                connection.close()
                throw .unavailable("the connection pool is closed")
            }
            leased += 1
            return connection
        case .failure(let error):
            let reason: String
            if case .unavailable(let message) = error { reason = message } else { reason = error.description }
            breaker.recordFailure(reason, now: MonotonicClock.now())
            // Waiters retry now: with the breaker open they fail fast instead of waiting out their timeout.
            wakeAll(.retry)
            throw error
        }
    }

    // MARK: Waiters

    private func wait(for delay: Duration) async -> WaitOutcome {
        await withCheckedContinuation { (continuation: CheckedContinuation<WaitOutcome, Never>) in
            nextWaiterID += 1
            let id = nextWaiterID
            let timer = EventLoop.shared.schedule(after: delay) { [weak self] in
                self?.waiterTimedOut(id)
            }
            waiters[id] = Waiter(continuation: continuation, timer: timer)
            waiterOrder.append(id)
        }
    }

    private func waiterTimedOut(_ id: UInt64) {
        guard let waiter = waiters.removeValue(forKey: id) else { return }
        // Keep the order list proportional to live waiters when many time out without releases.
        if waiterOrder.count - waiterHead > 2 * waiters.count + 64 {
            waiterOrder = waiterOrder[waiterHead...].filter { waiters[$0] != nil }
            waiterHead = 0
        }
        waiter.continuation.resume(returning: .timedOut)
    }

    private func popWaiter() -> Waiter? {
        while waiterHead < waiterOrder.count {
            let id = waiterOrder[waiterHead]
            waiterHead += 1
            if let waiter = waiters.removeValue(forKey: id) {
                if waiterHead > 64 && waiterHead * 2 > waiterOrder.count {
                    waiterOrder.removeFirst(waiterHead)
                    waiterHead = 0
                }
                EventLoop.shared.cancel(waiter.timer)
                return waiter
            }
        }
        waiterOrder.removeAll(keepingCapacity: true)
        waiterHead = 0
        return nil
    }

    private func wakeAll(_ outcome: WaitOutcome) {
        while let waiter = popWaiter() { waiter.continuation.resume(returning: outcome) }
    }
}
