import Testing
@testable import Shared

/// The sliding-log script and `RateLimiter` against a real Redis (`TEST_REDIS_URL`): window edges
/// in Redis time, atomicity under concurrent callers and instances, members, and the failure modes.
///
/// Every test uses a policy name of its own (so its keys are unique) and deletes its keys.
@Suite(.serialized) struct RateLimitScriptTests {
    init() { EventLoop.shared.startInBackground() }

    private static let logger = Logger(service: "rate-limit-test", minimumLevel: .error)

    /// A policy whose keys no other test or run shares.
    private static func policy(limit: Int, window: Duration = .milliseconds(10_000)) -> RateLimitPolicy {
        RateLimitPolicy(name: "test\(UInt64.random(in: 0...UInt64.max))", limit: limit, window: window)
    }

    /// Redis `TIME` in microseconds.
    @LoopActor
    private static func redisTime(_ client: RedisClient) async throws -> Int64 {
        let time = try await client.send(["TIME"]).array ?? []
        guard time.count == 2, let seconds = time[0].int, let micros = time[1].int else {
            throw RedisTestSupport.SetupFailure(description: "unexpected TIME reply")
        }
        return seconds * 1_000_000 + micros
    }

    /// A client whose server is a closed port: every command fails at once with `unavailable`.
    @LoopActor
    private static func unavailableClient() async throws -> RedisClient {
        let base = try RedisTestSupport.configuration()
        var configuration = RedisConfiguration(host: "127.0.0.1", port: Int(try RedisTestSupport.freePort()), database: base.database)
        configuration.backoff = RedisBackoff(minimum: .milliseconds(1_000), maximum: .milliseconds(1_000))
        let client = RedisClient(configuration: configuration)
        client.start()
        _ = await client.waitUntilConnected(timeout: .milliseconds(100))
        return client
    }

    // MARK: Window edges in Redis time

    @Test @LoopActor func entriesCountUntilExactlyOneWindowInRedisTime() async throws {
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let policy = Self.policy(limit: 2)
        let limiter = RateLimiter(policy: policy, failureMode: .deny, redis: client, logger: Self.logger)
        let key = limiter.key("edge")
        #expect(key == "chat:rl:\(policy.name):edge")

        let window = policy.window.wholeMilliseconds * 1_000
        let now = try await Self.redisTime(client)
        // One unit 300 ms from leaving (still counts), one that left 300 ms ago (purged by the script).
        _ = try await client.send(["ZADD", key, String(now - window + 300_000), "edge", String(now - window - 300_000), "gone"])

        let admitted = await limiter.check("edge")
        #expect(admitted.allowed)
        #expect(admitted.source == .redis)
        #expect(admitted.remaining == 0)
        #expect(abs(admitted.retryAfter.wholeMilliseconds - 300) <= 150, "\(admitted.retryAfter.wholeMilliseconds)")

        let refused = await limiter.check("edge")
        #expect(!refused.allowed)
        #expect(refused.remaining == 0)
        #expect(refused.source == .redis)
        #expect(abs(refused.retryAfter.wholeMilliseconds - 300) <= 150, "\(refused.retryAfter.wholeMilliseconds)")

        #expect(try await client.send(["ZCARD", key]) == .integer(2))
        #expect(try await client.send(["ZSCORE", key, "gone"]) == .null)
        #expect(try await client.send(["ZSCORE", key, "edge"]).int == now - window + 300_000)
        let ttl = try #require(try await client.send(["PTTL", key]).int)
        #expect(ttl > 0 && ttl <= policy.window.wholeMilliseconds, "\(ttl)")

        // Once the edge entry leaves, one slot is free again.
        await EventLoop.shared.sleep(for: .milliseconds(refused.retryAfter.wholeMilliseconds + 20))
        let freed = await limiter.check("edge")
        #expect(freed.allowed)
        #expect(freed.remaining == 0)
        #expect(!(await limiter.check("edge")).allowed)
        _ = try await client.send(["DEL", key])
    }

