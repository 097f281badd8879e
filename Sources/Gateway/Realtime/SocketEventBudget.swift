import Shared

/// How many events one socket may send: a token bucket of `ratePerSecond` with room for `burst`
/// events at once. An event beyond it is refused (`rate_limited`); a socket that goes on flooding
/// (more than `floodRefusals` refused events within `floodWindow`) is closed.
///
/// Pure: the caller passes monotonic nanoseconds. Credit is kept in nanoseconds of refill time, so
/// the arithmetic is integer and exact: one event costs `1e9 / rate` ns of credit, the bucket holds
/// `burst` events' worth, and credit grows by one per nanosecond elapsed.
struct SocketEventBudget: Sendable, Equatable {
    struct Configuration: Sendable, Equatable {
        /// Events per second sustained.
        var ratePerSecond: Int
        /// Events admitted at once after a quiet period.
        var burst: Int
        /// Refused events within `floodWindowNanoseconds` beyond which the socket is closed; 0 never closes.
        var floodRefusals: Int

        /// Valid ranges, checked by configuration.
        static let rateRange = 1...1_000_000
        static let burstRange = 1...1_000_000
        static let floodRange = 0...100_000_000
        /// The window refusals are counted in.
        static let floodWindowNanoseconds: UInt64 = 10_000_000_000

        static let `default` = Configuration(ratePerSecond: 50, burst: 100, floodRefusals: 200)
    }

    enum Decision: Sendable, Equatable {
        case admitted
        /// Refused; a retry after this many milliseconds would be admitted.
        case refused(retryAfter: Duration)
        /// Refused, and the socket has been flooding: close it.
        case flood
    }

    let configuration: Configuration
    private let cost: UInt64
    private let capacity: UInt64
    private var credit: UInt64
    private var lastRefill: UInt64
    private var windowStart: UInt64
    private var refusedInWindow = 0

    /// A full bucket at `now`.
    init(configuration: Configuration, now: UInt64) {
        // Ranges are validated by configuration; clamp anyway so no value can trap here.
        let rate = UInt64(min(max(configuration.ratePerSecond, 1), Configuration.rateRange.upperBound))
        let burst = UInt64(min(max(configuration.burst, 1), Configuration.burstRange.upperBound))
        self.configuration = configuration
        cost = max(1, 1_000_000_000 / rate)
        capacity = cost * burst
        credit = capacity
        lastRefill = now
        windowStart = now
    }

    /// Decides one event arriving at `now`.
    mutating func admit(now: UInt64) -> Decision {
        if now > lastRefill {
            credit = min(capacity, credit.addingSaturated(now - lastRefill))
            lastRefill = now
        }
        if credit >= cost {
            credit -= cost
            return .admitted
        }
        if now < windowStart || now - windowStart >= Configuration.floodWindowNanoseconds {
            windowStart = now
            refusedInWindow = 0
        }
        refusedInWindow += 1
        if configuration.floodRefusals > 0 && refusedInWindow > configuration.floodRefusals {
            return .flood
        }
        return .refused(retryAfter: .between(credit, cost))
    }
}
