import Shared

/// The presence registry's Redis layout (one hash per user, one liveness key and one user set per
/// gateway instance) and its atomic scripts.
///
/// - `chat:presence:{userId}`: hash; `g:<instance>` → that gateway instance's connection count for
///   the user, `s` → the state last announced to contacts (`1` online; absent or `0` offline).
/// - `chat:gw:{instance}:alive`: liveness key with a TTL, renewed by the instance's heartbeat.
/// - `chat:gw:{instance}:users`: the users an instance has connections for (what a sweep visits).
/// - `chat:presence:gateways`: sorted set instance → time of its last heartbeat (ms).
///
/// A user is online when any count belongs to a live instance. Every change ends in the same
/// `transition` step, which compares that with the announced state and flips it, so each online
/// and each offline is announced exactly once by whoever caused it, whatever the interleaving.
/// The scripts read liveness keys they are not passed (fine on one Redis or a primary with
/// replicas; Redis Cluster would need hash tags).
enum PresenceScripts {
    /// What every user's presence hash is named after (then the decimal user id).
    private static let userKeyPrefix = "chat:presence:"
    /// Gateway instance keys are `<prefix><instance><suffix>`.
    private static let instancePrefix = "chat:gw:"
    private static let aliveSuffix = ":alive"
    private static let usersSuffix = ":users"

    static func userKey(_ userID: Int64) -> String { userKeyPrefix + String(userID) }
    static func aliveKey(_ instance: String) -> String { instancePrefix + instance + aliveSuffix }
    static func usersKey(_ instance: String) -> String { instancePrefix + instance + usersSuffix }
    static let gatewaysKey = "chat:presence:gateways"

    // The scripts build the same names from these constants (keys they are not passed).
    private static let luaAliveKey = "'\(instancePrefix)' .. instance .. '\(aliveSuffix)'"

    /// Shared Lua: the live connection count of a user (`self` counts as alive), and the
    /// announce step. `transition` returns 1 (now online), -1 (now offline) or 0.
    private static let common = """
        local function live(key, self)
          local fields = redis.call('HGETALL', key)
          local total = 0
          for i = 1, #fields, 2 do
            local field = fields[i]
            if string.sub(field, 1, 2) == 'g:' then
              local instance = string.sub(field, 3)
              if instance == self or redis.call('EXISTS', \(luaAliveKey)) == 1 then
                total = total + tonumber(fields[i + 1])
              end
            end
          end
          return total
        end
        local function transition(key, self)
          local online = live(key, self) > 0
          local announced = redis.call('HGET', key, 's') == '1'
          local change = 0
          if online and not announced then
            redis.call('HSET', key, 's', '1')
            change = 1
          elseif not online and announced then
            redis.call('HSET', key, 's', '0')
            change = -1
          end
          if not online then
            -- Nothing but the state (and maybe dead instances' counts) left: drop what is empty.
            local fields = redis.call('HKEYS', key)
            local counts = 0
            for _, field in ipairs(fields) do
              if string.sub(field, 1, 2) == 'g:' then counts = counts + 1 end
            end
            if counts == 0 then redis.call('DEL', key) end
          end
          return change
        end
        local function now_ms()
          local time = redis.call('TIME')
          return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        end

        """

    /// `KEYS[1]` user hash, `KEYS[2]` instance's user set; `ARGV[1]` instance, `ARGV[2]` this
    /// instance's connection count for the user (absolute, so a retry or a late call cannot skew
    /// it), `ARGV[3]` user id. Returns `{change, now_ms}`.
    static let setCount = RedisScript(source: common + """
        local key, users, instance, count = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
        if count > 0 then
          redis.call('HSET', key, 'g:' .. instance, count)
          redis.call('SADD', users, ARGV[3])
        else
          redis.call('HDEL', key, 'g:' .. instance)
          redis.call('SREM', users, ARGV[3])
        end
        return {transition(key, instance), now_ms()}
        """)

    /// `KEYS[1]` alive key, `KEYS[2]` gateways set; `ARGV[1]` instance, `ARGV[2]` TTL ms,
    /// `ARGV[3]` `create` (registration) or `renew` (only while the key still exists). Returns 1,
    /// or 0 when a renewal found the key gone (the instance was presumed dead: it must re-register
    /// under a new name, since a sweep may be taking its users apart).
    static let heartbeat = RedisScript(source: """
        local ok
        if ARGV[3] == 'create' then
          ok = redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
        else
          ok = redis.call('SET', KEYS[1], '1', 'PX', ARGV[2], 'XX')
        end
        if not ok then return 0 end
        local time = redis.call('TIME')
        redis.call('ZADD', KEYS[2], tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000), ARGV[1])
        return 1
        """)

    /// `KEYS[1]` gateways set; `ARGV[1]` the sweeping instance, `ARGV[2]` most users to visit,
    /// `ARGV[3]` TTL ms. Takes users of dead instances apart (SPOP: each user once, even with
    /// several sweepers) and returns `{visited, userId, lastSeenMs, ...}` with the users now
    /// offline, `lastSeen` being the dead instance's last heartbeat. An instance is forgotten once
    /// its set is empty.
    static let sweep = RedisScript(source: common + """
        local budget = tonumber(ARGV[2])
        local result = {0}
        local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms() - tonumber(ARGV[3]), 'WITHSCORES')
        for i = 1, #stale, 2 do
          local instance, last = stale[i], stale[i + 1]
          if budget <= 0 then break end
          if instance ~= ARGV[1] and redis.call('EXISTS', \(luaAliveKey)) == 0 then
            local set = '\(instancePrefix)' .. instance .. '\(usersSuffix)'
            local users = redis.call('SPOP', set, budget)
            budget = budget - #users
            for _, user in ipairs(users) do
              local key = '\(userKeyPrefix)' .. user
              redis.call('HDEL', key, 'g:' .. instance)
              if transition(key, ARGV[1]) == -1 then
                result[#result + 1] = user
                result[#result + 1] = last
              end
            end
            if redis.call('SCARD', set) == 0 then
              redis.call('ZREM', KEYS[1], instance)
            end
          end
        end
        result[1] = tonumber(ARGV[2]) - budget
        return result
        """)

    /// `KEYS` user hashes; `ARGV[1]` the asking instance. Returns 1/0 per key: online now.
    static let online = RedisScript(source: common + """
        local result = {}
        for i, key in ipairs(KEYS) do
          if live(key, ARGV[1]) > 0 then result[i] = 1 else result[i] = 0 end
        end
        return result
        """)

    /// Graceful stop: `KEYS[1]` alive key, `KEYS[2]` gateways set, `KEYS[3]` user set;
    /// `ARGV[1]` instance. Only once every local user has been set to 0.
    static let unregister = RedisScript(source: """
        redis.call('DEL', KEYS[1])
        if redis.call('SCARD', KEYS[3]) == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) end
        return 1
        """)
}
