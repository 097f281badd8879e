import Runtime

/// Commands on plain keys, as typed builders of `RedisCommand`.
extension RedisCommand {
    /// `SET <key> <value> EX <seconds>`: the value, expiring after `expireSeconds`.
    package static func set(_ key: String, _ value: String, expireSeconds: Int64) -> RedisCommand {
        var command = RedisCommand(reservingArguments: 5)
        command.append("SET")
        command.append(key)
        command.append(value)
        command.append("EX")
        command.append(String(expireSeconds))
        return command
    }

    /// `EXISTS <key> ...`: how many of the keys exist.
    /// `SET <key> <value> NX PX <milliseconds>`: sets the key only if it does not exist, with a
    /// lifetime (a lease); answers `OK`, or nil when the key exists.
    package static func setIfAbsent(_ key: String, _ value: String, expire: Duration) -> RedisCommand {
        var command = RedisCommand(reservingArguments: 6)
        command.append("SET")
        command.append(key)
        command.append(value)
        command.append("NX")
        command.append("PX")
        command.append(String(max(1, expire.millisecondsRoundedUp)))
        return command
    }

    /// `GET <key>`.
    package static func get(_ key: String) -> RedisCommand {
        var command = RedisCommand(reservingArguments: 2)
        command.append("GET")
        command.append(key)
        return command
    }

    package static func exists(_ keys: [String]) -> RedisCommand {
        var command = RedisCommand(reservingArguments: 1 + keys.count)
        command.append("EXISTS")
        for key in keys { command.append(key) }
        return command
    }
}
