import Glibc
import Shared

/// Runs the gateway: migrations, then the object graph (`GatewayServices`), the public and admin
/// HTTP servers, and an orderly shutdown.
@LoopActor
final class GatewayApp: ServiceApp {
    private let configuration: GatewayConfiguration
    private let logger: Logger
    /// Until the services exist (migrations), the pool alone.
    private var database: PostgresPool?
    private var services: GatewayServices?
    private var server: HTTPServer?
    /// `/metrics`, `/health`, `/ready` on the admin port, apart from the public one.
    private var admin: HTTPServer?
    /// What `/ready` answers (the admin port listens before anything else).
    private var readiness: Readiness?
    private var stopping = false
    /// The process exit status once the loop returns.
    private var exitCode: CInt = 0 {
        didSet { ProcessExitStatus.set(exitCode) }
    }

    init(configuration: GatewayConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    func start(mode: CommandLineMode) async {
        ChatMetrics.registerCommon()
        if configuration.jwtSecretGenerated {
            logger.warn("JWT_SECRET is not set: using a random secret for this process (development mode); tokens will not survive a restart or work across gateways")
        }
        let common = configuration.common
        let readiness = Readiness(grace: common.readyDependencyGrace)
        self.readiness = readiness
        // Probes get answers from the start: alive, not ready while Postgres or the schema is awaited.
        if mode == .run {
            let router = AdminRoutes.router(service: "gateway", readiness: readiness, logger: logger)
            guard let admin = listen(configuration.admin, router, what: "the admin port") else { return fail(1) }
            self.admin = admin
        }
        let database = PostgresPool(configuration: PostgresPoolConfiguration(common: common, applicationName: "gateway"))
        self.database = database
        guard await Migrations.prepare(mode: mode == .migrateOnly ? .apply : common.migrations, pool: database, logger: logger,
                                       retryForever: mode == .run, isStopping: { [unowned self] in self.stopping },
                                       report: { readiness.phase = .starting($0) }) else {
            return fail(1)
        }
        if mode == .migrateOnly { return finish() }

        let redisConfiguration: RedisConfiguration
        do {
            redisConfiguration = try RedisConfiguration(common: common, clientName: configuration.gatewayID)
        } catch {
            logger.error("invalid REDIS_URL", ["error": .string(String(describing: error))])
            return fail(78)
        }
        let redis = RedisClient(configuration: redisConfiguration)
        redis.logger = logger
        redis.start()
        let services = GatewayServices(configuration: configuration, database: database, redis: redis, readiness: readiness, logger: logger)
        self.services = services

        var subscriberConfiguration = redisConfiguration
        subscriberConfiguration.clientName = configuration.gatewayID + "-pubsub"
        services.realtime.start(redis: subscriberConfiguration)
        services.presence.registry.start()
        services.shardCountCheck.start()
        var http = configuration.http
        http.maxConnections = DescriptorBudget.fit(configured: http.maxConnections, logger: logger)
        guard let server = listen(http, services.frontDoor, upgrader: services.realtime, what: "the public port") else {
            return fail(1)
        }
        self.server = server
        readiness.phase = .serving
        GatewayMetrics.register(server: server, realtime: services.realtime)
        logger.info("gateway listening", ["host": .string(configuration.http.host), "port": .int(Int64(server.localPort)),
                                          "adminPort": .int(Int64(admin?.localPort ?? 0)),
                                          "environment": .string(common.isDevelopment ? "development" : "production")])
    }

    /// A started server, or nil (logged) when it cannot listen.
    private func listen(_ configuration: HTTPServerConfiguration, _ responder: any HTTPResponder, upgrader: (any HTTPUpgrader)? = nil,
                        what: String) -> HTTPServer? {
        let server = HTTPServer(configuration: configuration, responder: responder, logger: logger)
        server.upgrader = upgrader
        do {
            try server.start()
            return server
        } catch {
            logger.error("cannot listen on \(what)", ["host": .string(configuration.host), "port": .int(Int64(configuration.port)),
                                                      "error": .string(error.description)])
            return nil
        }
    }

    private func fail(_ code: CInt) {
        exitCode = code
        finish()
    }

    /// Graceful shutdown: stop accepting, finish requests in flight, close clients, stop the loop.
    func stop() {
        guard !stopping else { return }
        stopping = true
        readiness?.phase = .draining
        guard let server, let services else { return finish() }
        let grace = configuration.common.shutdownGrace
        // HTTP and sockets drain side by side (the sockets over DRAIN_SPREAD_MS); the admin port
        // keeps answering meanwhile (`/ready` says draining, `/metrics` shows the drain) and
        // closes last; then the presence announcements go out and the process ends.
        var remaining = 2
        let done: @LoopActor () -> Void = { [unowned self] in
            remaining -= 1
            guard remaining == 0 else { return }
            let presenceStopped: @LoopActor () -> Void = { [unowned self] in
                // Sockets are closed: their offline announcements go out, then the liveness key goes.
                services.presence.registry.stop(grace: min(grace, .seconds(5))) { [unowned self] in self.finish() }
            }
            guard let admin = self.admin else { return presenceStopped() }
            admin.shutdown(grace: .seconds(1), completion: presenceStopped)
        }
        server.shutdown(grace: grace, completion: done)
        services.realtime.shutdown(grace: grace, spread: configuration.realtime.drainSpread, completion: done)
    }

    private func finish() {
        if let services { services.close() } else { database?.close() }
        logger.info("gateway stopped", ["exitCode": .int(Int64(exitCode))])
        EventLoop.shared.stop()
    }
}
