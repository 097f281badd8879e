/// Engine.IO v4 liveness: the server pings every `interval`; a pong must come within `timeout`.
///
/// Pure, with one timer per connection and no cancellations: the timer fires at the pong deadline
/// (a pong only sets a flag), and again at the next ping time.
package struct EngineIOHeartbeat: Sendable, Equatable {
    package enum Action: Sendable, Equatable {
        /// Arm the connection's heartbeat timer for `deadline` (monotonic nanoseconds).
        case schedule(deadline: UInt64)
        /// Send an Engine.IO ping (`2`), then arm the timer for `deadline`.
        case ping(thenScheduleAt: UInt64)
        /// No pong in time: close the connection.
        case timedOut
    }

    private enum Phase: Sendable, Equatable {
        /// Next ping at the deadline.
        case idle
        /// Pinged at `sentAt`; the timer fires at the pong deadline.
        case awaitingPong(sentAt: UInt64, answered: Bool)
    }

    private var phase = Phase.idle
    private let interval: UInt64
    private let timeout: UInt64

    /// Interval and timeout in nanoseconds.
    package init(interval: UInt64, timeout: UInt64) {
        self.interval = interval
        self.timeout = timeout
    }

    /// The connection opened: first ping after one interval.
    package mutating func start(now: UInt64) -> Action {
        phase = .idle
        return .schedule(deadline: now &+ interval)
    }

    /// The client answered `3`.
    package mutating func pongReceived() {
        if case .awaitingPong(let sentAt, _) = phase { phase = .awaitingPong(sentAt: sentAt, answered: true) }
    }

    /// The timer fired.
    package mutating func timerFired(now: UInt64) -> Action {
        switch phase {
        case .idle:
            phase = .awaitingPong(sentAt: now, answered: false)
            return .ping(thenScheduleAt: now &+ timeout)
        case .awaitingPong(let sentAt, let answered):
            guard answered else { return .timedOut }
            let next = sentAt &+ interval
            if next <= now {
                phase = .awaitingPong(sentAt: now, answered: false)
                return .ping(thenScheduleAt: now &+ timeout)
            }
            phase = .idle
            return .schedule(deadline: next)
        }
    }
}
