import API
import HTTP
import JSON
import Runtime
import Support

/// A limit of `limit` units per sliding window, e.g. 5 messages per 10 s, with a name used in the
/// `RateLimit-Policy` header, in error bodies (`"limit": "messages"`) and in metrics.
package struct RateLimitPolicy: Sendable, Equatable {
    /// Short identifier: `api`, `messages`, `login`, `login-ip`.
    package let name: String
    /// Units allowed in any window.
    package let limit: Int
    /// The window's length (whole milliseconds: the grain of the Lua script and the local log).
    package let window: Duration

    package init(name: String, limit: Int, window: Duration) {
        precondition(limit > 0 && window >= .milliseconds(1), "a policy allows at least one unit per positive window")
        self.name = name
        self.limit = limit
        self.window = window
    }

    /// Largest limit accepted from configuration (a sliding log stores one entry per unit).
    package static let maxLimit = 10_000_000
    /// Longest window accepted from configuration: one day.
    package static let maxWindow = Duration.seconds(86_400)

    /// Parses `<count>/<duration>` with a duration of `<n>ms`, `<n>s`, `<n>m` or `<n>h` (`5/10s`,
    /// `100/1m`), or `off` for no limit (nil). Throws a message saying what is wrong.
    package static func parse(_ text: String, name: String) throws(RateLimitPolicyError) -> RateLimitPolicy? {
        let trimmed = Substring(text).trimmingSpaces()
        if trimmed.lowercased() == "off" { return nil }
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let limit = Int(parts[0].trimmingSpaces()), limit > 0, limit <= maxLimit else {
            throw RateLimitPolicyError("expected <count>/<window> such as 5/10s or 100/1m (count 1...\(maxLimit)), or off; got '\(text)'")
        }
        let window = parts[1].trimmingSpaces().lowercased()
        let units: [(suffix: String, milliseconds: Int64)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)]
        for unit in units where window.hasSuffix(unit.suffix) {
            let number = window.dropLast(unit.suffix.count)
            guard let amount = Int64(number), amount > 0, amount <= maxWindow.wholeMilliseconds / unit.milliseconds else { break }
            return RateLimitPolicy(name: name, limit: limit, window: .milliseconds(amount * unit.milliseconds))
        }
        throw RateLimitPolicyError("the window must be a positive duration up to 24h such as 500ms, 10s, 1m or 1h; got '\(parts[1])'")
    }

    /// The window in whole seconds (at least 1), as the `w` parameter of `RateLimit-Policy`.
    package var windowSeconds: Int64 { max(1, window.secondsRoundedUp) }

    /// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers, structured form): `"api";q=100;w=60`.
    package var policyHeader: String { "\"\(name)\";q=\(limit);w=\(windowSeconds)" }

    /// Human form for messages and logs: `100 per 1m`.
    package var summary: String {
        let text: String
        switch window.wholeMilliseconds {
        case let ms where ms % 3_600_000 == 0: text = "\(ms / 3_600_000)h"
        case let ms where ms % 60_000 == 0: text = "\(ms / 60_000)m"
        case let ms where ms % 1_000 == 0: text = "\(ms / 1_000)s"
        case let ms: text = "\(ms)ms"
        }
        return "\(limit) per \(text)"
    }
}

/// A policy text that cannot be used.
package struct RateLimitPolicyError: Error, Sendable, Equatable {
    package let message: String
    package init(_ message: String) { self.message = message }
}

/// What a limiter does when Redis cannot answer.
package enum RateLimitFailureMode: String, Sendable, Equatable, CaseIterable {
    /// Let the request through (availability over protection).
    case allow
    /// Refuse it with 503 `rate_limiter_unavailable` (protection over availability).
    case deny
    /// Decide with the same sliding log kept in this process: each instance enforces the limit on
    /// its own, so the cluster admits at most instances × limit until Redis is back.
    case local
}

/// One limiter decision for one unit.
package struct RateLimitDecision: Sendable, Equatable {
    /// Whether the unit is admitted.
    package var allowed: Bool
    /// Units left in the window after this decision.
    package var remaining: Int
    /// Time until the oldest counted unit leaves the window (a unit becomes available); zero when
    /// the log is empty. For a refused unit this is the wait before a retry can succeed.
    package var retryAfter: Duration
    /// How the decision was made (Redis, the local fallback, or a failure mode without counting).
    package var source: Source

    package enum Source: String, Sendable, Equatable {
        case redis, local, failOpen, failClosed
    }

    package init(allowed: Bool, remaining: Int, retryAfter: Duration, source: Source = .redis) {
        self.allowed = allowed
        self.remaining = remaining
        self.retryAfter = retryAfter
        self.source = source
    }

    /// `RateLimit` (structured form): `"api";r=57;t=42`, `t` in whole seconds rounded up.
    package func header(for policy: RateLimitPolicy) -> String {
        "\"\(policy.name)\";r=\(max(0, remaining));t=\(retryAfter.secondsRoundedUp)"
    }

    /// `Retry-After` seconds for a refusal: at least 1, rounded up.
    package var retryAfterSeconds: Int64 { APIError.retryAfterSeconds(retryAfter) }

    /// The error refusing this unit, nil when it is allowed: 429 `rate_limited` (saying `what` was
    /// too much), or 503 `rate_limiter_unavailable` when a `deny` limiter could not reach Redis.
    package func refusal(_ policy: RateLimitPolicy, what: String) -> APIError? {
        guard !allowed else { return nil }
        if source == .failClosed { return .rateLimiterUnavailable }
        return .rateLimited(policy, self, message: "\(what) (\(policy.summary)); retry in \(retryAfterSeconds) s")
    }
}

extension APIError {
    /// 429 for a refused unit: `Retry-After`, and `limit` + `retryAfterMs` in the error body.
    package static func rateLimited(_ policy: RateLimitPolicy, _ decision: RateLimitDecision, message: String? = nil) -> APIError {
        rateLimited(limit: policy.name, retryAfter: decision.retryAfter,
                    message: message ?? "rate limit exceeded (\(policy.summary)); retry in \(decision.retryAfterSeconds) s")
    }
}
