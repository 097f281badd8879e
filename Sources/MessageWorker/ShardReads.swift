import Shared

/// Reading shard streams under the lease (issue 12). Every read that delivers entries to this
/// worker is a script that first checks, inside Redis, that the shard's lease is still this
/// worker's: once a lease lapsed in Redis no entry of that shard is delivered to the old owner any
/// more, so everything the old owner ever received is already in the group's pending list when
/// the new owner claims it, and the new owner handles it first. (The Postgres fence then refuses
/// whatever the old owner still tries to commit.)
///
/// Each shard's keys share its hash tag, so a single-shard call (`claim`) is valid on Redis
/// Cluster; `read` names several shards' keys and would be issued per node there.
enum ShardReads {
    /// What one `read` found on one shard.
    struct ShardResult: Sendable, Equatable {
        var shard: Int
        var result: WorkerCycle.ReadResult
        var entries: [StreamEntry] = []
    }

    /// `XREADGROUP ... COUNT <budget> STREAMS <stream> >` on each shard whose lease is `worker`'s,
    /// in the order given, until `count` entries are read in all.
    static func read(_ shards: [Int], layout: CommandShards, group: String, worker: String, count: Int,
                     on redis: RedisClient) async throws(RedisError) -> [ShardResult] {
        var keys: [String] = []
        keys.reserveCapacity(shards.count * 2)
        for shard in shards {
            keys.append(layout.lease(shard))
            keys.append(layout.stream(shard))
        }
        let reply = try await redis.evaluate(readScript, keys: keys, arguments: [worker, group, worker, String(count)])
        return parse(readReply: reply, shards: shards)
    }

    /// Parses `read`'s reply: one `[status, payload]` per shard, in the order asked.
    static func parse(readReply reply: RedisValue, shards: [Int]) -> [ShardResult] {
        let items = reply.array ?? []
        var results: [ShardResult] = []
        for (index, shard) in shards.enumerated() {
            guard index < items.count, let pair = items[index].array, let status = pair.first?.string else {
                results.append(ShardResult(shard: shard, result: .skipped))
                continue
            }
            let payload = pair.count > 1 ? pair[1] : .null
            switch status {
            case "entries":
                results.append(ShardResult(shard: shard, result: .entries, entries: StreamEntry.parse(entries: payload)))
            case "idle":
                results.append(ShardResult(shard: shard, result: .idle(lastID: payload.string ?? "0-0")))
            case "lost":
                results.append(ShardResult(shard: shard, result: .lost))
            case "nogroup":
                results.append(ShardResult(shard: shard, result: .noGroup))
            default:
                results.append(ShardResult(shard: shard, result: .skipped))
            }
        }
        return results
    }

    /// The result of a lease-checked claim.
    enum ClaimResult: Sendable, Equatable {
        case claimed(AutoclaimReply)
        case lost
    }

    /// `XAUTOCLAIM <stream> <group> <worker> 0 <cursor> COUNT <count>` if `shard`'s lease is `worker`'s.
    static func claim(_ shard: Int, cursor: String, layout: CommandShards, group: String, worker: String, count: Int,
                      on redis: RedisClient) async throws(RedisError) -> ClaimResult {
        let reply = try await redis.evaluate(claimScript, keys: [layout.lease(shard), layout.stream(shard)],
                                             arguments: [worker, group, worker, cursor, String(count)])
        if reply.string == "lost" { return .lost }
        guard let page = AutoclaimReply(reply) else { throw RedisError.protocolError("unexpected XAUTOCLAIM reply") }
        return .claimed(page)
    }

    /// `XREAD BLOCK <block> COUNT 1 STREAMS <streams...> <ids...>`: returns when any shard has an
    /// entry after its position (or at the timeout). It delivers nothing to the group; the next
    /// `read` does.
    static func wait(_ positions: [WorkerCycle.ShardPosition], layout: CommandShards, block: Duration,
                     on redis: RedisClient) async throws(RedisError) {
        var arguments = ["XREAD", "COUNT", "1", "BLOCK", String(max(1, block.millisecondsRoundedUp)), "STREAMS"]
        arguments += positions.map { layout.stream($0.shard) }
        arguments += positions.map(\.lastID)
        _ = try await redis.send(RedisCommand(arguments))
    }

    // MARK: Scripts

    /// KEYS: lease and stream of each shard, in pairs. ARGV: worker (the lease holder), group,
    /// consumer, count. Per shard, `{status, payload}`: `entries` with the entries, `idle` with the
    /// stream's last id, `lost`, `nogroup`, or `skipped` (the count was reached).
    static let readScript = RedisScript(source: """
        local out = {}
        local budget = tonumber(ARGV[4])
        for i = 1, #KEYS, 2 do
          local status, payload = 'skipped', ''
          if redis.call('GET', KEYS[i]) ~= ARGV[1] then
            status = 'lost'
          elseif budget > 0 then
            local r = redis.pcall('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', budget, 'STREAMS', KEYS[i + 1], '>')
            if type(r) == 'table' and r.err then
              if string.sub(r.err, 1, 7) == 'NOGROUP' then status = 'nogroup' else return r end
            elseif r then
              status = 'entries'
              payload = r[1][2]
              budget = budget - #payload
            else
              local last = redis.call('XREVRANGE', KEYS[i + 1], '+', '-', 'COUNT', 1)
              status = 'idle'
              payload = last[1] and last[1][1] or '0-0'
            end
          end
          out[#out + 1] = {status, payload}
        end
        return out
        """)

    /// KEYS[1] lease, KEYS[2] stream. ARGV: worker, group, consumer, cursor, count. The
    /// `XAUTOCLAIM` reply, or `lost`.
    static let claimScript = RedisScript(source: """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then
          return {ok = 'lost'}
        end
        return redis.call('XAUTOCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, ARGV[4], 'COUNT', ARGV[5])
        """)
}
