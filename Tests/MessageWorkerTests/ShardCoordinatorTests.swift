import Glibc
import Testing
@testable import MessageWorker
@testable import Shared

/// Two workers' coordinators sharing shards through a real Redis (`TEST_REDIS_URL`, database 9) and
/// a real PostgreSQL (`TEST_DATABASE_URL`, a schema of its own), on the system clock with a short
/// lease TTL.
@Suite(.serialized) struct ShardCoordinatorTests {
    init() { EventLoop.shared.startInBackground() }

    /// What one coordinator's consumer would see.
    @LoopActor
    final class Held {
        var epochs: [Int: Int64] = [:]
        var stops = 0
    }

    @LoopActor
    private static func coordinator(_ id: String, redis: RedisClient, pool: PostgresPool, shards: CommandShards) -> (ShardCoordinator, Held) {
        let store = ShardLeaseStore(redis: redis, shards: shards, workerID: id, ttl: .milliseconds(900))
        let coordinator = ShardCoordinator(shards: shards, store: store, database: pool,
                                           timing: ShardLease.Timing(ttl: .milliseconds(900), retryEvery: .milliseconds(150)),
                                           logger: Logger(service: "test", minimumLevel: .error))
        let held = Held()
        coordinator.onStart = { shard, epoch in held.epochs[shard] = epoch }
        coordinator.onStop = { shard in
            held.epochs[shard] = nil
            held.stops += 1
        }
        return (coordinator, held)
    }

    @LoopActor
    private static func until(_ what: String, seconds: Double = 8, _ condition: @LoopActor () -> Bool) async throws {
        let deadline = MonotonicClock.deadline(after: .milliseconds(Int64(seconds * 1000)), from: MonotonicClock.now())
        while !condition() {
            guard MonotonicClock.now() < deadline else { throw ShardTestServices.SetupFailure(description: "timed out waiting for \(what)") }
            await EventLoop.shared.sleep(for: .milliseconds(20))
        }
    }

    @Test @LoopActor func twoWorkersSplitTheShardsAndOneTakesAllWhenTheOtherLeaves() async throws {
        let redis = try await ShardTestServices.flushedRedis(database: 9)
        let schema = try await ShardTestServices.Schema(poolSize: 2)
        let pool = schema.pool
        let shards = CommandShards(count: 8)
        let (one, heldByOne) = Self.coordinator("worker-one", redis: redis, pool: pool, shards: shards)
        let (two, heldByTwo) = Self.coordinator("worker-two", redis: redis, pool: pool, shards: shards)
        one.start()
        // Alone, the first worker takes every shard.
        try await Self.until("worker one to hold all 8 shards") { heldByOne.epochs.count == 8 }
        two.start()
        // With two, each ends with 4, and no shard is held by both at any time we look.
        try await Self.until("an even split") {
            #expect(Set(heldByOne.epochs.keys).isDisjoint(with: heldByTwo.epochs.keys))
            return heldByOne.epochs.count == 4 && heldByTwo.epochs.count == 4
        }
        #expect(Set(heldByOne.epochs.keys).union(heldByTwo.epochs.keys) == Set(0..<8))
        #expect(heldByOne.stops == 4)
        // A shard that changed owner was fenced again: its epoch moved on.
        #expect(heldByTwo.epochs.values.allSatisfy { $0 >= 2 })
        for shard in heldByTwo.epochs.keys {
            #expect(one.epochForBatch(shard) == nil)
            #expect(two.epochForBatch(shard) == heldByTwo.epochs[shard])
        }
        // The second worker stops gracefully: the first takes its shards back without waiting for a TTL.
        let started = MonotonicClock.now()
        await two.stop()
        try await Self.until("worker one to hold all 8 shards again") { heldByOne.epochs.count == 8 }
        #expect(Duration.between(started, MonotonicClock.now()) < .seconds(3))
        #expect(heldByTwo.epochs.isEmpty)
        await one.stop()
        redis.close()
        try await schema.drop()
    }
}
