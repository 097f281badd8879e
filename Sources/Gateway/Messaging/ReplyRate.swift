/// How fast the workers answer this gateway, to tell a refused write (`overloaded`) how long the
/// writes ahead of it take to drain. Pure: time comes in as monotonic nanoseconds.
///
/// Replies are counted in one-second windows. The rate is the last full window's count or the
/// current window's count scaled to a second (once the window is 100 ms old: a burst of replies
/// right after an idle spell is a rate, not a handful), whichever is higher; a window followed by
/// a gap of two seconds or more says nothing about now.
struct ReplyRate: Sendable {
    private var windowStart: UInt64 = 0
    private var count = 0
    private var lastRate = 0

    private static let second: UInt64 = 1_000_000_000
    /// The shortest part of a window that is scaled up to a rate.
    private static let shortestWindow: UInt64 = 100_000_000

    /// One reply arrived at `now`.
    mutating func replied(at now: UInt64) {
        let elapsed = now &- windowStart
        if elapsed >= Self.second {
            lastRate = elapsed < 2 * Self.second ? count : 0
            windowStart = now
            count = 0
        }
        count += 1
    }

    /// Replies per second as of `now` (at least 1).
    func perSecond(at now: UInt64) -> Int {
        let elapsed = max(now &- windowStart, Self.shortestWindow)
        let current = elapsed >= 2 * Self.second ? 0 : Int(UInt64(count) * Self.second / elapsed)
        return max(1, lastRate, current)
    }

    /// How long `waiting` writes take to drain at this rate, between 100 ms and `cap`.
    func retryAfter(waiting: Int, at now: UInt64, cap: Duration) -> Duration {
        let drain = Duration.milliseconds(Int64(min(waiting, 1_000_000_000)) * 1000 / Int64(perSecond(at: now)))
        return min(max(.milliseconds(100), drain), cap)
    }
}
