import Testing
@testable import Gateway

@Suite struct ReplyRateTests {
    private static let ms: UInt64 = 1_000_000

    @Test func withoutRepliesTheWaitIsTheCap() {
        let rate = ReplyRate()
        #expect(rate.perSecond(at: 5_000 * Self.ms) == 1)
        #expect(rate.retryAfter(waiting: 500, at: 5_000 * Self.ms, cap: .seconds(10)) == .seconds(10))
    }

    @Test func aBurstAfterAnIdleSpellIsARateNotAHandful() {
        var rate = ReplyRate()
        let start = 60_000 * Self.ms
        // 200 replies in the first 50 ms after a minute of silence: 2,000/s, scaled over the
        // shortest window (100 ms), not 200/s.
        for index in 0..<200 { rate.replied(at: start + UInt64(index) * Self.ms / 4) }
        #expect(rate.perSecond(at: start + 50 * Self.ms) == 2_000)
        // 500 writes ahead drain in a quarter of a second.
        #expect(rate.retryAfter(waiting: 500, at: start + 50 * Self.ms, cap: .seconds(10)) == .milliseconds(250))
    }

    @Test func theLastFullSecondCountsUntilTheCurrentOneIsFaster() {
        var rate = ReplyRate()
        for index in 0..<1_000 { rate.replied(at: UInt64(index) * Self.ms) }  // 1,000 in the first second
        rate.replied(at: 1_000 * Self.ms)  // the next window opens
        #expect(rate.perSecond(at: 1_200 * Self.ms) == 1_000)
        for index in 1..<600 { rate.replied(at: (1_000 + UInt64(index) / 2) * Self.ms) }  // 600 in 300 ms
        #expect(rate.perSecond(at: 1_300 * Self.ms) == 2_000)
        #expect(rate.retryAfter(waiting: 10, at: 1_300 * Self.ms, cap: .seconds(10)) == .milliseconds(100), "at least 100 ms")
    }

    @Test func aWindowBeforeALongGapSaysNothingAboutNow() {
        var rate = ReplyRate()
        for index in 0..<1_000 { rate.replied(at: UInt64(index) * Self.ms) }
        rate.replied(at: 5_000 * Self.ms)  // four seconds of silence, then one reply
        #expect(rate.perSecond(at: 5_000 * Self.ms) == 10, "one reply over the shortest window")
        // Long after the last reply the current window is stale too.
        #expect(rate.perSecond(at: 9_000 * Self.ms) == 1)
        #expect(rate.retryAfter(waiting: 100, at: 9_000 * Self.ms, cap: .seconds(3)) == .seconds(3))
    }
}