    @Test @LoopActor func rawScriptRepliesRemainingWaitAndOneFlagPerMember() async throws {
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let key = RedisTestSupport.uniqueKey("rl-raw")
        let now = try await Self.redisTime(client)
        _ = try await client.send(["ZADD", key, String(now - 10_000_000 + 300_000), "edge", String(now - 10_000_000 - 300_000), "gone"])

        let reply = try await client.evaluate(RateLimitScript.script, keys: [key], arguments: ["3", "10000", "a", "b", "c"])
        let values = try #require(reply.array)
        #expect(values.count == 5)
        #expect(values[0] == .integer(0))
        let wait = try #require(values[1].int)
        #expect(wait > 150_000 && wait <= 300_000, "\(wait) µs")
        #expect(values[2...].map(\.int) == [1, 1, 0])
        let decisions = try #require(RateLimitScript.decisions(reply, members: 3))
        #expect(decisions.map(\.allowed) == [true, true, false])
        #expect(decisions.allSatisfy { $0.remaining == 0 && $0.source == .redis })
        #expect(decisions[0].retryAfter.wholeMilliseconds == SlidingWindowLog.milliseconds(microseconds: wait))

        // An empty log: no wait, no key left behind.
        let empty = RedisTestSupport.uniqueKey("rl-empty")
        let none = try await client.evaluate(RateLimitScript.script, keys: [empty], arguments: ["3", "10000"])
        #expect(none == .array([.integer(3), .integer(0)]))
        #expect(try await client.send(["EXISTS", empty]) == .integer(0))
        let ttl = try #require(try await client.send(["PTTL", key]).int)
        #expect(ttl > 9_000 && ttl <= 10_000, "\(ttl)")
        _ = try await client.send(["DEL", key])
    }

    // MARK: Atomicity

    @Test @LoopActor func concurrentChecksAdmitExactlyTheLimit() async throws {
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let limiter = RateLimiter(policy: Self.policy(limit: 5), failureMode: .deny, redis: client, logger: Self.logger)
        let tasks = (0..<50).map { _ in Task { @LoopActor in await limiter.check("busy") } }
        var decisions: [RateLimitDecision] = []
        for task in tasks { decisions.append(await task.value) }
        #expect(decisions.count(where: \.allowed) == 5)
        #expect(decisions.allSatisfy { $0.source == .redis })
        #expect(decisions.filter { !$0.allowed }.allSatisfy { $0.remaining == 0 && $0.retryAfter.wholeMilliseconds > 9_000 })
        #expect(try await client.send(["ZCARD", limiter.key("busy")]) == .integer(5))
        _ = try await client.send(["DEL", limiter.key("busy")])
    }

    @Test @LoopActor func twoInstancesShareOneLimit() async throws {
        let first = try await RedisTestSupport.connectedClient()
        defer { first.close() }
        let second = try await RedisTestSupport.connectedClient()
        defer { second.close() }
        let policy = Self.policy(limit: 5)
        let a = RateLimiter(policy: policy, failureMode: .local, redis: first, logger: Self.logger)
        let b = RateLimiter(policy: policy, failureMode: .local, redis: second, logger: Self.logger)
        #expect(a.key("user") == b.key("user"))
        let tasks = (0..<50).map { index in
            Task { @LoopActor in await (index.isMultiple(of: 2) ? a : b).check("user") }
        }
        var decisions: [RateLimitDecision] = []
        for task in tasks { decisions.append(await task.value) }
        #expect(decisions.count(where: \.allowed) == 5)
        #expect(decisions.allSatisfy { $0.source == .redis })
        _ = try await first.send(["DEL", a.key("user")])
    }

    // MARK: Members

