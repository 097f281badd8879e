import Glibc
import Shared

/// Wires the worker: database, Redis, the command consumer and the admin HTTP server.
@LoopActor
final class WorkerApp: ServiceApp {
    private let configuration: WorkerConfiguration
    private let logger: Logger
    private var database: PostgresPool?
    private var redisClients: [RedisClient] = []
    private var consumer: CommandConsumer?
    private var coordinator: ShardCoordinator?
    private var admin: HTTPServer?
    /// What `/ready` answers (the admin port listens before anything else).
    private var readiness: Readiness?
    private var stopping = false
    private var stopsPending = 0
    private var finished = false

    /// How long Postgres lets a worker's session sit idle inside a transaction.
    static let idleInTransactionTimeout = Duration.seconds(30)

    init(configuration: WorkerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    private func fail(_ code: CInt) {
        ProcessExitStatus.set(code)
        finish()
    }

    func start(mode: CommandLineMode) async {
        ChatMetrics.registerCommon()
        WorkerMetrics.register()
        let common = configuration.common
        let readiness = Readiness(grace: common.readyDependencyGrace)
        self.readiness = readiness
        // Probes get answers from the start: alive, not ready while Postgres or the schema is awaited.
        if mode == .run {
            let admin = HTTPServer(configuration: configuration.admin,
                                   responder: AdminRoutes.router(service: "worker", readiness: readiness, logger: logger), logger: logger)
            do {
                try admin.start()
            } catch {
                logger.error("cannot listen on the admin port", ["port": .int(Int64(configuration.admin.port)), "error": .string(error.description)])
                return fail(1)
            }
            self.admin = admin
        }
        var poolConfiguration = PostgresPoolConfiguration(common: common, applicationName: "worker")
        // A worker paused in the middle of a batch (SIGSTOP, a VM freeze) must not hold its
        // conversations' row locks forever: Postgres ends such a session after this long, and the
        // batch is redone by whoever holds the shard then.
        poolConfiguration.connection.parameters["options"] = "-c idle_in_transaction_session_timeout=\(Self.idleInTransactionTimeout.wholeMilliseconds)"
        let database = PostgresPool(configuration: poolConfiguration)
        self.database = database
        guard await Migrations.prepare(mode: mode == .migrateOnly ? .apply : common.migrations, pool: database, logger: logger,
                                       retryForever: mode == .run, isStopping: { [unowned self] in self.stopping },
                                       report: { readiness.phase = .starting($0) }) else {
            return fail(1)
        }
        if mode == .migrateOnly { return finish() }

        let redisConfiguration: RedisConfiguration
        do {
            redisConfiguration = try RedisConfiguration(common: common, clientName: configuration.workerID)
        } catch {
            logger.error("invalid REDIS_URL", ["error": .string(String(describing: error))])
            return fail(78)
        }
        let commands = RedisClient(configuration: redisConfiguration)
        let reader = RedisClient(configuration: redisConfiguration)
        // The reader's XREADGROUP blocks for new commands: keep it out of the latency histogram.
        reader.recordsLatency = false
        redisClients = [commands, reader]
        for client in redisClients { client.logger = logger }
        commands.start()
        reader.start()

        readiness.checks = [
            ("postgres", { await database.ping() }),
            ("redis", { await commands.ping() }),
        ]

        let processor = BatchProcessor(applier: BatchStore(database: database, roomMemberLimit: configuration.roomMemberLimit,
                                                                  roomsPerUser: configuration.roomsPerUser, editWindow: configuration.editWindow),
                                       logger: logger)
        let messageLimit = configuration.messageRateLimit.map { policy in
            MessageRateLimit(limiter: RateLimiter(policy: policy, failureMode: configuration.messageRateLimitFailureMode, redis: commands, logger: logger))
        }
        let consumer = CommandConsumer(reader: reader, commands: commands, processor: processor, messageLimit: messageLimit,
                                       configuration: configuration, logger: logger)
        let store = ShardLeaseStore(redis: commands, shards: configuration.shards, workerID: configuration.workerID, ttl: configuration.leaseTTL)
        let coordinator = ShardCoordinator(shards: configuration.shards, store: store, database: database,
                                           timing: ShardLease.Timing(ttl: configuration.leaseTTL, retryEvery: configuration.leaseTTL / 10),
                                           logger: logger)
        consumer.follow(coordinator)
        self.consumer = consumer
        self.coordinator = coordinator
        consumer.start()
        coordinator.start()
        readiness.phase = .serving
        logger.info("worker started", ["adminPort": .int(Int64(admin?.localPort ?? 0)), "streams": .string(configuration.shards.stream(0) + "…"),
                                       "shards": .int(Int64(configuration.shards.count)), "group": .string(configuration.group),
                                       "consumer": .string(configuration.workerID)])
    }

    func stop() {
        guard !stopping else { return }
        stopping = true
        readiness?.phase = .draining
        // The batch in hand is finished (committed, published, acknowledged) before the clients close,
        // within the shutdown grace period; whatever is not acknowledged stays pending for another worker.
        let grace = configuration.common.shutdownGrace
        stopsPending = 2
        _ = EventLoop.shared.schedule(after: grace + .seconds(1)) { [weak self] in self?.finish() }
        // The consumer finishes its batch first; then the leases go back and the worker leaves the
        // roster, so the other workers take its shards at once rather than after the lease TTL.
        if let consumer {
            consumer.stop(then: { [unowned self] in
                Task.onLoop {
                    await self.coordinator?.stop()
                    self.partStopped()
                }
            })
        } else {
            partStopped()
        }
        guard let admin else { return partStopped() }
        admin.shutdown(grace: grace) { [unowned self] in self.partStopped() }
    }

    private func partStopped() {
        stopsPending -= 1
        if stopsPending == 0 { finish() }
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        for client in redisClients { client.close() }
        database?.close()
        logger.info("worker stopped")
        EventLoop.shared.stop()
    }
}
