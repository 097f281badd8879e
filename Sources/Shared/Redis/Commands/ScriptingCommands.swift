/// Lua script commands, as typed builders of `RedisCommand` (`RedisClient.evaluate` sends them).
extension RedisCommand {
    /// `EVALSHA <sha1> <key count> <key> ... <argument> ...`: runs a script Redis has cached.
    package static func evalsha(_ sha1: String, keys: [String], arguments: [String]) -> RedisCommand {
        script("EVALSHA", sha1, keys: keys, count: arguments.count) { command in
            for argument in arguments { command.append(argument) }
        }
    }

    /// `evalsha` with byte-string arguments.
    package static func evalsha(_ sha1: String, keys: [String], arguments: [[UInt8]]) -> RedisCommand {
        script("EVALSHA", sha1, keys: keys, count: arguments.count) { command in
            for argument in arguments { command.append(bytes: argument) }
        }
    }

    /// `EVAL <source> <key count> <key> ... <argument> ...`: runs (and caches) a script.
    package static func eval(_ source: String, keys: [String], arguments: [String]) -> RedisCommand {
        script("EVAL", source, keys: keys, count: arguments.count) { command in
            for argument in arguments { command.append(argument) }
        }
    }

    /// `eval` with byte-string arguments.
    package static func eval(_ source: String, keys: [String], arguments: [[UInt8]]) -> RedisCommand {
        script("EVAL", source, keys: keys, count: arguments.count) { command in
            for argument in arguments { command.append(bytes: argument) }
        }
    }

    private static func script(
        _ verb: String, _ body: String, keys: [String], count: Int, appendArguments: (inout RedisCommand) -> Void
    ) -> RedisCommand {
        var command = RedisCommand(reservingArguments: 3 + keys.count + count)
        command.append(verb)
        command.append(body)
        command.append(String(keys.count))
        for key in keys { command.append(key) }
        appendArguments(&command)
        return command
    }
}
