import Runtime

/// Commands on plain keys, as typed builders of `RedisCommand`.
extension RedisCommand {
    /// `SET <key> <value> EX <seconds>`: the value, expiring after `expireSeconds`.
    package static func set(_ key: String, _ value: String, expireSeconds: Int64) -> RedisCommand {
        RedisCommand(["SET", key, value, "EX", String(expireSeconds)])
    }

    /// `SET <key> <value> NX PX <milliseconds>`: sets the key only if it does not exist, with a
    /// lifetime (a lease); answers `OK`, or nil when the key exists.
    package static func setIfAbsent(_ key: String, _ value: String, expire: Duration) -> RedisCommand {
        RedisCommand(["SET", key, value, "NX", "PX", String(max(1, expire.millisecondsRoundedUp))])
    }

    /// `GET <key>`.
    package static func get(_ key: String) -> RedisCommand {
        RedisCommand(["GET", key])
    }

    /// `EXISTS <key> ...`: how many of the keys exist. (Every authenticated request checks its
    /// revocation marks with it: appended in place, no concatenated array.)
    package static func exists(_ keys: [String]) -> RedisCommand {
        var command = RedisCommand(reservingArguments: 1 + keys.count)
        command.append("EXISTS")
        for key in keys { command.append(key) }
        return command
    }
}
