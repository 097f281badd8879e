import Shared

/// Everything the message worker reads from its environment.
struct WorkerConfiguration: Sendable {
    var common: CommonConfiguration
    var workerID: String
    var admin: HTTPServerConfiguration
    /// The command shard streams (`COMMAND_STREAM` prefix, `COMMAND_SHARDS` of them).
    var shards: CommandShards
    var group: String
    /// While the shard count grows: the previous count (it divides `shards.count`).
    var previousShardCount: Int?
    /// Lifetime of a shard lease; a dead worker's shards move after at most this long.
    var leaseTTL: Duration
    var batchSize: Int
    /// The pause before the next read after a batch that says the stream is busy (see `BatchLinger`).
    var batchLinger: BatchLinger
    var blockTime: Duration
    var deadLetterStream: String
    var deadLetterMaxLength: Int
    var maxDeliveries: Int
    var trimInterval: Duration
    var maxContentLength: Int
    /// Most members of one room.
    var roomMemberLimit: Int
    /// How long after sending a message its sender may edit it (zero: always; issue 14).
    var editWindow: Duration = .milliseconds(172_800_000)
    /// Most rooms one user may be in.
    var roomsPerUser: Int
    /// Sends per user per window, for the whole cluster (nil: off).
    var messageRateLimit: RateLimitPolicy?
    var messageRateLimitFailureMode: RateLimitFailureMode

    static let settings: [Setting] = [
        Setting("ADMIN_HOST", "0.0.0.0", "address of the admin HTTP server (/health, /ready)"),
        Setting("ADMIN_PORT", "9091", "admin HTTP port; give each worker on a host its own (0 = any free port, logged)"),
        Setting("WORKER_ID", nil, "consumer name in the group, unique per worker [generated: hostname-pid-random]"),
        Setting("COMMAND_STREAM", ChatChannels.commandStream, "prefix of the command shard streams <prefix>:{s<n>} (same as the gateways')"),
        Setting("COMMAND_SHARDS", String(CommandShards.defaultCount),
                "number of command shards, 1-\(CommandShards.maxCount) (same on every gateway and worker; see OPERATIONS.md to change it)"),
        Setting("COMMAND_SHARDS_PREVIOUS", nil,
                "only while growing COMMAND_SHARDS: the previous count, which must divide it (see OPERATIONS.md)"),
        Setting("CONSUMER_GROUP", "workers", "consumer group of every shard stream"),
        Setting("SHARD_LEASE_TTL_MS", "5000", "lifetime of a worker's lease on a shard; renewed every third of it, a dead worker's shards move after it"),
        Setting("WORKER_BATCH_SIZE", "128", "most commands read (and committed) per batch"),
        Setting("WORKER_BATCH_LINGER_MS", "2",
                "after a batch of at least WORKER_BATCH_LINGER_MIN commands (and less than a full one), wait this long before the next read so it gathers more (0: never)"),
        Setting("WORKER_BATCH_LINGER_MIN", "32", "the batch size from which the worker lingers before its next read"),
        Setting("WORKER_BLOCK_MS", "1000", "how long one blocking wait for new commands lasts"),
        Setting("DEAD_LETTER_STREAM", ChatChannels.deadLetterStream, "Redis stream for commands that cannot be processed (capped)"),
        Setting("DEAD_LETTER_MAXLEN", "100000", "approximate cap of the dead-letter stream"),
        Setting("WORKER_MAX_DELIVERIES", "5", "a command delivered more often goes to the dead-letter stream"),
        Setting("WORKER_TRIM_INTERVAL_MS", "10000", "how often the command stream is trimmed (below the oldest unacknowledged entry)"),
        Setting("MESSAGE_MAX_LENGTH", "4000", "longest message content in Unicode scalars (set the same on gateways)"),
        Setting("EDIT_WINDOW_MS", "172800000", "how long after sending a message its sender may edit it (0: no limit; later: edit_window_passed)"),
        Setting("ROOM_MAX_MEMBERS", String(RoomDefaults.memberLimit), "most members of one room (joins and additions past it: room_full)"),
        Setting("ROOMS_PER_USER", String(RoomDefaults.roomsPerUser), "most rooms one user may be in (creating, joining or being added past it: too_many_rooms)"),
        Setting("RATE_LIMIT_MESSAGES", "5/10s", "sends per user per sliding window, whole cluster (<count>/<window: ms|s|m|h>, or off)"),
        Setting("RATE_LIMIT_MESSAGES_ON_REDIS_ERROR", "local",
                "when the limit script fails: local (this worker's own sliding log), allow, or deny (answer rate_limiter_unavailable)"),
    ] + CommonConfiguration.settings(poolSize: 4)

