/// Engine.IO v4 liveness, as the reference server does it: the server pings `interval` after the
/// last pong (or after the open); the client must answer within `timeout`, or it is closed.
///
/// Pure; the session keeps one timer. When `interval >= timeout` (the default 25 s / 20 s) a pong
/// only records its time and the timer already armed for the pong deadline schedules the next
/// ping, so a ping cycle costs one timer fire and no cancellation. A shorter interval re-arms the
/// timer on the pong instead.
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

    private enum Phase: Sendable, Equatable {
        case waitingToPing
        case awaitingPong
        /// Pong received at `at`; the armed pong-deadline timer will schedule the next ping.
        case answered(at: UInt64)
    }

    private var phase = Phase.waitingToPing
    private let interval: UInt64
    private let timeout: UInt64

    /// Interval and timeout in nanoseconds.
    package init(interval: UInt64, timeout: UInt64) {
        self.interval = interval
        self.timeout = timeout
    }

    /// The connection opened: first ping after one interval.
    package mutating func start(now: UInt64) -> Action {
        phase = .waitingToPing
        return .schedule(deadline: now &+ interval)
    }

    /// The client answered `3`: the next ping comes one interval from now.
    package mutating func pongReceived(now: UInt64) -> Action {
        guard phase == .awaitingPong else { return .none }
        if interval < timeout {
            phase = .waitingToPing
            return .schedule(deadline: now &+ interval)
        }
        phase = .answered(at: now)
        return .none
    }

    /// The timer fired.
    package mutating func timerFired(now: UInt64) -> Action {
        switch phase {
        case .awaitingPong:
            return .timedOut
        case .answered(let at):
            let next = at &+ interval
            if next > now {
                phase = .waitingToPing
                return .schedule(deadline: next)
            }
            fallthrough
        case .waitingToPing:
            phase = .awaitingPong
            return .ping(thenScheduleAt: now &+ timeout)
        }
    }
}
