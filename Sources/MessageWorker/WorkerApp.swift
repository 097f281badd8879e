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
    private var admin: HTTPServer?
    private var stopping = false
    private var stopsPending = 0
    private var finished = false

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
        let common = configuration.common
        let database = PostgresPool(configuration: PostgresPoolConfiguration(common: common, applicationName: "worker"))
        self.database = database
        guard await Migrations.apply(pool: database, logger: logger, retryForever: mode == .run, isStopping: { [unowned self] in self.stopping }) else {
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
        commands.start()
        reader.start()

        let router = APIRouter(authenticator: nil, logger: logger)
        HealthRoutes.register(on: router, service: "worker", checks: [
            ("postgres", { await database.ping() }),
            ("redis", { await commands.ping() }),
        ])
        router.addImmediate(.GET, "/metrics") { _ in ChatMetrics.response() }
        WorkerMetrics.register()
        let admin = HTTPServer(configuration: configuration.admin, responder: router, logger: logger)
        do {
            try admin.start()
        } catch {
            logger.error("cannot listen on the admin port", ["port": .int(Int64(configuration.admin.port)), "error": .string(error.description)])
            return fail(1)
        }
        self.admin = admin

        let processor = BatchProcessor(applier: BatchStore(database: database), logger: logger)
        let messageLimit = configuration.messageRateLimit.map { policy in
            MessageRateLimit(limiter: RateLimiter(policy: policy, failureMode: configuration.messageRateLimitFailureMode, redis: commands, logger: logger))
        }
        let consumer = CommandConsumer(reader: reader, commands: commands, processor: processor, messageLimit: messageLimit,
                                       configuration: configuration, logger: logger)
        self.consumer = consumer
        consumer.start()
        logger.info("worker started", ["adminPort": .int(Int64(admin.localPort)), "stream": .string(configuration.stream),
                                       "group": .string(configuration.group), "consumer": .string(configuration.workerID)])
    }

    func stop() {
        guard !stopping else { return }
        stopping = true
        // The batch in hand is finished (committed, published, acknowledged) before the clients close,
        // within the shutdown grace period; whatever is not acknowledged stays pending for another worker.
        let grace = configuration.common.shutdownGrace
        stopsPending = 2
        _ = EventLoop.shared.schedule(after: grace + .seconds(1)) { [weak self] in self?.finish() }
        if let consumer { consumer.stop(then: { [unowned self] in self.partStopped() }) } else { partStopped() }
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
