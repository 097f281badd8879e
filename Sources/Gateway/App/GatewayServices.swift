import Shared

/// The gateway's object graph, built in one place, in dependency order, every service given what
/// it needs at init (nothing wired later, no optional service production lacks). `GatewayApp`
/// owns one and starts, stops and closes what it holds.
@LoopActor
final class GatewayServices {
    let database: PostgresPool
    /// One connection of its own for the account check of socket CONNECTs, so admission never
    /// queues behind the main pool's reads during a reconnect storm.
    let admissionDatabase: PostgresPool
    let redis: RedisClient
    let hashPool: ThreadPool
    /// The public routes (REST, health, OpenAPI).
    let router: APIRouter
    let presence: Presence
    let submitter: CommandSubmitter
    let shardCountCheck: ShardCountCheck
    let realtime: RealtimeHub
    /// The public port's responder: CORS, long-polling, the API.
    let frontDoor: GatewayFrontDoor
    /// Route owners: the router's handlers hold them unowned, so they live here.
    private let accounts: AccountRoutes
    private let userRoutes: UserRoutes
    private let messageRoutes: MessageRoutes
    private let roomRoutes: RoomRoutes

    /// `clock` drives the sockets' and commands' timers: the loop's, or a manual clock in tests.
    /// `readiness` gets the dependency checks; the app sets its phase.
    init(configuration: GatewayConfiguration, database: PostgresPool, redis: RedisClient, readiness: Readiness, logger: Logger,
         clock: any LoopClock = SystemClock.shared) {
        self.database = database
        self.redis = redis
        let limits = configuration.limits
        let messagingConfiguration = configuration.messaging

        // Accounts and tokens.
        hashPool = ThreadPool(threads: configuration.hashThreads, maxQueueDepth: configuration.hashQueueDepth,
                              maxExpectedWait: configuration.hashMaxWait, name: "scrypt")
        let signer = JWTSigner(secret: configuration.jwtSecret, acceptedSecrets: configuration.jwtAcceptedSecrets, issuer: configuration.jwtIssuer, audience: configuration.jwtAudience,
                               leewaySeconds: configuration.jwtLeewaySeconds)
        let tokens = SessionTokens(signer: signer, database: database, redis: redis,
                                   accessTokenTTLSeconds: configuration.accessTokenTTLSeconds,
                                   refreshTokenTTLSeconds: configuration.refreshTokenTTLSeconds, clock: clock)
        let limiter = { (policy: RateLimitPolicy, mode: RateLimitFailureMode) in
            RateLimiter(policy: policy, failureMode: mode, redis: redis, logger: logger)
        }
        let loginLimits = LoginLimits(perAccount: limits.loginAccount.map { limiter($0, limits.loginFailureMode) },
                                      perAddress: limits.loginAddress.map { limiter($0, limits.loginFailureMode) },
                                      trustedProxies: limits.trustedProxies)
        accounts = AccountRoutes(database: database, tokens: tokens, hasher: PasswordHasher(parameters: configuration.scrypt),
                                 hashPool: hashPool, loginLimits: loginLimits, logger: logger)
        accounts.avatarPolicy = configuration.messaging.attachments
        let apiBudget = limits.api.map { policy in
            APIRequestLimiter(limiter: limiter(policy, limits.apiFailureMode), signer: signer, trustedProxies: limits.trustedProxies,
                              clock: clock)
        }

        // Presence and messaging.
        let registry = PresenceRegistry(redis: redis, configuration: configuration.presence, gatewayID: configuration.gatewayID, logger: logger)
        let directory = ContactDirectory(database: database, roomMembersAreContacts: configuration.presence.roomMembersAreContacts)
        presence = Presence(registry: registry, directory: directory, redis: redis, logger: logger)
        userRoutes = UserRoutes(directory: directory, presence: registry)
        let reader = ConversationReader(database: database, presence: registry)
        submitter = CommandSubmitter(redis: redis, gatewayID: configuration.gatewayID, shards: messagingConfiguration.commandShards,
                                     maxPending: messagingConfiguration.maxPendingCommands,
                                     replyTimeout: messagingConfiguration.replyTimeout, clock: clock)
        shardCountCheck = ShardCountCheck(redis: redis, shards: messagingConfiguration.commandShards, clock: clock, logger: logger)
        messageRoutes = MessageRoutes(reader: reader, submitter: submitter, configuration: messagingConfiguration)
        let roomReader = RoomReader(database: database)
        let rooms = RoomService(reader: roomReader, submitter: submitter, configuration: messagingConfiguration,
                                creations: limits.roomCreation.map { limiter($0, limits.apiFailureMode) })
        rooms.presence = registry
        roomRoutes = RoomRoutes(service: rooms)
        let socketMessaging = SocketMessaging(configuration: messagingConfiguration, submitter: submitter, reader: reader, redis: redis,
                                              apiBudget: apiBudget, clock: clock)

        // Sockets.
        var admissionPool = PostgresPoolConfiguration(common: configuration.common, applicationName: "gateway-admission")
        admissionPool.size = 1
        admissionDatabase = PostgresPool(configuration: admissionPool)
        realtime = RealtimeHub(configuration: configuration.realtime, tokens: tokens, messaging: socketMessaging, presence: presence,
                               submitter: submitter, accounts: AccountExistence(database: admissionDatabase), apiBudget: apiBudget,
                               trustedProxies: limits.trustedProxies, logger: logger, clock: clock)
        let realtime = self.realtime
        let realtimeConfiguration = configuration.realtime
        if realtimeConfiguration.recoveryWindow > .zero {
            realtime.recovery = SessionRecovery(window: realtimeConfiguration.recoveryWindow, secret: configuration.jwtSecret,
                                                database: database, redis: redis, logger: logger)
        }
        realtime.attach(relay: PollingRelay(route: realtimeConfiguration.route, redis: redis, deadline: realtimeConfiguration.pingInterval + realtimeConfiguration.pingTimeout + .seconds(5),
                                            clock: clock, logger: logger))
        realtime.rooms = SocketRooms(service: rooms) { [unowned realtime] userID in await realtime.spendAPIBudget(userID: userID) }
        realtime.channels.loadRooms = { users in try await roomReader.roomIDs(of: users) }
        let channels = realtime.channels
        channels.deliveryAcks = DeliveryAcks(clock: clock, submitter: submitter) { [unowned channels] user, room in
            channels.rooms(of: user).contains(room)
        }
        socketMessaging.isRoomMember = { [unowned channels] userID, roomID in channels.rooms(of: userID).contains(roomID) }

        // Routes.
        router = APIRouter(authenticator: accounts, logger: logger)
        router.limiter = apiBudget
        readiness.checks = [
            ("postgres", { await database.ping() }),
            ("redis", { await redis.ping() }),
        ]
        HealthRoutes.register(on: router, service: "gateway", readiness: readiness)
        router.addImmediate(.GET, "/api/openapi.yaml") { _ in
            HTTPResponse(status: .ok, headers: ["Content-Type": "application/yaml; charset=utf-8"], body: PackageResources.openapi_yaml)
        }
        accounts.register(on: router)
        userRoutes.register(on: router)
        messageRoutes.register(on: router)
        roomRoutes.register(on: router)
        if configuration.webApp { WebApp.register(on: router) }
        frontDoor = GatewayFrontDoor(router: router, realtime: realtime, origins: configuration.realtime.origins,
                                     dialects: configuration.realtime.dialects.enabled)
    }

    /// Closes every client and pool (after the servers drained).
    func close() {
        shardCountCheck.stop()
        realtime.channels.deliveryAcks?.close()
        submitter.close()
        realtime.relay?.close()
        realtime.close()
        redis.close()
        database.close()
        admissionDatabase.close()
        hashPool.shutdown()
    }
}
