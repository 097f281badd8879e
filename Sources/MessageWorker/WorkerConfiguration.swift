import Shared

/// Everything the message worker reads from its environment.
struct WorkerConfiguration: Sendable {
    var common: CommonConfiguration
    var workerID: String
    var admin: HTTPServerConfiguration
    var stream: String
    var group: String
    var batchSize: Int
    var blockMilliseconds: Int

    static let settings: [Setting] = [
        Setting("ADMIN_HOST", "0.0.0.0", "address of the admin HTTP server (/health, /ready)"),
        Setting("ADMIN_PORT", "9091", "admin HTTP port; give each worker on a host its own (0 = any free port, logged)"),
        Setting("WORKER_ID", nil, "consumer name in the group, unique per worker [generated: hostname-pid-random]"),
        Setting("COMMAND_STREAM", "chat:cmd", "Redis stream the gateways write commands to"),
        Setting("CONSUMER_GROUP", "workers", "consumer group shared by all workers"),
        Setting("WORKER_BATCH_SIZE", "128", "most commands read (and committed) per batch"),
        Setting("WORKER_BLOCK_MS", "2000", "how long one XREADGROUP waits for new commands"),
    ] + CommonConfiguration.settings(poolSize: 4)

    init(reader: SettingsReader) throws(ConfigurationError) {
        common = try CommonConfiguration(reader: reader)
        workerID = reader.optionalString("WORKER_ID") ?? InstanceID.generate(prefix: "worker")
        var admin = HTTPServerConfiguration()
        admin.host = try reader.string("ADMIN_HOST")
        admin.port = UInt16(try reader.int("ADMIN_PORT", in: 0...65535))
        admin.maxConnections = 64
        admin.parserLimits.maxBodyBytes = 4096
        self.admin = admin
        stream = try reader.string("COMMAND_STREAM")
        group = try reader.string("CONSUMER_GROUP")
        batchSize = try reader.int("WORKER_BATCH_SIZE", in: 1...10_000)
        blockMilliseconds = try reader.int("WORKER_BLOCK_MS", in: 10...60_000)
        guard blockMilliseconds + 1_000 < common.redisCommandTimeoutMilliseconds else {
            throw ConfigurationError("WORKER_BLOCK_MS", "must be at least 1000 ms below REDIS_COMMAND_TIMEOUT_MS (\(common.redisCommandTimeoutMilliseconds))")
        }
    }
}
