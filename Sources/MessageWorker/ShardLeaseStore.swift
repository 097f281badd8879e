import Shared

/// The Redis side of the sharded streams (issue 12): shard leases and the roster of live workers
/// the assignment is computed from. Lease validity and roster lifetimes are Redis's (`PX`, the
/// server's `TIME`), so worker clocks never need to agree.
@LoopActor
final class ShardLeaseStore {
    private let redis: RedisClient
    private let shards: CommandShards
    let workerID: String
    let ttl: Duration

    init(redis: RedisClient, shards: CommandShards, workerID: String, ttl: Duration) {
        self.redis = redis
        self.shards = shards
        self.workerID = workerID
        self.ttl = ttl
    }

    // MARK: Leases

    /// Takes `shard`'s lease if nobody holds it; true when it is now ours.
    func acquire(_ shard: Int) async throws(RedisError) -> Bool {
        try await redis.send(.setIfAbsent(shards.lease(shard), workerID, expire: ttl)) == .simpleString("OK")
    }

    /// Extends `shard`'s lease if it is still ours; false when it lapsed or another worker holds it.
    func renew(_ shard: Int) async throws(RedisError) -> Bool {
        try await redis.evaluate(Self.renewScript, keys: [shards.lease(shard)],
                                 arguments: [workerID, String(max(1, ttl.millisecondsRoundedUp))]).int == 1
    }

    /// Gives `shard`'s lease back if it is still ours; false when it was not.
    func release(_ shard: Int) async throws(RedisError) -> Bool {
        try await redis.evaluate(Self.releaseScript, keys: [shards.lease(shard)], arguments: [workerID]).int == 1
    }

    /// Who holds `shard`'s lease now.
    func owner(_ shard: Int) async throws(RedisError) -> String? {
        guard case .bulk(let bytes) = try await redis.send(.get(shards.lease(shard))) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Roster

    /// Says this worker is alive for `ttl` more (and drops workers whose liveness lapsed), records
    /// the shard count for the gateways' check; returns the live workers, this one included, sorted.
    func heartbeat() async throws(RedisError) -> [String] {
        let reply = try await redis.evaluate(Self.rosterScript, keys: [shards.rosterKey, shards.countKey],
                                             arguments: [workerID, String(max(1, ttl.millisecondsRoundedUp)), String(shards.count)])
        return (reply.array ?? []).compactMap { value in
            guard case .bulk(let bytes) = value else { return nil }
            return String(decoding: bytes, as: UTF8.self)
        }.sorted()
    }

    /// Leaves the roster at once (graceful stop), so the others rebalance without waiting for the TTL.
    func leave() async throws(RedisError) {
        _ = try await redis.evaluate(Self.leaveScript, keys: [shards.rosterKey], arguments: [workerID])
    }

    // MARK: Scripts

    /// KEYS[1] lease, ARGV[1] worker, ARGV[2] ttl ms → 1 if extended.
    static let renewScript = RedisScript(source: """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          return redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return 0
        """)

    /// KEYS[1] lease, ARGV[1] worker → 1 if deleted.
    static let releaseScript = RedisScript(source: """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          return redis.call('DEL', KEYS[1])
        end
        return 0
        """)

    /// KEYS[1] roster, KEYS[2] shard count key, ARGV[1] worker, ARGV[2] ttl ms, ARGV[3] shard count
    /// → the live workers.
    static let rosterScript = RedisScript(source: """
        redis.call('SET', KEYS[2], ARGV[3])
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        return redis.call('ZRANGEBYSCORE', KEYS[1], now + 1, '+inf')
        """)

    /// KEYS[1] roster, ARGV[1] worker.
    static let leaveScript = RedisScript(source: """
        return redis.call('ZREM', KEYS[1], ARGV[1])
        """)
}