    @Test @LoopActor func aMemberIsCountedOnceAcrossCalls() async throws {
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let limiter = RateLimiter(policy: Self.policy(limit: 5), failureMode: .deny, redis: client, logger: Self.logger)
        let first = await limiter.check("7", members: ["msg-1"])
        #expect(first.map(\.allowed) == [true])
        #expect(first.first?.remaining == 4)
        let retry = await limiter.check("7", members: ["msg-1"])
        #expect(retry.map(\.allowed) == [true])
        #expect(retry.first?.remaining == 4)
        #expect(try await client.send(["ZCARD", limiter.key("7")]) == .integer(1))
        _ = try await client.send(["DEL", limiter.key("7")])
    }

    @Test @LoopActor func aBatchAdmitsItsFirstMembersUpToTheLimit() async throws {
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let limiter = RateLimiter(policy: Self.policy(limit: 5), failureMode: .deny, redis: client, logger: Self.logger)
        let members = (1...8).map { "msg-\($0)" }
        let decisions = await limiter.check("8", members: members)
        #expect(decisions.map(\.allowed) == [true, true, true, true, true, false, false, false])
        #expect(decisions.allSatisfy { $0.remaining == 0 && $0.source == .redis })
        // The same batch redelivered: the admitted keep their slots, the refused stay refused.
        let again = await limiter.check("8", members: members)
        #expect(again.map(\.allowed) == decisions.map(\.allowed))
        // Another subject is not affected.
        let other = await limiter.check("9", members: ["msg-1"])
        #expect(other.map(\.allowed) == [true])
        _ = try await client.send(["DEL", limiter.key("8"), limiter.key("9")])
    }

    // MARK: Failure modes

    @Test @LoopActor func allowAdmitsWhenRedisIsDown() async throws {
        let client = try await Self.unavailableClient()
        defer { client.close() }
        let limiter = RateLimiter(policy: Self.policy(limit: 2), failureMode: .allow, redis: client, logger: Self.logger)
        for _ in 0..<5 {
            let decision = await limiter.check("user")
            #expect(decision == RateLimitDecision(allowed: true, remaining: 2, retryAfter: .milliseconds(0), source: .failOpen))
        }
        #expect(await limiter.check("user", members: ["a", "b", "c"]).map(\.source) == [.failOpen, .failOpen, .failOpen])
    }

    @Test @LoopActor func denyRefusesWhenRedisIsDown() async throws {
        let client = try await Self.unavailableClient()
        defer { client.close() }
        let limiter = RateLimiter(policy: Self.policy(limit: 2), failureMode: .deny, redis: client, logger: Self.logger)
        let decision = await limiter.check("user")
        #expect(!decision.allowed)
        #expect(decision.source == .failClosed)
        #expect(decision.retryAfter.wholeMilliseconds > 0)
        let batch = await limiter.check("user", members: ["a", "b"])
        #expect(batch.map(\.allowed) == [false, false])
        #expect(batch.map(\.source) == [.failClosed, .failClosed])
    }

    @Test @LoopActor func localEnforcesTheLimitInProcessWhenRedisIsDown() async throws {
        let client = try await Self.unavailableClient()
        defer { client.close() }
        let limiter = RateLimiter(policy: Self.policy(limit: 5), failureMode: .local, redis: client, logger: Self.logger)
        for index in 0..<5 {
            let decision = await limiter.check("user")
            #expect(decision.allowed)
            #expect(decision.remaining == 4 - index)
            #expect(decision.source == .local)
        }
        let refused = await limiter.check("user")
        #expect(!refused.allowed)
        #expect(refused.source == .local)
        #expect(refused.retryAfter.wholeMilliseconds > 9_000 && refused.retryAfter.wholeMilliseconds <= 10_000)
        // Subjects stay independent, and members keep their slots, as in Redis.
        #expect((await limiter.check("other")).allowed)
        #expect(await limiter.check("m", members: ["x", "x", "y"]).map(\.allowed) == [true, true, true])
        #expect(await limiter.check("m", members: ["x"]).first?.remaining == 3)
    }
}
