// `Duration` is the unit of every timeout, interval and delay at an API boundary (settings, timers,
// waits). These are the only conversions to the clocks' integers and to the wire's milliseconds and
// seconds; each saturates, so a value we did not choose (a reply, a setting, a header) can neither
// trap nor wrap.

extension Duration {
    /// The duration as nanoseconds of the monotonic clock: 0 when negative, `UInt64.max` beyond range.
    package var nanosecondsSaturated: UInt64 {
        guard self > .zero else { return 0 }
        let (seconds, attoseconds) = components
        return UInt64(seconds).multipliedSaturated(by: 1_000_000_000).addingSaturated(UInt64(max(0, attoseconds) / 1_000_000_000))
    }

    /// Whole milliseconds, rounded up so a timer armed with it never fires early and a client told
    /// to wait never comes back too soon; 0 when negative, saturating.
    package var millisecondsRoundedUp: Int64 {
        guard self > .zero else { return 0 }
        let (seconds, attoseconds) = components
        let partial = attoseconds / 1_000_000_000_000_000
        let remainder = attoseconds % 1_000_000_000_000_000
        let milliseconds = seconds.multipliedSaturated(by: 1000).addingSaturated(partial)
        return remainder > 0 ? milliseconds.addingSaturated(1) : milliseconds
    }

    /// Whole milliseconds, truncated (settings as the wire states them: `pingInterval`, `retryAfterMs`).
    package var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds.multipliedSaturated(by: 1000).addingSaturated(attoseconds / 1_000_000_000_000_000)
    }

    /// Whole seconds, rounded up (`Retry-After`, Redis `EX`); 0 when negative, saturating.
    package var secondsRoundedUp: Int64 {
        guard self > .zero else { return 0 }
        let (seconds, attoseconds) = components
        return attoseconds > 0 ? seconds.addingSaturated(1) : seconds
    }

    /// The duration between two monotonic readings (`later - earlier`, 0 when not later).
    package static func between(_ earlier: UInt64, _ later: UInt64) -> Duration {
        guard later > earlier else { return .zero }
        let elapsed = later - earlier
        return .seconds(Int64(elapsed / 1_000_000_000)) + .nanoseconds(Int64(elapsed % 1_000_000_000))
    }
}

extension MonotonicClock {
    /// The instant `delay` after `now`. A negative delay is `now`; a delay past the clock's range is
    /// `UInt64.max`, a deadline that never comes.
    package static func deadline(after delay: Duration, from now: UInt64) -> UInt64 {
        now.addingSaturated(delay.nanosecondsSaturated)
    }

    /// The time from `now` until `deadline`; zero when it has passed.
    package static func duration(until deadline: UInt64, from now: UInt64) -> Duration {
        Duration.between(now, deadline)
    }
}
