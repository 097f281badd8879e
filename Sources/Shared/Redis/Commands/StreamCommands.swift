import Runtime

/// The stream commands the product sends, as typed builders of `RedisCommand`: a call site reads
/// like the command (`.xadd(stream, maxLength: .approximately(n), fields: ...)`), not like an array
/// of strings, and each builder is the one place its words and argument order are written.
extension RedisCommand {
    /// How `XADD` caps its stream.
    package enum StreamMaxLength: Sendable, Hashable {
        /// `MAXLEN ~ <n>`: Redis trims whole nodes only, so the stream keeps at least `n` entries
        /// (a few more at times) at a fraction of the cost of an exact cap.
        case approximately(Int)
    }

    /// `XADD <stream> [MAXLEN ~ <n>] * <field> <value> ...`: appends an entry with an id Redis
    /// assigns. `fields` alternates names and values, as `CommandEnvelope.streamFields()` lays them
    /// out; add binary values with `appendField(_:value:)`.
    package static func xadd(_ stream: String, maxLength: StreamMaxLength? = nil, fields: [String]) -> RedisCommand {
        var command = RedisCommand(reservingArguments: 6 + fields.count)
        command.append("XADD")
        command.append(stream)
        if case .approximately(let length)? = maxLength {
            command.append("MAXLEN")
            command.append("~")
            command.append(String(length))
        }
        command.append("*")
        for field in fields { command.append(field) }
        return command
    }

    /// Appends one more field of an `XADD` entry, with a byte-string value.
    package mutating func appendField(_ name: String, value: some Collection<UInt8>) {
        append(name)
        append(bytes: value)
    }

    /// `XREADGROUP GROUP <group> <consumer> COUNT <count> BLOCK <ms> STREAMS <stream> <id>`: entries of
    /// one stream for one consumer; `id` is `>` for entries never delivered, or an id to re-read the
    /// consumer's own pending entries after it.
    package static func xreadgroup(
        group: String, consumer: String, count: Int, block: Duration, stream: String, id: String
    ) -> RedisCommand {
        RedisCommand([
            "XREADGROUP", "GROUP", group, consumer, "COUNT", String(count), "BLOCK", String(block.wholeMilliseconds),
            "STREAMS", stream, id,
        ])
    }

    /// `XREADGROUP GROUP <group> <consumer> COUNT <count> BLOCK <ms> STREAMS <stream> ... <id> ...`:
    /// one blocking read over several streams (a worker's shards) in one call; `COUNT` applies per
    /// stream.
    package static func xreadgroup(
        group: String, consumer: String, count: Int, block: Duration, streams: [(stream: String, id: String)]
    ) -> RedisCommand {
        var command = RedisCommand(reservingArguments: 9 + 2 * streams.count)
        for word in ["XREADGROUP", "GROUP", group, consumer, "COUNT", String(count), "BLOCK", String(block.wholeMilliseconds), "STREAMS"] {
            command.append(word)
        }
        for entry in streams { command.append(entry.stream) }
        for entry in streams { command.append(entry.id) }
        return command
    }

    /// `XACK <stream> <group> <id> ...`: the entries are processed.
    package static func xack(_ stream: String, group: String, ids: [String]) -> RedisCommand {
        var command = RedisCommand(reservingArguments: 3 + ids.count)
        command.append("XACK")
        command.append(stream)
        command.append(group)
        for id in ids { command.append(id) }
        return command
    }

    /// `XAUTOCLAIM <stream> <group> <consumer> <min-idle-ms> <start> COUNT <count>`: one page of the
    /// entries idle longer than `minIdle`, taken over by `consumer`.
    package static func xautoclaim(
        _ stream: String, group: String, consumer: String, minIdle: Duration, start: String, count: Int
    ) -> RedisCommand {
        RedisCommand(["XAUTOCLAIM", stream, group, consumer, String(minIdle.wholeMilliseconds), start, "COUNT", String(count)])
    }

    /// `XCLAIM <stream> <group> <consumer> <min-idle-ms> <id> ... JUSTID`: takes the entries over
    /// (resetting their idle time) without incrementing their delivery counts or returning them.
    package static func xclaimJustID(
        _ stream: String, group: String, consumer: String, minIdle: Duration, ids: [String]
    ) -> RedisCommand {
        var command = RedisCommand(reservingArguments: 6 + ids.count)
        command.append("XCLAIM")
        command.append(stream)
        command.append(group)
        command.append(consumer)
        command.append(String(minIdle.wholeMilliseconds))
        for id in ids { command.append(id) }
        command.append("JUSTID")
        return command
    }

    /// `XGROUP CREATE <stream> <group> <id> [MKSTREAM]`: a consumer group that starts after `id`
    /// (`0`: the whole stream); `makeStream` creates an empty stream if there is none.
    package static func xgroupCreate(_ stream: String, group: String, startID: String, makeStream: Bool) -> RedisCommand {
        var command = RedisCommand(["XGROUP", "CREATE", stream, group, startID])
        if makeStream { command.append("MKSTREAM") }
        return command
    }

    /// `XPENDING <stream> <group>`: the summary of the group's pending entries (count, lowest and
    /// highest id, per-consumer counts).
    package static func xpending(_ stream: String, group: String) -> RedisCommand {
        RedisCommand(["XPENDING", stream, group])
    }

    /// `XPENDING <stream> <group> <start> <end> <count>`: pending entries in an id range, each with its
    /// consumer, idle time and delivery count.
    package static func xpending(_ stream: String, group: String, start: String, end: String, count: Int) -> RedisCommand {
        RedisCommand(["XPENDING", stream, group, start, end, String(count)])
    }

    /// `XINFO GROUPS <stream>`: every consumer group of the stream.
    package static func xinfoGroups(_ stream: String) -> RedisCommand {
        RedisCommand(["XINFO", "GROUPS", stream])
    }

    /// `XTRIM <stream> MINID <id>`: removes the entries below `id`.
    package static func xtrim(_ stream: String, minID: String) -> RedisCommand {
        RedisCommand(["XTRIM", stream, "MINID", minID])
    }

    /// `XLEN <stream>`: the number of entries.
    package static func xlen(_ stream: String) -> RedisCommand {
        RedisCommand(["XLEN", stream])
    }
}
