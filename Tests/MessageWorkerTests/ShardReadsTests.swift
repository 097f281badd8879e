import Testing
@testable import MessageWorker
@testable import Shared

/// The lease-checked reads of the shard streams (issue 12) against a real Redis (`TEST_REDIS_URL`,
/// database 8): entries reach only the lease holder, and where to wait from is said only when
/// nothing was read.
@Suite(.serialized) struct ShardReadsTests {
    init() { EventLoop.shared.startInBackground() }

    private static let layout = CommandShards(count: 4, prefix: "t:cmd")

    @LoopActor
    private static func prepare(_ redis: RedisClient, leases: [Int: String]) async throws {
        for shard in 0..<layout.count {
            _ = try await redis.send(["XGROUP", "CREATE", layout.stream(shard), "workers", "0", "MKSTREAM"])
        }
        for (shard, holder) in leases { _ = try await redis.send(["SET", layout.lease(shard), holder]) }
    }

    @Test @LoopActor func entriesGoOnlyToTheLeaseHolderWithinTheBudget() async throws {
        let redis = try await ShardTestServices.flushedRedis(database: 8)
        defer { redis.close() }
        try await Self.prepare(redis, leases: [0: "me", 1: "me", 2: "other"])
        for n in 0..<3 { _ = try await redis.send(["XADD", Self.layout.stream(0), "*", "n", String(n)]) }
        _ = try await redis.send(["XADD", Self.layout.stream(1), "*", "n", "x"])
        _ = try await redis.send(["XADD", Self.layout.stream(2), "*", "n", "y"])

        let first = try await ShardReads.read([0, 1, 2, 3], layout: Self.layout, group: "workers", worker: "me", count: 2, on: redis)
        #expect(first.map(\.shard) == [0, 1, 2, 3])
        #expect(first[0].result == .entries && first[0].entries.count == 2)
        #expect(first[1].result == .skipped, "the budget was spent on shard 0")
        #expect(first[2].result == .lost)
        #expect(first[3].result == .lost, "nobody holds shard 3")
        let second = try await ShardReads.read([1, 0], layout: Self.layout, group: "workers", worker: "me", count: 10, on: redis)
        #expect(second[0].result == .entries && second[0].entries.count == 1)
        #expect(second[1].result == .entries && second[1].entries.count == 1)
        // Nothing left anywhere: each shard says where to wait from.
        let third = try await ShardReads.read([0, 1], layout: Self.layout, group: "workers", worker: "me", count: 10, on: redis)
        let lastOfZero = try await redis.send(["XREVRANGE", Self.layout.stream(0), "+", "-", "COUNT", "1"]).array?.first?.array?.first?.string
        #expect(third[0].result == .idle(lastID: try #require(lastOfZero)))
        if case .idle = third[1].result {} else { Issue.record("shard 1 should be idle: \(third[1].result)") }
        // The other worker's shard was never delivered to anyone.
        let pending = try await redis.send(["XPENDING", Self.layout.stream(2), "workers"]).array?.first?.int
        #expect(pending == 0)
    }

    @Test @LoopActor func anIdleShardIsReadAgainWhenAnotherHadEntries() async throws {
        let redis = try await ShardTestServices.flushedRedis(database: 8)
        defer { redis.close() }
        try await Self.prepare(redis, leases: [0: "me", 1: "me"])
        _ = try await redis.send(["XADD", Self.layout.stream(1), "*", "n", "1"])
        let results = try await ShardReads.read([0, 1], layout: Self.layout, group: "workers", worker: "me", count: 10, on: redis)
        #expect(results[0].result == .skipped)
        #expect(results[1].result == .entries)
    }

    @Test @LoopActor func aClaimTakesOverWhateverIsPendingOnlyForTheLeaseHolder() async throws {
        let redis = try await ShardTestServices.flushedRedis(database: 8)
        defer { redis.close() }
        try await Self.prepare(redis, leases: [0: "me"])
        _ = try await redis.send(["XADD", Self.layout.stream(0), "*", "n", "1"])
        _ = try await redis.send(["XREADGROUP", "GROUP", "workers", "dead", "STREAMS", Self.layout.stream(0), ">"])
        let stolen = try await ShardReads.claim(0, cursor: "0-0", layout: Self.layout, group: "workers", worker: "intruder", count: 10, on: redis)
        #expect(stolen == .lost)
        let claimed = try await ShardReads.claim(0, cursor: "0-0", layout: Self.layout, group: "workers", worker: "me", count: 10, on: redis)
        guard case .claimed(let page) = claimed else { Issue.record("not claimed"); return }
        #expect(page.entries.count == 1 && page.nextCursor == "0-0")
    }

    @Test func repliesParseIntoResults() {
        func bulk(_ text: String) -> RedisValue { .bulk(Array(text.utf8)) }
        let reply = RedisValue.array([
            .array([bulk("entries"), .array([.array([bulk("1-0"), .array([bulk("k"), bulk("v")])])])]),
            .array([bulk("idle"), bulk("7-1")]),
            .array([bulk("gated"), bulk("9-0")]),
            .array([bulk("lost")]),
            .array([bulk("nogroup"), bulk("")]),
            .array([bulk("skipped"), bulk("")]),
        ])
        let results = ShardReads.parse(readReply: reply, shards: [5, 6, 7, 8, 9, 10, 11])
        #expect(results.map(\.result) == [.entries, .idle(lastID: "7-1"), .gated(lastID: "9-0"), .lost, .noGroup, .skipped, .skipped])
        #expect(results.map(\.shard) == [5, 6, 7, 8, 9, 10, 11])
        #expect(results[0].entries.map(\.id) == ["1-0"])
    }
}
