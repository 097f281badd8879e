import Runtime

/// The sliding-log rule, in memory: the same decisions as `RateLimitScript` makes in Redis, for
/// unit tests of the window edges and as the per-process fallback (`RateLimitFailureMode.local`).
///
/// A unit admitted at time `t` counts while `now - t < window`, i.e. it leaves the window at exactly
/// `t + window`. A member already in the window (a retried command with the same id) is admitted
/// again without being counted twice. Times are microseconds from any monotonic origin.
package struct SlidingWindowLog: Sendable {
    private struct Log: Sendable {
        /// Admission times, oldest first, with their members.
        var entries: [(time: Int64, member: String)] = []
    }

    private var logs: [String: Log] = [:]
    /// Most keys kept; beyond it the log with the oldest newest-entry is dropped first (an
    /// attacker cycling keys cannot grow memory without bound; dropping forgets, so it only errs
    /// towards admitting).
    package let maxKeys: Int

    package init(maxKeys: Int = 100_000) {
        self.maxKeys = max(1, maxKeys)
    }

    /// Keys with a log (for tests and metrics).
    package var keyCount: Int { logs.count }

    /// Decides each of `members` in order for `key` under `policy` at `now` (microseconds).
    package mutating func decide(key: String, members: [String], policy: RateLimitPolicy, now: Int64) -> [RateLimitDecision] {
        let window = policy.window.wholeMilliseconds * 1000
        var log = logs[key] ?? Log()
        let firstLive = log.entries.firstIndex { $0.time > now - window } ?? log.entries.count
        log.entries.removeFirst(firstLive)
        var decisions: [RateLimitDecision] = []
        decisions.reserveCapacity(members.count)
        for member in members {
            var allowed = false
            if log.entries.contains(where: { $0.member == member }) {
                allowed = true
            } else if log.entries.count < policy.limit {
                log.entries.append((time: now, member: member))
                allowed = true
            }
            decisions.append(RateLimitDecision(allowed: allowed, remaining: 0, retryAfter: .zero, source: .local))
        }
        // Like the script: remaining and the wait are read once, after every member is decided.
        let remaining = policy.limit - log.entries.count
        let wait = log.entries.first.map { Self.milliseconds(microseconds: $0.time + window - now) } ?? 0
        for index in decisions.indices {
            decisions[index].remaining = max(0, remaining)
            decisions[index].retryAfter = .milliseconds(wait)
        }
        if log.entries.isEmpty {
            logs[key] = nil
        } else {
            if logs[key] == nil && logs.count >= maxKeys { evict(now: now, window: window) }
            logs[key] = log
        }
        return decisions
    }

    /// Drops expired logs, then (if still full) the least recently used one.
    private mutating func evict(now: Int64, window: Int64) {
        logs = logs.filter { ($0.value.entries.last?.time ?? .min) > now - window }
        guard logs.count >= maxKeys, let stalest = logs.min(by: { ($0.value.entries.last?.time ?? .min) < ($1.value.entries.last?.time ?? .min) }) else { return }
        logs[stalest.key] = nil
    }

    /// Microseconds to whole milliseconds, rounded up (a client waiting this long is never early);
    /// 0 for a wait that has passed. Any `Int64` is accepted: the rate-limit script's wait is a
    /// Redis reply.
    package static func milliseconds(microseconds: Int64) -> Int64 {
        max(0, microseconds.dividedRoundingUp(by: 1000))
    }
}
