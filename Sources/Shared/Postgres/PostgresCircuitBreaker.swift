import Runtime

/// Remembers a failed connect attempt for a short while so that, when the server is down, callers
/// fail at once with `.unavailable` instead of each waiting out its own connect attempt (a
/// circuit breaker with a fixed open period and no half-open state: the first attempt after the
/// period is the probe). Time is passed in, so tests need no clock.
package struct PostgresCircuitBreaker: Sendable {
    /// How long a failure keeps the breaker open, in nanoseconds.
    package let openNanoseconds: UInt64
    private var failure: (at: UInt64, message: String)?

    /// `openFor` ≤ 0 disables the breaker.
    package init(openFor: Duration) {
        openNanoseconds = openFor.nanosecondsSaturated
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
        let age = Duration.between(failure.at, now).wholeMilliseconds
        return "last connect attempt \(age) ms ago failed: \(failure.message)"
    }
}
