import Runtime

/// Delays between reconnection attempts: exponential, capped, with jitter.
///
/// The delay before attempt `n` (0-based, reset after a successful connection) is drawn uniformly from
/// `[t·(1−jitter), t]` where `t = min(maximum, minimum·2ⁿ)` ("equal jitter" with the default 0.5), so
/// gateways that lost the same Redis at the same moment do not reconnect in lockstep.
package struct RedisBackoff: Sendable, Equatable {
    /// The first delay's upper bound.
    package var minimum: Duration { .milliseconds(minimumMilliseconds) }
    /// The cap of the exponential growth.
    package var maximum: Duration { .milliseconds(maximumMilliseconds) }
    /// The same in whole milliseconds, the grain of the delays.
    private var minimumMilliseconds: Int64
    private var maximumMilliseconds: Int64
    /// The fraction of each delay that is random, 0...1.
    package var jitter: Double

    /// Default: 100 ms doubling up to 5 s, half of each delay random.
    package init(
        minimum: Duration = RedisConfiguration.Defaults.backoffMinimum,
        maximum: Duration = RedisConfiguration.Defaults.backoffMaximum,
        jitter: Double = RedisConfiguration.Defaults.backoffJitter
    ) {
        minimumMilliseconds = max(1, minimum.wholeMilliseconds)
        maximumMilliseconds = max(minimumMilliseconds, maximum.wholeMilliseconds)
        self.jitter = min(1, max(0, jitter))
    }

    /// The ceiling `t` for attempt `attempt` (no jitter).
    package func ceiling(attempt: Int) -> Duration {
        .milliseconds(ceilingMilliseconds(attempt: attempt))
    }

    private func ceilingMilliseconds(attempt: Int) -> Int64 {
        var delay = minimumMilliseconds
        var step = 0
        // Doubling stops at the cap, so there is no overflow however large `attempt` grows.
        while step < attempt && delay < maximumMilliseconds {
            delay = delay > maximumMilliseconds / 2 ? maximumMilliseconds : delay * 2
            step += 1
        }
        return min(delay, maximumMilliseconds)
    }

    /// The delay before attempt `attempt`, given `random` uniformly drawn from `0..<1`.
    package func delay(attempt: Int, random: Double) -> Duration {
        let ceiling = ceilingMilliseconds(attempt: attempt)
        let unit = min(max(random, 0), 1)
        let reduction = Int64((Double(ceiling) * jitter * unit).rounded(.down))
        return .milliseconds(max(1, ceiling - reduction))
    }

    /// The delay before attempt `attempt`, with system randomness.
    package func delay(attempt: Int) -> Duration {
        delay(attempt: attempt, random: Double.random(in: 0..<1))
    }
}

/// The reconnect lifecycle of one supervised connection, as a pure state machine: the owner feeds
/// it events and performs the actions it returns (tested without sockets or clocks).
package struct RedisReconnectMachine: Sendable, Equatable {
    /// Where the supervised connection stands.
    package enum State: Sendable, Equatable {
        /// `start()` not called yet.
        case idle
        /// A connection attempt is under way; `attempt` counts failures since the last success.
        case connecting(attempt: Int)
        /// A usable connection exists.
        case connected
        /// Waiting for the backoff timer before attempt `attempt`.
        case waiting(attempt: Int)
        /// `close()` was called; nothing happens any more.
        case closed
    }

    /// What the owner must do next.
    package enum Action: Sendable, Equatable {
        /// Start a connection attempt now.
        case connect
        /// Start a timer; call `retryTimerFired()` when it fires.
        case scheduleRetry(after: Duration)
        /// A connection attempt finished after `close()`: close the new connection.
        case discardConnection
        /// Nothing to do.
        case none
    }

    /// The current state.
    package private(set) var state: State = .idle
    /// The delays used between attempts.
    package let backoff: RedisBackoff

    /// A machine in state `idle`.
    package init(backoff: RedisBackoff) {
        self.backoff = backoff
    }

    /// Begins connecting (once).
    package mutating func start() -> Action {
        guard state == .idle else { return .none }
        state = .connecting(attempt: 0)
        return .connect
    }

    /// The attempt produced a ready connection.
    package mutating func connectSucceeded() -> Action {
        switch state {
        case .connecting:
            state = .connected
            return .none
        case .closed:
            return .discardConnection
        case .idle, .connected, .waiting:
            // Not expecting a connection: do not keep a second one.
            return .discardConnection
        }
    }

    /// The attempt failed; `random` is uniform in `0..<1`.
    package mutating func connectFailed(random: Double) -> Action {
        guard case .connecting(let attempt) = state else { return .none }
        state = .waiting(attempt: attempt + 1)
        return .scheduleRetry(after: backoff.delay(attempt: attempt, random: random))
    }

    /// The ready connection broke; the backoff starts again from its minimum.
    package mutating func connectionLost(random: Double) -> Action {
        guard state == .connected else { return .none }
        state = .waiting(attempt: 1)
        return .scheduleRetry(after: backoff.delay(attempt: 0, random: random))
    }

    /// The backoff timer fired.
    package mutating func retryTimerFired() -> Action {
        guard case .waiting(let attempt) = state else { return .none }
        state = .connecting(attempt: attempt)
        return .connect
    }

    /// Stops for good.
    package mutating func close() {
        state = .closed
    }
}
