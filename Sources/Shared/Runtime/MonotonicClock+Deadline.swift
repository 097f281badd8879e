// Deadlines on the monotonic clock. A delay can come from a value we did not choose (a reply, a
// setting), so the conversions saturate: an absurd delay is "never", not a wrap into the past
// (which would fire at once) and not a trap.

extension MonotonicClock {
    /// Whole milliseconds from `now` until `deadline` (the unit of `epoll_wait`), rounded up so a
    /// wait for it never ends early; 0 when the deadline has passed. Defined for every deadline, `UInt64.max` included.
    package static func milliseconds(until deadline: UInt64, from now: UInt64) -> Int64 {
        guard deadline > now else { return 0 }
        let remaining = deadline - now
        // Not `(remaining + 999_999) / 1_000_000`, which overflows within a millisecond of `UInt64.max`.
        return Int64(remaining / 1_000_000 + (remaining % 1_000_000 == 0 ? 0 : 1))
    }
}
