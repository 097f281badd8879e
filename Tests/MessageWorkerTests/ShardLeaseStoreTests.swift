import Glibc
import Testing
@testable import MessageWorker
@testable import Shared

/// Shard leases and the worker roster (issue 12) against a real Redis (`TEST_REDIS_URL`, database 10,
/// apart from the suites that use the product's key names on database 0).
@Suite(.serialized) struct ShardLeaseStoreTests {
    init() { EventLoop.shared.startInBackground() }

    @Test @LoopActor func aLeaseHasOneOwnerWhoAloneRenewsAndReleasesIt() async throws {
        let redis = try await ShardTestServices.flushedRedis(database: 10)
        defer { redis.close() }
        let shards = CommandShards(count: 8)
        let one = ShardLeaseStore(redis: redis, shards: shards, workerID: "w1", ttl: .seconds(5))
        let two = ShardLeaseStore(redis: redis, shards: shards, workerID: "w2", ttl: .seconds(5))
        #expect(try await one.acquire(3))
        #expect(try await two.acquire(3) == false)
        #expect(try await two.acquire(4))
        #expect(try await one.owner(3) == "w1")
        #expect(try await two.renew(3) == false)
        #expect(try await one.renew(3))
        #expect(try await two.release(3) == false)
        #expect(try await one.owner(3) == "w1")
        #expect(try await one.release(3))
        #expect(try await one.owner(3) == nil)
        #expect(try await two.acquire(3))
        let ttl = try await redis.send(["PTTL", shards.lease(3)]).int ?? -1
        #expect(ttl > 4_000 && ttl <= 5_000, "\(ttl)")
    }

    @Test @LoopActor func aLapsedLeaseGoesToTheNextWorkerAndTheOldOneCannotRenewIt() async throws {
        let redis = try await ShardTestServices.flushedRedis(database: 10)
        defer { redis.close() }
        let shards = CommandShards(count: 8)
        let paused = ShardLeaseStore(redis: redis, shards: shards, workerID: "paused", ttl: .milliseconds(150))
        let next = ShardLeaseStore(redis: redis, shards: shards, workerID: "next", ttl: .seconds(5))
        #expect(try await paused.acquire(0))
        await EventLoop.shared.sleep(for: .milliseconds(250))
        #expect(try await next.acquire(0))
        #expect(try await paused.renew(0) == false)
        #expect(try await paused.release(0) == false)
        #expect(try await next.owner(0) == "next")
    }

    @Test @LoopActor func theRosterListsWorkersUntilTheirLivenessLapsesOrTheyLeave() async throws {
        let redis = try await ShardTestServices.flushedRedis(database: 10)
        defer { redis.close() }
        let shards = CommandShards(count: 8)
        let a = ShardLeaseStore(redis: redis, shards: shards, workerID: "a", ttl: .milliseconds(200))
        let b = ShardLeaseStore(redis: redis, shards: shards, workerID: "b", ttl: .seconds(5))
        let c = ShardLeaseStore(redis: redis, shards: shards, workerID: "c", ttl: .seconds(5))
        #expect(try await a.heartbeat() == ["a"])
        #expect(try await b.heartbeat() == ["a", "b"])
        await EventLoop.shared.sleep(for: .milliseconds(300))
        #expect(try await b.heartbeat() == ["b"])
        #expect(try await c.heartbeat() == ["b", "c"])
        try await b.leave()
        #expect(try await c.heartbeat() == ["c"])
        // Each heartbeat also records the shard count, which the gateways check theirs against.
        #expect(try await redis.send(.get(shards.countKey)).int == 8)
    }

    @Test @LoopActor func oneBlockingReadServesEveryHeldShardStream() async throws {
        let redis = try await ShardTestServices.flushedRedis(database: 10)
        defer { redis.close() }
        let shards = CommandShards(count: 8)
        for shard in [1, 6] {
            _ = try await redis.send(.xgroupCreate(shards.stream(shard), group: "workers", startID: "0", makeStream: true))
            _ = try await redis.send(.xadd(shards.stream(shard), fields: ["type", "s\(shard)"]))
        }
        let reply = try await redis.send(.xreadgroup(group: "workers", consumer: "w1", count: 10, block: .milliseconds(100),
                                                     streams: [(shards.stream(1), ">"), (shards.stream(6), ">")]))
        // One entry per stream, each under its stream's name.
        let streams = (reply.array ?? []).compactMap { entry -> String? in
            guard case .bulk(let name)? = entry.array?.first else { return nil }
            return String(decoding: name, as: UTF8.self)
        }
        #expect(streams.sorted() == [shards.stream(1), shards.stream(6)])
    }
}
