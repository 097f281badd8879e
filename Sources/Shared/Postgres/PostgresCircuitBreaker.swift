/// Remembers a failed connect attempt for a short while so that, when the server is down, callers
/// fail at once with `.unavailable` instead of each waiting out its own connect attempt (a
/// circuit breaker with a fixed open period and no half-open state: the first attempt after the
/// period is the probe). Time is passed in, so tests need no clock.
package struct PostgresCircuitBreaker: Sendable {
    /// How long a failure keeps the breaker open, in nanoseconds.
    package let openNanoseconds: UInt64
    private var failure: (at: UInt64, message: String)?

    /// `openMilliseconds` ≤ 0 disables the breaker.
    package init(openMilliseconds: Int64) {
        openNanoseconds = UInt64(max(0, openMilliseconds)) * 1_000_000
    }

    /// A connect attempt failed at `now`.
    package mutating func recordFailure(_ message: String, now: UInt64) {
        failure = (now, message)
    }

    /// A connect attempt succeeded: close the breaker.
    package mutating func recordSuccess() {
        failure = nil
    }

    /// The reason to refuse a connect attempt at `now`, or nil to allow it.
    package func rejection(now: UInt64) -> String? {
        guard let failure, now &- failure.at < openNanoseconds else { return nil }
        let ageMilliseconds = (now &- failure.at) / 1_000_000
        return "last connect attempt \(ageMilliseconds) ms ago failed: \(failure.message)"
    }
}