    /// While the shard count grows, the shard of the previous count that `shard`'s conversations
    /// came from (`shard mod previous`: for a count that is a multiple of the previous one, a
    /// conversation's new shard mod the previous count is its old shard); nil when it has none.
    func parent(_ shard: Int) -> Int? {
        guard let previous = previousShardCount, shard >= previous else { return nil }
        return shard % previous
    }

    init(reader: SettingsReader) throws(ConfigurationError) {
        common = try CommonConfiguration(reader: reader)
        workerID = reader.optionalString("WORKER_ID") ?? InstanceID.generate(prefix: "worker")
        admin = try .admin(reader: reader)
        shards = CommandShards(count: try reader.int("COMMAND_SHARDS", in: 1...CommandShards.maxCount), prefix: try reader.string("COMMAND_STREAM"))
        if reader.optionalString("COMMAND_SHARDS_PREVIOUS") != nil {
            let previous = try reader.int("COMMAND_SHARDS_PREVIOUS", in: 1...CommandShards.maxCount)
            guard previous < shards.count, shards.count % previous == 0 else {
                throw ConfigurationError("COMMAND_SHARDS_PREVIOUS", "must be smaller than COMMAND_SHARDS (\(shards.count)) and divide it")
            }
            previousShardCount = previous
        }
        group = try reader.string("CONSUMER_GROUP")
        leaseTTL = try reader.milliseconds("SHARD_LEASE_TTL_MS", in: 1_000...600_000)
        batchSize = try reader.int("WORKER_BATCH_SIZE", in: 1...10_000)
        batchLinger = BatchLinger(delay: try reader.milliseconds("WORKER_BATCH_LINGER_MS", in: 0...100),
                                  minimum: try reader.int("WORKER_BATCH_LINGER_MIN", in: 1...10_000), batchSize: batchSize)
        blockTime = try reader.milliseconds("WORKER_BLOCK_MS", in: 10...60_000)
        deadLetterStream = try reader.string("DEAD_LETTER_STREAM")
        deadLetterMaxLength = try reader.int("DEAD_LETTER_MAXLEN", in: 100...100_000_000)
        maxDeliveries = try reader.int("WORKER_MAX_DELIVERIES", in: 1...1000)
        trimInterval = try reader.milliseconds("WORKER_TRIM_INTERVAL_MS", in: 1...3_600_000)
        maxContentLength = try reader.int("MESSAGE_MAX_LENGTH", in: 1...100_000)
        roomMemberLimit = try reader.int("ROOM_MAX_MEMBERS", in: 2...1_000_000)
        editWindow = try reader.milliseconds("EDIT_WINDOW_MS", in: 0...(10 * 365 * 86_400_000))
        roomsPerUser = try reader.int("ROOMS_PER_USER", in: 1...1_000_000)
        messageRateLimit = try reader.rateLimit("RATE_LIMIT_MESSAGES", policyName: "messages")
        messageRateLimitFailureMode = try reader.rateLimitFailureMode("RATE_LIMIT_MESSAGES_ON_REDIS_ERROR")
        guard !deadLetterStream.hasPrefix(shards.prefix + ":{") else {
            throw ConfigurationError("DEAD_LETTER_STREAM", "must not be a name of the command shard streams")
        }
        guard blockTime + .seconds(1) < common.redisCommandTimeout else {
            throw ConfigurationError("WORKER_BLOCK_MS", "must be at least 1000 ms below REDIS_COMMAND_TIMEOUT_MS (\(common.redisCommandTimeout.wholeMilliseconds))")
        }
    }
}
