import Testing
@testable import Shared

/// The one place durations become the clocks' and the wire's integers, and the manual clock.
@Suite struct DurationClockTests {
    init() { EventLoop.shared.startInBackground() }

    @Test func nanosecondsSaturateAtBothEnds() {
        #expect(Duration.milliseconds(1_500).nanosecondsSaturated == 1_500_000_000)
        #expect(Duration.nanoseconds(7).nanosecondsSaturated == 7)
        #expect(Duration.zero.nanosecondsSaturated == 0)
        #expect(Duration.milliseconds(-5).nanosecondsSaturated == 0)
        #expect(Duration.seconds(Int64.max).nanosecondsSaturated == .max)
        #expect(Duration.milliseconds(Int64.max).nanosecondsSaturated == .max)
    }

    @Test func waitsRoundUpToWholeMillisecondsAndSeconds() {
        #expect(Duration.nanoseconds(1).millisecondsRoundedUp == 1)
        #expect(Duration.milliseconds(1).millisecondsRoundedUp == 1)
        #expect((Duration.milliseconds(1) + .nanoseconds(1)).millisecondsRoundedUp == 2)
        #expect(Duration.milliseconds(-3).millisecondsRoundedUp == 0)
        #expect(Duration.seconds(Int64.max).millisecondsRoundedUp == .max)
        #expect(Duration.milliseconds(1_001).secondsRoundedUp == 2)
        #expect(Duration.seconds(3).secondsRoundedUp == 3)
        #expect(Duration.milliseconds(-1).secondsRoundedUp == 0)
        #expect(Duration.milliseconds(Int64.max).secondsRoundedUp == Int64.max / 1000 + 1)
    }

    @Test func wholeMillisecondsTruncate() {
        #expect((Duration.milliseconds(25_000) + .nanoseconds(999_999)).wholeMilliseconds == 25_000)
        #expect(Duration.seconds(Int64.max).wholeMilliseconds == .max)
    }

    @Test func betweenTwoMonotonicReadingsIsNeverNegative() {
        #expect(Duration.between(10, 1_000_000_010) == .seconds(1))
        #expect(Duration.between(10, 5) == .zero)
        #expect(Duration.between(0, .max) == .nanoseconds(Int64.max) + .nanoseconds(Int64.max) + .nanoseconds(1))
        #expect(MonotonicClock.deadline(after: .milliseconds(2), from: 5) == 2_000_005)
        #expect(MonotonicClock.deadline(after: .seconds(Int64.max), from: 5) == .max)
        #expect(MonotonicClock.duration(until: 2_000_005, from: 5) == .milliseconds(2))
    }

    @Test @LoopActor func aManualClockFiresWhatFallsDueInDeadlineOrder() {
        let clock = ManualClock(wallMilliseconds: 1_000)
        var fired: [String] = []
        clock.schedule(after: .milliseconds(30)) { fired.append("30") }
        let cancelled = clock.schedule(after: .milliseconds(20)) { fired.append("cancelled") }
        clock.schedule(after: .milliseconds(10)) {
            fired.append("10")
            // A timer armed by a timer, due within the same advance, fires in it too.
            clock.schedule(after: .milliseconds(5)) { fired.append("15 at \(clock.wallMilliseconds())") }
        }
        clock.schedule(after: .milliseconds(-1)) { fired.append("now") }
        clock.cancel(cancelled)
        clock.runDue()
        #expect(fired == ["now"])
        clock.advance(by: .milliseconds(29))
        #expect(fired == ["now", "10", "15 at 1015"])
        #expect(clock.wallMilliseconds() == 1_029)
        #expect(clock.pendingTimers == 1)
        clock.advance(by: .milliseconds(1))
        #expect(fired.last == "30")
        #expect(clock.pendingTimers == 0)
    }
}
