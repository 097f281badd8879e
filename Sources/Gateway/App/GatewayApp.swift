import Glibc
import Shared

/// Wires the gateway: database, Redis, accounts, the HTTP server, and an orderly shutdown.
@LoopActor
final class GatewayApp: ServiceApp {
    private let configuration: GatewayConfiguration
    private let logger: Logger
    private var database: PostgresPool?
    /// One connection of its own for the account check of socket CONNECTs, so admission never
    /// queues behind the main pool's reads during a reconnect storm.
    private var admissionDatabase: PostgresPool?
    private var redis: RedisClient?
    private var server: HTTPServer?
    /// `/metrics`, `/health`, `/ready` on the admin port, apart from the public one.
    private var admin: HTTPServer?
    private var realtime: RealtimeHub?
    private var submitter: CommandSubmitter?
    /// Kept here: the router's handlers hold it unowned.
    private var messageRoutes: MessageRoutes?
    private var hashPool: ThreadPool?
    private var presence: Presence?
    /// Kept here: the router's handlers hold it unowned.
    private var userRoutes: UserRoutes?
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
        let database = PostgresPool(configuration: PostgresPoolConfiguration(common: common, applicationName: "gateway"))
        self.database = database
        guard await Migrations.apply(pool: database, logger: logger, retryForever: mode == .run, isStopping: { [unowned self] in self.stopping }) else {
            exitCode = 1
            return finish()
        }
        if mode == .migrateOnly { return finish() }

        let redis: RedisClient
        let redisConfiguration: RedisConfiguration
        do {
            redisConfiguration = try RedisConfiguration(common: common, clientName: configuration.gatewayID)
            redis = RedisClient(configuration: redisConfiguration)
        } catch {
            logger.error("invalid REDIS_URL", ["error": .string(String(describing: error))])
            exitCode = 78
            return finish()
        }
        self.redis = redis
        redis.start()

        let hashPool = ThreadPool(threads: configuration.hashThreads, maxQueueDepth: configuration.hashQueueDepth, name: "scrypt")
        self.hashPool = hashPool
        let signer = JWTSigner(secret: configuration.jwtSecret, issuer: configuration.jwtIssuer, audience: configuration.jwtAudience,
                                leewaySeconds: configuration.jwtLeewaySeconds)
        let tokens = SessionTokens(signer: signer, database: database, redis: redis,
                                   accessTokenTTLSeconds: configuration.accessTokenTTLSeconds,
                                   refreshTokenTTLSeconds: configuration.refreshTokenTTLSeconds)
        let accounts = AccountRoutes(database: database, tokens: tokens, hasher: PasswordHasher(parameters: configuration.scrypt),
                                     hashPool: hashPool, logger: logger)
        let limits = configuration.limits
        accounts.loginLimits = LoginLimits(
            perAccount: limits.loginAccount.map { RateLimiter(policy: $0, failureMode: limits.loginFailureMode, redis: redis, logger: logger) },
            perAddress: limits.loginAddress.map { RateLimiter(policy: $0, failureMode: limits.loginFailureMode, redis: redis, logger: logger) },
            trustedProxies: limits.trustedProxies)
        let router = APIRouter(authenticator: accounts, logger: logger)
        let apiLimiter = limits.api.map { policy in
            APIRequestLimiter(limiter: RateLimiter(policy: policy, failureMode: limits.apiFailureMode, redis: redis, logger: logger),
                              signer: signer, trustedProxies: limits.trustedProxies)
        }
        router.limiter = apiLimiter
        let healthChecks: [(name: String, probe: @LoopActor () async -> Bool)] = [
            ("postgres", { await database.ping() }),
            ("redis", { await redis.ping() }),
        ]
        HealthRoutes.register(on: router, service: "gateway", checks: healthChecks)
        router.addImmediate(.GET, "/api/openapi.yaml") { _ in
            HTTPResponse(status: .ok, headers: ["Content-Type": "application/yaml; charset=utf-8"], body: PackageResources.openapi_yaml)
        }
        accounts.register(on: router)

        // Metrics are for the monitoring network only: served on the admin port, never the public one.
        let adminRouter = APIRouter(authenticator: nil, logger: logger)
        HealthRoutes.register(on: adminRouter, service: "gateway", checks: healthChecks)
        adminRouter.addImmediate(.GET, "/metrics") { _ in ChatMetrics.response() }
        let admin = HTTPServer(configuration: configuration.admin, responder: adminRouter, logger: logger)
        do {
            try admin.start()
        } catch {
            logger.error("cannot listen on the admin port", ["port": .int(Int64(configuration.admin.port)), "error": .string(error.description)])
            exitCode = 1
            return finish()
        }
        self.admin = admin

