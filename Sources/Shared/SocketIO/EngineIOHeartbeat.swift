/// Engine.IO v4 liveness, as the reference server does it: the server pings `interval` after the
/// last pong (or after the open); the client must answer within `timeout`, or it is closed.
///
/// Pure; the session keeps one timer and re-arms it on each action.
package struct EngineIOHeartbeat: Sendable, Equatable {
    package enum Action: Sendable, Equatable {
        case none
        /// (Re-)arm the connection's heartbeat timer for `deadline` (monotonic nanoseconds).
        case schedule(deadline: UInt64)
        /// Send an Engine.IO ping (`2`), then arm the timer for the pong deadline.
        case ping(thenScheduleAt: UInt64)
        /// No pong in time: close the connection.
        case timedOut
    }

    private var awaitingPong = false
    private let interval: UInt64
    private let timeout: UInt64

    /// Interval and timeout in nanoseconds.
    package init(interval: UInt64, timeout: UInt64) {
        self.interval = interval
        self.timeout = timeout
    }

    /// The connection opened: first ping after one interval.
    package mutating func start(now: UInt64) -> Action {
        awaitingPong = false
        return .schedule(deadline: now &+ interval)
    }

    /// The client answered `3`: the next ping comes one interval from now.
    package mutating func pongReceived(now: UInt64) -> Action {
        guard awaitingPong else { return .none }
        awaitingPong = false
        return .schedule(deadline: now &+ interval)
    }

    /// The timer fired.
    package mutating func timerFired(now: UInt64) -> Action {
        if awaitingPong { return .timedOut }
        awaitingPong = true
        return .ping(thenScheduleAt: now &+ timeout)
    }
}
