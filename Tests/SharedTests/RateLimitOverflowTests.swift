import Testing
@testable import Shared

/// Waits that come from outside the process (the rate-limit script's reply, a worker's
/// `retryAfterMs`) at the ends of `Int64`: converted to milliseconds and seconds without trapping.
@Suite struct RateLimitOverflowTests {
    /// `Int64.max` microseconds or milliseconds, rounded up to the next thousand.
    private static let maxRoundedUp: Int64 = Int64.max / 1000 + 1

    @Test func scriptWaitAtInt64MaxConvertsInsteadOfTrapping() {
        let reply = RedisValue.array([.integer(0), .integer(.max), .integer(0)])
        let decision = RateLimitScript.decisions(reply, members: 1)?.first
        #expect(decision?.retryAfter.wholeMilliseconds == Self.maxRoundedUp)
        #expect(decision?.retryAfterSeconds == Int64.max / 1_000_000 + 1)
        let policy = RateLimitPolicy(name: "messages", limit: 5, window: .milliseconds(10_000))
        #expect(decision?.header(for: policy) == "\"messages\";r=0;t=\(Int64.max / 1_000_000 + 1)")
        let refusal = decision?.refusal(policy, what: "too many messages")
        #expect(refusal?.headers["Retry-After"] == String(Int64.max / 1_000_000 + 1))
        #expect(refusal?.details["retryAfterMs"] == .int(Self.maxRoundedUp))
    }

    @Test func scriptWaitAtInt64MinIsNoWait() {
        let reply = RedisValue.array([.integer(.min), .integer(.min), .integer(1)])
        let decision = RateLimitScript.decisions(reply, members: 1)?.first
        #expect(decision?.retryAfter.wholeMilliseconds == 0)
        #expect(decision?.remaining == 0)
        #expect(decision?.retryAfterSeconds == 1)
    }

    @Test func conversionsAcceptEveryInt64() {
        #expect(SlidingWindowLog.milliseconds(microseconds: .max) == Self.maxRoundedUp)
        #expect(SlidingWindowLog.milliseconds(microseconds: .min) == 0)
        #expect(SlidingWindowLog.milliseconds(microseconds: -1_500) == 0)
        #expect(APIError.retryAfterSeconds(.milliseconds(Int64.max)) == Self.maxRoundedUp)
        #expect(APIError.retryAfterSeconds(.milliseconds(Int64.min)) == 1)
        #expect(APIError.retryAfterSeconds(.milliseconds(1_001)) == 2)
        #expect(RateLimitPolicy(name: "p", limit: 1, window: .milliseconds(Int64.max)).windowSeconds == Self.maxRoundedUp)
        let refused = RateLimitDecision(allowed: false, remaining: 0, retryAfter: .milliseconds(Int64.max))
        #expect(refused.header(for: RateLimitPolicy(name: "p", limit: 1, window: .milliseconds(1))) == "\"p\";r=0;t=\(Self.maxRoundedUp)")
    }

    /// A gateway turns a worker's `rate_limited` reply (JSON read from Redis pub/sub) into a 429.
    @Test func workerReplyWithHugeRetryAfterGivesA429() {
        let error = ChatErrors.apiError(code: "rate_limited", message: "slow down", details: ["retryAfterMs": .int(.max)])
        #expect(error.status == .tooManyRequests)
        #expect(error.headers["Retry-After"] == String(Self.maxRoundedUp))
        let negative = ChatErrors.apiError(code: "rate_limited", message: "slow down", details: ["retryAfterMs": .int(.min)])
        #expect(negative.headers["Retry-After"] == "1")
    }
}
