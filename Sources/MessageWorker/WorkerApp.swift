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

    init(configuration: WorkerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    private func fail(_ code: CInt) {
        ProcessExitStatus.set(code)
        finish()
    }

    func start(mode: CommandLineMode) async {
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
        redisClients = [commands, reader]
        commands.start()
        reader.start()

        let router = APIRouter(authenticator: nil, logger: logger)
        HealthRoutes.register(on: router, service: "worker", checks: [
            ("postgres", { await database.ping() }),
            ("redis", { await commands.ping() }),
        ])
        let admin = HTTPServer(configuration: configuration.admin, responder: router, logger: logger)
        do {
            try admin.start()
        } catch {
            logger.error("cannot listen on the admin port", ["port": .int(Int64(configuration.admin.port)), "error": .string(error.description)])
            return fail(1)
        }
        self.admin = admin

        let consumer = CommandConsumer(reader: reader, commands: commands, configuration: configuration, logger: logger)
        self.consumer = consumer
        consumer.start()
        logger.info("worker started", ["adminPort": .int(Int64(admin.localPort)), "stream": .string(configuration.stream),
                                       "group": .string(configuration.group), "consumer": .string(configuration.workerID)])
    }

    func stop() {
        guard !stopping else { return }
        stopping = true
        consumer?.stop()
        guard let admin else { return finish() }
        admin.shutdown(graceMilliseconds: Int64(configuration.common.shutdownGraceMilliseconds)) { [unowned self] in self.finish() }
    }

    private func finish() {
        for client in redisClients { client.close() }
        database?.close()
        logger.info("worker stopped")
        EventLoop.shared.stop()
    }
}
