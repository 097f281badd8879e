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
    package static func exists(_ keys: [String]) -> RedisCommand {
        var command = RedisCommand(reservingArguments: 1 + keys.count)
        command.append("EXISTS")
        for key in keys { command.append(key) }
        return command
    }
}
