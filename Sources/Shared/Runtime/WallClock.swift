import Glibc

/// The system's real-time clock (CLOCK_REALTIME): for timestamps and token lifetimes, never for
/// measuring durations (it can jump; use a monotonic clock for that). Named `WallClock` so it does not
/// shadow the standard library's `Clock` protocol.
package enum WallClock {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    package static func milliseconds() -> Int64 {
        let now = timespecNow()
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Whole seconds since 1970-01-01T00:00:00Z.
    package static func seconds() -> Int64 {
        Int64(timespecNow().tv_sec)
    }

    private static func timespecNow() -> timespec {
        var now = timespec()
        // Cannot fail with a valid clock id and a valid pointer.
        _ = clock_gettime(CLOCK_REALTIME, &now)
        return now
    }
}