        let messaging = configuration.messaging
        let registry = PresenceRegistry(redis: redis, configuration: configuration.presence, gatewayID: configuration.gatewayID, logger: logger)
        let directory = ContactDirectory(database: database)
        let presence = Presence(registry: registry, directory: directory, redis: redis, logger: logger)
        self.presence = presence
        let userRoutes = UserRoutes(directory: directory, presence: registry)
        userRoutes.register(on: router)
        self.userRoutes = userRoutes
        let reader = ConversationReader(database: database, presence: registry)
        let submitter = CommandSubmitter(redis: redis, gatewayID: configuration.gatewayID, stream: messaging.commandStream,
                                         replyTimeoutMilliseconds: messaging.replyTimeoutMilliseconds)
        self.submitter = submitter
        let messageRoutes = MessageRoutes(reader: reader, submitter: submitter, configuration: messaging)
        messageRoutes.register(on: router)
        self.messageRoutes = messageRoutes

        let realtime = RealtimeHub(configuration: configuration.realtime, tokens: tokens,
                                   leewaySeconds: configuration.jwtLeewaySeconds, logger: logger)
        let socketMessaging = SocketMessaging(configuration: messaging, submitter: submitter, reader: reader, redis: redis)
        socketMessaging.spendAPIBudget = { [weak realtime] userID in await realtime?.spendAPIBudget(userID: userID) }
        realtime.messaging = socketMessaging
        realtime.presence = presence
        realtime.trustedProxies = limits.trustedProxies
        realtime.apiBudget = apiLimiter
        var admissionPool = PostgresPoolConfiguration(common: common, applicationName: "gateway-admission")
        admissionPool.size = 1
        let admissionDatabase = PostgresPool(configuration: admissionPool)
        self.admissionDatabase = admissionDatabase
        let accountExistence = AccountExistence(database: admissionDatabase)
        realtime.accountExists = { userID in try await accountExistence.exists(userID) }
        realtime.onSessionClosed = { [weak submitter] engineID in submitter?.forgetSocket(engineID) }
        submitter.onSocketReply = { [weak realtime] reply in realtime?.deliver(reply) }
        // Without the reply channel a command's answer would be lost: refuse commands instead.
        submitter.canReceiveReplies = { [weak realtime] in realtime?.channels.gatewayChannelReady ?? false }
        let replyChannel = ChatChannels.gateway(configuration.gatewayID)
        realtime.channels.listen(gatewayChannel: replyChannel) { [weak submitter, logger] payload in
            guard let submitter, !submitter.handleReply(payload) else { return }
            logger.warn("dropped a malformed command reply", ["channel": .string(replyChannel), "bytes": .int(Int64(payload.count))])
        }
        var subscriberConfiguration = redisConfiguration
        subscriberConfiguration.clientName = configuration.gatewayID + "-pubsub"
        realtime.start(redis: subscriberConfiguration)
        self.realtime = realtime
        registry.start()

        let server = HTTPServer(configuration: configuration.http, responder: router, logger: logger)
        server.upgrader = realtime
        do {
            try server.start()
        } catch {
            logger.error("cannot listen", ["host": .string(configuration.http.host), "port": .int(Int64(configuration.http.port)),
                                           "error": .string(error.description)])
            exitCode = 1
            return finish()
        }
        self.server = server
        GatewayMetrics.register(server: server, realtime: realtime)
        logger.info("gateway listening", ["host": .string(configuration.http.host), "port": .int(Int64(server.localPort)),
                                          "adminPort": .int(Int64(admin.localPort)),
                                          "environment": .string(common.isDevelopment ? "development" : "production")])
    }

    /// Graceful shutdown: stop accepting, finish requests in flight, close clients, stop the loop.
    func stop() {
        guard !stopping else { return }
        stopping = true
        guard let server else { return finish() }
        let grace = Int64(configuration.common.shutdownGraceMilliseconds)
        // HTTP, sockets and the admin port drain side by side; the process ends when all are done.
        var remaining = (realtime == nil ? 1 : 2) + (admin == nil ? 0 : 1)
        let done: @LoopActor () -> Void = { [unowned self] in
            remaining -= 1
            guard remaining == 0 else { return }
            // Sockets are closed: their offline announcements go out, then the liveness key goes.
            guard let presence = self.presence else { return self.finish() }
            presence.registry.stop(graceMilliseconds: min(grace, 5_000)) { [unowned self] in self.finish() }
        }
        server.shutdown(graceMilliseconds: grace, completion: done)
        realtime?.shutdown(graceMilliseconds: grace, completion: done)
        admin?.shutdown(graceMilliseconds: grace, completion: done)
    }

    private func finish() {
        submitter?.close()
        realtime?.close()
        redis?.close()
        database?.close()
        admissionDatabase?.close()
        hashPool?.shutdown()
        logger.info("gateway stopped", ["exitCode": .int(Int64(exitCode))])
        EventLoop.shared.stop()
    }
}
