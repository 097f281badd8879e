/// Time and timers as the connection layers see them: the event loop and the system clocks in
/// production (`SystemClock`), a `ManualClock` in tests, so heartbeats, deadlines and timeouts are
/// driven by the test instead of by waiting.
@LoopActor
package protocol LoopClock: AnyObject {
    /// Monotonic nanoseconds (the scale of `MonotonicClock`).
    func now() -> UInt64
    /// Milliseconds since 1970-01-01T00:00:00Z (the scale of `WallClock`).
    func wallMilliseconds() -> Int64
    /// Runs `body` on the loop after `delay` (at once when not positive).
    @discardableResult
    func schedule(after delay: Duration, _ body: @escaping @LoopActor () -> Void) -> TimerHandle
    /// Cancels a timer that has not fired yet; a fired or unknown one is ignored.
    func cancel(_ timer: TimerHandle)
}

extension LoopClock {
    /// Whole seconds since the epoch.
    package func wallSeconds() -> Int64 { wallMilliseconds() / 1000 }
}

/// The production clock: `MonotonicClock`, `WallClock` and the event loop's timer heap.
@LoopActor
package final class SystemClock: LoopClock {
    package static let shared = SystemClock()

    private init() {}

    package func now() -> UInt64 { MonotonicClock.now() }
    package func wallMilliseconds() -> Int64 { WallClock.milliseconds() }

    @discardableResult
    package func schedule(after delay: Duration, _ body: @escaping @LoopActor () -> Void) -> TimerHandle {
        EventLoop.shared.schedule(after: delay, body)
    }

    package func cancel(_ timer: TimerHandle) { EventLoop.shared.cancel(timer) }
}

/// A clock that only moves when told to: `advance(by:)` fires every timer that falls due,
/// in deadline order, with `now()` set to each timer's deadline while it runs. Wall time moves with it.
@LoopActor
package final class ManualClock: LoopClock {
    private var timers = TimerQueue<@LoopActor () -> Void>()
    private var monotonic: UInt64
    private let wallOrigin: Int64
    private let monotonicOrigin: UInt64

    /// Starts at `wallMilliseconds` (the real time by default) and an arbitrary monotonic origin.
    package init(wallMilliseconds: Int64 = WallClock.milliseconds()) {
        monotonicOrigin = 1_000_000_000_000
        monotonic = monotonicOrigin
        wallOrigin = wallMilliseconds
    }

    package func now() -> UInt64 { monotonic }
    package func wallMilliseconds() -> Int64 { wallOrigin.addingSaturated(Duration.between(monotonicOrigin, monotonic).wholeMilliseconds) }

    @discardableResult
    package func schedule(after delay: Duration, _ body: @escaping @LoopActor () -> Void) -> TimerHandle {
        let deadline = MonotonicClock.deadline(after: delay, from: monotonic)
        return TimerHandle(id: timers.schedule(at: deadline, body))
    }

    package func cancel(_ timer: TimerHandle) { timers.cancel(timer.id) }

    /// Timers not yet fired or cancelled.
    package var pendingTimers: Int { timers.count }

    /// Moves time forward, firing what falls due (timers scheduled by those included).
    package func advance(by delay: Duration) {
        precondition(delay >= .zero, "a manual clock only moves forward")
        let target = MonotonicClock.deadline(after: delay, from: monotonic)
        while let deadline = timers.nextDeadline(), deadline <= target {
            monotonic = max(monotonic, deadline)
            while let body = timers.popExpired(now: monotonic) { body() }
        }
        monotonic = target
    }

    /// Fires the timers already due without moving time (those scheduled with a delay of 0 or less).
    package func runDue() { advance(by: .zero) }
}
