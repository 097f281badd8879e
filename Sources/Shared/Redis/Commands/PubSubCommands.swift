/// Pub/sub commands, as typed builders of `RedisCommand`.
extension RedisCommand {
    /// `PUBLISH <channel> <payload>`: the payload goes to every current subscriber of the channel.
    package static func publish(_ channel: String, payload: [UInt8]) -> RedisCommand {
        var command = RedisCommand(reservingArguments: 3)
        command.append("PUBLISH")
        command.append(channel)
        command.append(bytes: payload)
        return command
    }

    /// `SUBSCRIBE <channel> ...`. Only for a subscriber connection: the replies are pushes.
    package static func subscribe(_ channels: some Collection<String>) -> RedisCommand {
        subscription("SUBSCRIBE", channels)
    }

    /// `UNSUBSCRIBE <channel> ...`. Only for a subscriber connection: the replies are pushes.
    package static func unsubscribe(_ channels: some Collection<String>) -> RedisCommand {
        subscription("UNSUBSCRIBE", channels)
    }

    private static func subscription(_ verb: String, _ channels: some Collection<String>) -> RedisCommand {
        var command = RedisCommand(reservingArguments: 1 + channels.count)
        command.append(verb)
        for channel in channels { command.append(channel) }
        return command
    }
}
