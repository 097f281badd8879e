import Testing
@testable import Shared

/// Deadlines from delays of any size: saturating to "never" instead of wrapping into the past.
@Suite struct MonotonicClockDeadlineTests {
    @Test func ordinaryDelaysAreUnchanged() {
        #expect(MonotonicClock.deadline(after: .milliseconds(1_500), from: 7) == 7 + 1_500_000_000)
        #expect(MonotonicClock.deadline(after: .milliseconds(0), from: 7) == 7)
        #expect(MonotonicClock.deadline(after: .milliseconds(-5), from: 7) == 7)
        #expect(MonotonicClock.deadline(after: .milliseconds(Int64.min), from: 7) == 7)
    }

    @Test func hugeDelaysSaturateToNever() {
        // Int64.max ms is past UInt64 nanoseconds; the old `now &+ ms &* 1_000_000` wrapped to now - 1 ms.
        #expect(MonotonicClock.deadline(after: .milliseconds(Int64.max), from: 1_000_000_000) == .max)
        #expect(MonotonicClock.deadline(after: .milliseconds(Int64.max / 1_000_000), from: .max - 1) == .max)
        #expect(MonotonicClock.deadline(after: .milliseconds(1), from: .max) == .max)
    }

    @Test func millisecondsUntilRoundUp() {
        #expect(MonotonicClock.milliseconds(until: 10, from: 20) == 0)
        #expect(MonotonicClock.milliseconds(until: 20, from: 20) == 0)
        #expect(MonotonicClock.milliseconds(until: 21, from: 20) == 1)
        #expect(MonotonicClock.milliseconds(until: 1_000_020, from: 20) == 1)
        #expect(MonotonicClock.milliseconds(until: 1_000_021, from: 20) == 2)
    }

    @Test func millisecondsUntilNeverDoesNotTrap() {
        // `(deadline - now + 999_999) / 1_000_000` overflowed when `deadline - now` is this close to `UInt64.max`.
        #expect(MonotonicClock.milliseconds(until: .max, from: 0) == Int64(UInt64.max / 1_000_000 + 1))
        #expect(MonotonicClock.milliseconds(until: .max, from: 1) == Int64(UInt64.max / 1_000_000 + 1))
    }
}

/// The loop's timers with an absurd delay: the timer waits (and the loop keeps running) instead of
/// firing at once (the old wrapping deadline for `Int64.max` ms was 1 ms in the past).
@Suite struct EventLoopTimerOverflowTests {
    init() { EventLoop.shared.startInBackground() }

    /// A timer scheduled on the loop, and whether it fired.
    @LoopActor private final class FarTimer {
        var fired = false
        var handle: TimerHandle?

        init(afterMilliseconds milliseconds: Int64) {
            handle = EventLoop.shared.schedule(after: .milliseconds(milliseconds)) { [weak self] in self?.fired = true }
        }

        /// Cancels the timer and says whether it had fired.
        func cancel() -> Bool {
            if let handle { EventLoop.shared.cancel(handle) }
            return fired
        }
    }

    @Test func int64MaxDelayDoesNotFireAtOnce() async throws {
        let timer = await FarTimer(afterMilliseconds: .max)
        // Not a loop timer: meanwhile the far deadline is the loop's only one, so its epoll timeout
        // is computed from it.
        try await Task.sleep(for: .milliseconds(50))
        let fired = await timer.cancel()
        #expect(!fired)
    }
}
