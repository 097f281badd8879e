import JSON
import Redis
import Runtime
import Security
import Support

/// The sliding-log limit in Redis: one atomic script per decision, time from `redis.call('TIME')`
/// (so every instance shares one clock), one sorted set per subject that expires with its window.
///
/// `KEYS[1]` the log; `ARGV[1]` limit; `ARGV[2]` window in ms; `ARGV[3...]` one member per unit,
/// decided in order. A member already in the window is admitted without being counted again (a
/// retried command keeps its slot). Returns `{remaining, microseconds until the oldest entry leaves
/// (0 if none), allowed_1, ..., allowed_n}`. Scores are microseconds: below 2^53, exact in Lua.
package enum RateLimitScript {
    package static let script = RedisScript(source: """
        local key = KEYS[1]
        local limit = tonumber(ARGV[1])
        local window = tonumber(ARGV[2]) * 1000
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
        redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
        local count = redis.call('ZCARD', key)
        local result = {0, 0}
        for i = 3, #ARGV do
          local allowed = 0
          if redis.call('ZSCORE', key, ARGV[i]) then
            allowed = 1
          elseif count < limit then
            redis.call('ZADD', key, now, ARGV[i])
            count = count + 1
            allowed = 1
          end
          result[#result + 1] = allowed
        end
        result[1] = limit - count
        local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
        if oldest[2] then
          result[2] = tonumber(oldest[2]) + window - now
          redis.call('PEXPIRE', key, ARGV[2])
        end
        return result
        """)

    /// The decisions in a script reply, one per member; nil when the reply has another shape.
    package static func decisions(_ reply: RedisValue, members: Int) -> [RateLimitDecision]? {
        guard let values = reply.array, values.count == members + 2,
              let remaining = values[0].int, let wait = values[1].int else { return nil }
        var decisions: [RateLimitDecision] = []
        decisions.reserveCapacity(members)
        for value in values[2...] {
            guard let allowed = value.int else { return nil }
            decisions.append(RateLimitDecision(allowed: allowed == 1, remaining: Int(max(0, remaining)),
                                               retryAfter: .milliseconds(SlidingWindowLog.milliseconds(microseconds: wait))))
        }
        return decisions
    }
}

/// One policy enforced for the whole cluster through Redis, with the configured behaviour when
/// Redis cannot answer. Keys are `chat:rl:<policy>:<subject>`.
@LoopActor
package final class RateLimiter {
    package let policy: RateLimitPolicy
    package let failureMode: RateLimitFailureMode
    private let redis: RedisClient
    private let logger: Logger
    private var local: SlidingWindowLog
    /// Members of units that carry no identity of their own: unique per process and call.
    private let memberPrefix = SecureRandom.token(byteCount: 6)
    private var memberCounter: UInt64 = 0
    private var lastFailureLog: UInt64 = 0

    /// Most units decided in one script call (a batch of commands from one sender).
    package static let maxMembersPerCall = 1_000

    package init(policy: RateLimitPolicy, failureMode: RateLimitFailureMode, redis: RedisClient, logger: Logger,
                 maxLocalKeys: Int = 100_000) {
        self.policy = policy
        self.failureMode = failureMode
        self.redis = redis
        self.logger = logger
        local = SlidingWindowLog(maxKeys: maxLocalKeys)
    }

    /// The Redis key of a subject's log.
    package func key(_ subject: String) -> String { "chat:rl:\(policy.name):\(subject)" }

    /// Decides one unit that has no identity of its own (an HTTP request, a login attempt).
    package func check(_ subject: String) async -> RateLimitDecision {
        memberCounter += 1
        let decisions = await check(subject, members: [memberPrefix + "-" + String(memberCounter)])
        return decisions[0]
    }

    /// Decides `members` (e.g. client message ids) in order, atomically; a member already counted
    /// in the window is admitted again without using another unit.
    package func check(_ subject: String, members: [String]) async -> [RateLimitDecision] {
        precondition(!members.isEmpty && members.count <= Self.maxMembersPerCall, "1...\(Self.maxMembersPerCall) members per call")
        let decisions: [RateLimitDecision]
        do throws(RedisError) {
            let reply = try await redis.evaluate(RateLimitScript.script, keys: [key(subject)],
                                                 arguments: [String(policy.limit), String(policy.window.wholeMilliseconds)] + members)
            guard let parsed = RateLimitScript.decisions(reply, members: members.count) else {
                throw RedisError.protocolError("unexpected rate-limit script reply")
            }
            decisions = parsed
        } catch {
            decisions = fallback(subject, members: members, error: error)
        }
        let refused = decisions.count(where: { !$0.allowed && $0.source != .failClosed })
        if refused > 0 { RateLimitMetrics.rejections.increment(policy.name, by: Double(refused)) }
        return decisions
    }

    private func fallback(_ subject: String, members: [String], error: RedisError) -> [RateLimitDecision] {
        RateLimitMetrics.fallbacks.increment(policy.name, by: Double(members.count))
        let now = MonotonicClock.now()
        if now - lastFailureLog >= 10_000_000_000 || lastFailureLog == 0 {
            lastFailureLog = now
            logger.warn("rate limiter cannot reach Redis; applying the failure mode", [
                "limit": .string(policy.name), "mode": .string(failureMode.rawValue), "error": .string(error.description),
            ])
        }
        switch failureMode {
        case .allow:
            return members.map { _ in RateLimitDecision(allowed: true, remaining: policy.limit, retryAfter: .zero, source: .failOpen) }
        case .deny:
            return members.map { _ in RateLimitDecision(allowed: false, remaining: 0, retryAfter: .seconds(1), source: .failClosed) }
        case .local:
            return local.decide(key: subject, members: members, policy: policy, now: Int64(now / 1_000))
        }
    }
}
