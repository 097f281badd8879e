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
    /// in the order given, until `count` entries are read in all. A shard with a `parent` (while
    /// the shard count grows: the shard of the previous count its conversations came from) gets
    /// only entries older than everything the parent's group has not acknowledged yet, so a
    /// conversation's commands written under the previous count are applied first.
    static func read(_ shards: [Int], layout: CommandShards, parent: (Int) -> Int? = { _ in nil }, group: String, worker: String,
                     count: Int, on redis: RedisClient) async throws(RedisError) -> [ShardResult] {
        var keys: [String] = []
        keys.reserveCapacity(shards.count * 3)
        for shard in shards {
            keys.append(layout.lease(shard))
            keys.append(layout.stream(shard))
            keys.append(layout.stream(parent(shard) ?? shard))
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
            case "gated":
                results.append(ShardResult(shard: shard, result: .gated(lastID: payload.string ?? "0-0")))
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

    /// KEYS: lease, stream and parent stream of each shard, in threes (the parent is the stream
    /// itself when there is none). ARGV: worker (the lease holder), group, consumer, count. Per
    /// shard, `{status, payload}`: `entries` with the entries, `idle` with the stream's last id
    /// (only when no shard had entries: otherwise such a shard is `skipped`), `gated` with it
    /// (entries wait for the parent), `lost`, `nogroup`, or `skipped` (the count was reached, or
    /// another shard had entries).
    static let readScript = RedisScript(source: """
        local function before(a, b)
          local am, as = string.match(a, '^(%d+)-(%d+)$')
          local bm, bs = string.match(b, '^(%d+)-(%d+)$')
          am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
          return am < bm or (am == bm and as < bs)
        end
        local function group_info(stream)
          local groups = redis.pcall('XINFO', 'GROUPS', stream)
          if type(groups) ~= 'table' or groups.err then return nil end
          for _, g in ipairs(groups) do
            local info = {}
            for j = 1, #g, 2 do info[g[j]] = g[j + 1] end
            if info['name'] == ARGV[2] then return info end
          end
          return nil
        end
        -- The oldest entry of a parent stream its group has not acknowledged (pending or never read).
        local function unfinished(parent)
          local info = group_info(parent)
          if info == nil then
            local first = redis.call('XRANGE', parent, '-', '+', 'COUNT', 1)
            return first[1] and first[1][1] or nil
          end
          local oldest = nil
          if tonumber(info['pending']) > 0 then oldest = redis.call('XPENDING', parent, ARGV[2])[2] end
          local unread = redis.call('XRANGE', parent, '(' .. info['last-delivered-id'], '+', 'COUNT', 1)
          if unread[1] and (oldest == nil or before(unread[1][1], oldest)) then oldest = unread[1][1] end
          return oldest
        end
        local function last_id(stream)
          local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
          return last[1] and last[1][1] or '0-0'
        end
        local out, idle = {}, {}
        local budget = tonumber(ARGV[4])
        for i = 1, #KEYS, 3 do
          local status, payload = 'skipped', ''
          local stream, parent = KEYS[i + 1], KEYS[i + 2]
          local count = budget
          if redis.call('GET', KEYS[i]) ~= ARGV[1] then
            status = 'lost'
            count = 0
          elseif budget > 0 and parent ~= stream then
            local info = group_info(stream)
            if info == nil then
              status = 'nogroup'
              count = 0
            else
              local waiting = redis.call('XRANGE', stream, '(' .. info['last-delivered-id'], '+', 'COUNT', budget)
              local bound = #waiting > 0 and unfinished(parent) or nil
              if bound ~= nil then
                count = 0
                for _, entry in ipairs(waiting) do
                  if before(entry[1], bound) then count = count + 1 else break end
                end
                if count == 0 then
                  status = 'gated'
                  payload = last_id(stream)
                end
              end
            end
          end
          if count > 0 then
            local r = redis.pcall('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', count, 'STREAMS', stream, '>')
            if type(r) == 'table' and r.err then
              if string.sub(r.err, 1, 7) == 'NOGROUP' then status = 'nogroup' else return r end
            elseif r then
              status = 'entries'
              payload = r[1][2]
              budget = budget - #payload
            else
              status = 'idle'
              idle[#idle + 1] = #out + 1
            end
          end
          out[#out + 1] = {status, payload}
        end
        -- Where to wait from matters only when nothing at all was read (the worker then waits);
        -- otherwise it reads again at once, and the idle shards are simply read again.
        for _, n in ipairs(idle) do
          if budget == tonumber(ARGV[4]) then
            out[n][2] = last_id(KEYS[(n - 1) * 3 + 2])
          else
            out[n][1] = 'skipped'
          end
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
