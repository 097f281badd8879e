import Glibc
import Testing
@testable import Gateway
@testable import Shared

/// The gateway's check of its shard count against the workers' (issue 12), on a real Redis
/// (`TEST_REDIS_URL`, database 13, keys of its own per test).
@Suite struct ShardCountCheckTests {
    init() { EventLoop.shared.startInBackground() }

    @Test @LoopActor func aGatewayWithMoreShardsThanTheWorkersIsFlagged() async throws {
        guard let raw = getenv("TEST_REDIS_URL"), raw.pointee != 0 else {
            Issue.record("TEST_REDIS_URL is not set: start a throwaway redis-server and export it")
            return
        }
        var configuration = try RedisConfiguration(url: String(cString: raw))
        configuration.database = 13
        let redis = RedisClient(configuration: configuration)
        redis.start()
        defer { redis.close() }
        #expect(await redis.waitUntilConnected(timeout: .seconds(3)))
        let shards = CommandShards(count: 64, prefix: "t:cmd:\(UInt32.random(in: 0...UInt32.max))")
        let check = ShardCountCheck(redis: redis, shards: shards, logger: Logger(service: "test", minimumLevel: .error))

        #expect(await check.check() == nil, "no worker has recorded a count yet")
        #expect(ShardCountCheck.mismatch.value == 0)
        _ = try await redis.send(["SET", shards.countKey, "32"])
        #expect(await check.check() == 32)
        #expect(ShardCountCheck.mismatch.value == 1)
        _ = try await redis.send(["SET", shards.countKey, "128"])  // the workers grew first: fine
        #expect(await check.check() == 128)
        #expect(ShardCountCheck.mismatch.value == 0)
        _ = try await redis.send(["DEL", shards.countKey])
    }
}
