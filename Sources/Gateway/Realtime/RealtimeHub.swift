import Shared

/// The gateway's socket endpoint: decides WebSocket upgrades at `/socket.io/`, owns the sessions,
/// the per-IP counts and the user channels, routes the workers' answers to sockets, and drains
/// sockets on shutdown.
///
/// A command's answer takes one path: the gateway channel (`UserChannels`) → `CommandSubmitter`
/// (which settles REST waiters and each ack once) → `answer(_:)` → `SocketSession.answer(_:)`.
@LoopActor
final class RealtimeHub: HTTPUpgrader, SocketSessionHost {
    let configuration: RealtimeConfiguration
    let channels: UserChannels
    /// The messaging events (`sendMessage`, `typing`, `sync`, ...).
    let messaging: SocketMessaging
    /// The room requests (`createRoom`, `joinRoom`, ...), set by the composition root.
    var rooms: SocketRooms?
    /// Online/offline of connected users.
    let presence: Presence
    /// Connection state recovery (issue 15), set by the composition root; nil when it is off.
    var recovery: SessionRecovery?
    /// What every session's protocol machine is configured with.
    let sessionConfiguration: SocketSessionMachine.SharedConfiguration
    private let tokens: SessionTokens
    private let submitter: CommandSubmitter
    /// Whether accounts exist (CONNECT refuses tokens of deleted accounts).
    private let accounts: AccountExistence
    /// The per-user API budget that database-backed socket requests spend, as REST requests do;
    /// nil when the API limit is off.
    private let apiBudget: APIRequestLimiter?
    /// Load balancers whose `X-Forwarded-For` names the client (for the per-IP socket cap).
    let trustedProxies: TrustedProxies
    let logger: Logger
    /// Time and timers of the sockets (the loop's; a manual clock in tests).
    let clock: any LoopClock
    /// Open sockets by Engine.IO session id (the `socket` of a command's reply address).
    private var sessions: [String: SocketSession] = [:]
    /// Long-polling transports by session id (a closed session's lingers until its close packet
    /// was fetched).
    var pollingLinks: [String: PollingLink] = [:]
    /// Relays polling requests for sessions of other gateways; set by `attach(relay:)`.
    private(set) var relay: PollingRelay?
    private var connectionsPerIP: [String: Int] = [:]
    private var remoteUpgrades: [ObjectIdentifier: RemoteUpgrade] = [:]
    private(set) var draining = false
    private var drainWaiters: [@LoopActor () -> Void] = []

    init(configuration: RealtimeConfiguration, tokens: SessionTokens, messaging: SocketMessaging, presence: Presence,
         submitter: CommandSubmitter, accounts: AccountExistence, apiBudget: APIRequestLimiter?, trustedProxies: TrustedProxies,
         logger: Logger, clock: any LoopClock = SystemClock.shared) {
        self.configuration = configuration
        self.clock = clock
        self.tokens = tokens
        self.messaging = messaging
        self.presence = presence
        self.submitter = submitter
        self.accounts = accounts
        self.apiBudget = apiBudget
        self.trustedProxies = trustedProxies
        self.logger = logger
        sessionConfiguration = SocketSessionMachine.SharedConfiguration(SocketSessionMachine.Configuration(
            signer: tokens.verifier, connectTimeout: configuration.connectTimeout,
            eventBudget: configuration.eventBudget, dialects: configuration.dialects))
        channels = UserChannels(logger: logger)
        channels.onControl = { sessions, control in
            switch control {
            case .revoke(let revocation):
                for session in sessions { session.revoke(revocation) }
            }
        }
        submitter.answerSocket = { [unowned self] reply in self.answer(reply) }
        // Without the reply channel a command's answer would be lost: commands are refused instead.
        submitter.canReceiveReplies = { [unowned self] in self.channels.gatewayChannelReady }
        let replyChannel = ChatChannels.gateway(submitter.gatewayID)
        channels.listen(gatewayChannel: replyChannel) { [unowned self] payload in
            guard !self.submitter.receive(replyPayload: payload) else { return }
            self.logger.warn("dropped a malformed command reply", ["channel": .string(replyChannel), "bytes": .int(Int64(payload.count))])
        }
    }

    /// Starts the pub/sub connection; after it recovers from a drop every client gets `resync`.
    func start(redis: RedisConfiguration) {
        channels.start(configuration: redis) { [weak self] in self?.broadcastResync() }
    }

    /// Open sockets.
    var sessionCount: Int { sessions.count }

    /// The checks of a CONNECT whose token verified: the user's channel is subscribed (so a
    /// revocation published from now on reaches the socket), then the token must not be revoked and
    /// the account must exist. nil when admitted; the refusal otherwise.
    func admit(_ session: SocketSession, principal: Principal) async -> APIError? {
        do {
            try await channels.register(session, userID: principal.userID)
        } catch {
            return APIError(.redisUnavailable, message: error.message)
        }
        do {
            try await channels.registerRooms(of: principal.userID)
        } catch {
            channels.unregister(session, userID: principal.userID)
            return APIError.from(error)
        }
        // Both checks at once, on the loop (no hop to the global executor).
        let revocation = Task.onLoop { await self.revocationRefusal(principal) }
        let account = await accountRefusal(principal.userID)
        if let refusal = await revocation.value { return refusal }
        return account
    }

    private func revocationRefusal(_ principal: Principal) async -> APIError? {
        do {
            try await tokens.checkNotRevoked(principal)
            return nil
        } catch {
            return APIError.from(error)
        }
    }

    /// A deleted account's token is refused like REST refuses it. When the database cannot answer,
    /// the socket is admitted: its token is valid and not revoked, and a database outage must not
    /// take every socket of the cluster down with it.
    private func accountRefusal(_ userID: Int64) async -> APIError? {
        do {
            return try await accounts.exists(userID) ? nil : SessionTokens.accountGone
        } catch {
            logger.warn("cannot check the account of a connecting socket; admitting it", ["userId": .int(userID),
                                                                                         "error": .string(String(describing: error))])
            return nil
        }
    }

    /// Throws `token_revoked` (or the Redis failure) for a token of `authenticate`.
    func checkNotRevoked(_ principal: Principal) async throws {
        try await tokens.checkNotRevoked(principal)
    }

    /// Spends one unit of the user's API budget for a database-backed socket request; the refusal
    /// (`rate_limited` with `retryAfterMs`) when there is none left.
    func spendAPIBudget(userID: Int64) async -> APIError? {
        await apiBudget?.admit(userID: userID)
    }

    // MARK: Events

    /// Routes a gateway event of a connected socket.
    func dispatch(_ request: SocketSessionMachine.EventRequest, from session: SocketSession) {
        let userID = request.principal.userID
        switch request.event {
        case .getOnlineUsers:
            Task.onLoop {
                if let refusal = await self.spendAPIBudget(userID: userID) { return session.emitError(refusal, ackID: request.ackID) }
                guard let list = await self.presence.onlineContacts(of: userID) else {
                    return session.emitError(APIError.databaseUnavailable, ackID: request.ackID)
                }
                if let ackID = request.ackID { session.sendAck(ackID, list) } else { session.emit(.onlineUsers, list) }
            }
        case .presenceSubscribe:
            Task.onLoop {
                if let refusal = await self.spendAPIBudget(userID: userID) { return session.emitError(refusal, ackID: request.ackID) }
                do {
                    let answer = try await self.presenceSubscribe(request.argument, session: session, userID: userID)
                    if let ackID = request.ackID { session.sendAck(ackID, [answer]) } else { session.emit(.presenceSubscribe, answer) }
                } catch {
                    session.emitError(APIError.from(error), ackID: request.ackID)
                }
            }
        case let event where SocketRooms.handles(event):
            guard let rooms else { return session.emitError(APIError(.unknownEvent, message: "unknown event '\(event)'"), ackID: request.ackID) }
            rooms.handle(event, request.argument, ackID: request.ackID, session: session, userID: userID)
        default:
            messaging.handle(request.event, request.argument, ackID: request.ackID, session: session, userID: userID)
        }
    }

    /// Routes a dialect request with no native event (issue 16).
    func dispatchDialect(_ request: SocketSessionMachine.DialectRequest, from session: SocketSession) {
        switch request.inbound {
        case .chatHistory(let other, let limit, let skip):
            messaging.chatHistory(otherUserID: other, limit: limit, skip: skip, userID: request.principal.userID, ackID: request.ackID,
                                  session: session)
        case .conversationTyping(let conversation, let typing):
            withPartner(conversation, request: request, session: session) { partner in
                self.messaging.handle(typing ? .typing : .stopTyping, ["receiverId": .int(partner)], ackID: request.ackID, session: session,
                                      userID: request.principal.userID)
            }
        case .joinConversation(let conversation):
            withPartner(conversation, request: request, session: session) { _ in
                if let ackID = request.ackID { session.sendAck(ackID, ["ok": true]) }
            }
        case .conversationRead(let conversation):
            withPartner(conversation, request: request, session: session) { partner in
                self.messaging.handle(.markAllAsRead, ["senderId": .int(partner)], ackID: request.ackID, session: session,
                                      userID: request.principal.userID)
            }
        case .native, .ignored, .unknown:
            break
        }
    }

    /// Seed 003 names direct conversations by id: the other member, read once per socket and
    /// conversation (a member of a direct conversation stays one).
    private func withPartner(_ conversation: Int64, request: SocketSessionMachine.DialectRequest, session: SocketSession,
                             _ body: @escaping @LoopActor (Int64) -> Void) {
        if let partner = session.conversationPartners[conversation] { return body(partner) }
        Task.onLoop {
            do {
                guard conversation > 0,
                      let partner = try await self.messaging.reader.directPartner(conversationID: conversation, userID: request.principal.userID) else {
                    return session.emitError(APIError(.conversationNotFound), ackID: request.ackID)
                }
                if session.conversationPartners.count < Self.maxRememberedPartners { session.conversationPartners[conversation] = partner }
                body(partner)
            } catch {
                session.emitError(APIError.from(error), ackID: request.ackID)
            }
        }
    }

    /// Conversations whose other member one socket remembers.
    static let maxRememberedPartners = 256

    /// Most users one socket may watch with `presenceSubscribe`.
    static let maxWatchedUsers = 500

    /// `presenceSubscribe {userIds}`: watches those of the users the caller shares a conversation
    /// or room with (the others are listed in `refused`), then answers their current state.
    private func presenceSubscribe(_ argument: JSONValue, session: SocketSession, userID: Int64) async throws -> JSONValue {
        let body = try MessagePayload.object(argument)
        guard let values = body["userIds"]?.arrayValue else { throw APIError.invalidField("userIds", "field 'userIds' must be an array of user ids") }
        guard values.count <= Self.maxWatchedUsers else {
            throw APIError.invalidField("userIds", "field 'userIds' may hold at most \(Self.maxWatchedUsers) ids")
        }
        var wanted: [Int64] = []
        for value in values {
            guard let id = ChatCommand.idValue(value), id > 0 else {
                throw APIError.invalidField("userIds", "field 'userIds' must be an array of positive integer ids")
            }
            wanted.append(id)
        }
        let allowed = try await presence.directory.peers(of: userID, among: wanted)
        try await channels.watch(allowed, for: session)
        let online = await presence.registry.onlineUsers(among: Array(allowed))
        return [
            "users": .array(allowed.sorted().map { ["userId": .int($0), "isOnline": .bool(online.contains($0))] }),
            "refused": .array(Set(wanted).subtracting(allowed).sorted().map { .int($0) }),
        ]
    }

    /// Whether a request is for the Engine.IO endpoint.
    static func isEngineIOPath(_ path: String) -> Bool { path == "/socket.io/" || path == "/socket.io" }

    /// Makes session ids name this gateway and serves polling requests relayed from the others.
    func attach(relay: PollingRelay) {
        self.relay = relay
        relay.serve = { [unowned self] op, sid, message, answer in
            self.serveRelayed(op, sid: sid, message: message, answer: answer)
        }
        channels.listen(ownChannel: relay.channel) { [unowned relay] payload in relay.receive(payload) }
    }

    /// A fresh Engine.IO session id (naming this gateway when a relay is attached).
    func newEngineID() -> String { relay?.newSessionID() ?? SecureRandom.token(byteCount: 15) }

    /// Counts a new session of `client` (the per-IP cap).
    func countConnection(of client: String) { connectionsPerIP[client, default: 0] += 1 }

    /// Registers and starts a session whose transport exists.
    func open(_ session: SocketSession, upgrades: [String]) {
        sessions[session.engineID] = session
        session.start(upgrades: upgrades)
    }

    // MARK: HTTPUpgrader

    func decide(_ request: HTTPRequest, context: HTTPRequestContext) -> HTTPUpgradeDecision {
        guard Self.isEngineIOPath(request.path) else { return .notAnUpgrade }
        // Without an Upgrade header it is a long-polling request (or a bad one), answered by
        // `respondPolling` as the reference server answers.
        guard request.headers.contains("Upgrade") || request.queryParameter("transport") == "websocket" else { return .notAnUpgrade }
        let client = trustedProxies.client(of: request, peer: context.peerAddress)
        if let sid = request.queryParameter("sid") { return decideUpgrade(request, sid: sid, client: client) }
        if let refusal = refusal(for: request, peer: client, transport: "websocket") { return .reject(refusal.response) }
        switch WebSocketHandshake.response(to: request) {
        case .failure(let error):
            return .reject(error.response)
        case .success(let response):
            let headerToken = BearerToken.parse(request.headers["Authorization"])
            let queryDialect = request.queryParameter("dialect")
            countConnection(of: client)
            return .accept(response) { [weak self] transport, leftover, release in
                guard let self else { return transport.closeNow() }
                let connection = WebSocketConnection(transport: transport, configuration: self.configuration.webSocket, clock: self.clock,
                                                     release: release)
                let session = SocketSession(link: connection, engineID: self.newEngineID(), host: self, headerToken: headerToken,
                                            queryDialect: queryDialect, clientAddress: client)
                GatewayMetrics.engineSessions.increment("websocket")
                self.open(session, upgrades: [])
                connection.delegate = session
                connection.start(leftover: leftover)
            }
        }
    }

    /// A WebSocket for a polling session (`transport=websocket&sid=...`): the upgrade's probe. Only
    /// the gateway owning the session can take it; elsewhere it is refused and the client goes on
    /// polling (through the relay).
    private func decideUpgrade(_ request: HTTPRequest, sid: String, client: String) -> HTTPUpgradeDecision {
        guard request.queryParameter("EIO") == "4" else { return .reject(PollingAnswer.engineError(.unsupportedProtocolVersion).response) }
        guard configuration.origins.allows(request.headers["Origin"], host: request.headers["Host"]) else {
            return .reject(PollingAnswer.engineError(.forbidden, status: .forbidden).response)
        }
        if let relay, let owner = PollingRelay.owner(of: sid), owner != relay.route {
            guard !draining else { return .reject(PollingAnswer.engineError(.badRequest).response) }
            return acceptRemoteUpgrade(request, sid: sid, owner: owner, relay: relay, client: client)
        }
        guard let link = pollingLinks[sid], link.canUpgrade, !draining else {
            return .reject(PollingAnswer.engineError(pollingLinks[sid] == nil ? .unknownSession : .badRequest).response)
        }
        switch WebSocketHandshake.response(to: request) {
        case .failure(let error):
            return .reject(error.response)
        case .success(let response):
            return .accept(response) { [weak link] transport, leftover, release in
                guard let link, link.canUpgrade else { return transport.closeNow() }
                link.beginUpgrade(transport, leftover: leftover, release: release)
            }
        }
    }

    /// The probe of a session owned by another gateway: taken over here if the owner agrees.
    private func acceptRemoteUpgrade(_ request: HTTPRequest, sid: String, owner: String, relay: PollingRelay,
                                     client: String) -> HTTPUpgradeDecision {
        switch WebSocketHandshake.response(to: request) {
        case .failure(let error):
            return .reject(error.response)
        case .success(let response):
            return .accept(response) { [weak self] transport, leftover, release in
                guard let self else { return transport.closeNow() }
                let connection = WebSocketConnection(transport: transport, configuration: self.configuration.webSocket, clock: self.clock,
                                                     release: release)
                RemoteUpgrade(hub: self, relay: relay, connection: connection, sid: sid, owner: owner, clientAddress: client)
                    .start(leftover: leftover)
            }
        }
    }

    /// Upgrades from another gateway's sessions in progress (kept alive until they end).
    func remoteUpgradeStarted(_ upgrade: RemoteUpgrade) { remoteUpgrades[ObjectIdentifier(upgrade)] = upgrade }

    func remoteUpgradeEnded(_ upgrade: RemoteUpgrade) { remoteUpgrades[ObjectIdentifier(upgrade)] = nil }

    /// A session handed over by another gateway lives here from now on.
    func adoptTransferred(_ session: SocketSession, from upgrade: RemoteUpgrade) {
        remoteUpgrades[ObjectIdentifier(upgrade)] = nil
        countConnection(of: session.clientAddress)
        sessions[session.engineID] = session
        GatewayMetrics.engineSessions.increment("transfer")
    }

    /// Why a new session (`transport`) is refused; nil when it may open.
    func refusal(for request: HTTPRequest, peer: String, transport: String) -> APIError? {
        guard request.queryParameter("EIO") == "4" else {
            return APIError(.protocolUnsupported)
        }
        guard request.queryParameter("transport") == transport else {
            return APIError(.transportUnsupported)
        }
        if draining {
            return APIError(.shuttingDown,
                            headers: ["Retry-After": "1"])
        }
        guard configuration.origins.allows(request.headers["Origin"], host: request.headers["Host"]) else {
            return APIError(.originNotAllowed)
        }
        guard connectionsPerIP[peer, default: 0] < configuration.maxConnectionsPerIP else {
            return APIError(.tooManyConnections,
                            message: "too many sockets from this address (limit \(configuration.maxConnectionsPerIP))",
                            headers: ["Retry-After": "5"])
        }
        return nil
    }

    // MARK: Sessions

    /// The open socket with this Engine.IO session id.
    func session(engineID: String) -> SocketSession? { sessions[engineID] }

    /// The answer to a command of one of this gateway's sockets; dropped if the socket is gone.
    func answer(_ reply: ChatReply) {
        guard let engineSession = reply.reply.engineSession, let session = sessions[engineSession] else { return }
        session.answer(reply)
    }

    func deliveryAcknowledged(_ messageID: Int64, userID: Int64) {
        channels.deliveryAcks?.acknowledged(messageID, by: userID)
    }

    func sessionConnected(_ session: SocketSession, userID: Int64) {
        presence.socketConnected(session, userID: userID)
    }

    func release(_ session: SocketSession, userID: Int64) {
        channels.unregister(session, userID: userID)
    }

    func sessionClosed(_ session: SocketSession, userID: Int64?) {
        guard sessions.removeValue(forKey: session.engineID) != nil else { return }
        submitter.forget(engineSession: session.engineID)
        let client = session.clientAddress
        if let count = connectionsPerIP[client] {
            connectionsPerIP[client] = count > 1 ? count - 1 : nil
        }
        if let userID {
            channels.unregister(session, userID: userID)
            presence.socketClosed(userID: userID)
        }
        if sessions.isEmpty && !drainWaiters.isEmpty {
            let waiters = drainWaiters
            drainWaiters = []
            for waiter in waiters { waiter() }
        }
    }

    private func broadcastResync() {
        // Also runs after the first connection (the gateway's reply channel is wanted from the start).
        guard !sessions.isEmpty else { return }
        logger.info("pub/sub restored; telling sockets to resync", ["sockets": .int(Int64(sessions.count))])
        let publication = Publication(event: SocketEvent.resync.name, data: ["reason": "subscription_restored"])
        for session in sessions.values { session.sendPublished(publication) }
        recheckRevocations()
    }

    /// How long the re-check keeps trying while Redis commands fail (past it, tokens issued before
    /// the outage have mostly expired: access tokens live 15 minutes by default).
    static let recheckPatience = Duration.seconds(120)

    /// Revocations published while the subscription was down were lost: every connected socket's
    /// token is checked again (in batches, so a large gateway does not flood Redis).
    private func recheckRevocations() {
        let connected = sessions.values.filter { $0.principal != nil }
        Task.onLoop {
            var index = 0
            while index < connected.count {
                let end = min(index + Self.recheckBatch, connected.count)
                let batch = Array(connected[index..<end])
                index = end
                // A socket that closed since is left out (its principal is gone).
                let principals = batch.compactMap(\.principal)
                // The command connection may come back after the subscription (a failover: each
                // has its own backoff): keep trying, as long as the revocations could still matter.
                var revoked: [Principal]?
                var delay = Duration.milliseconds(250)
                let deadline = MonotonicClock.deadline(after: Self.recheckPatience, from: MonotonicClock.now())
                while revoked == nil, !self.draining {
                    revoked = try? await self.tokens.revoked(principals)
                    if revoked != nil { break }
                    guard MonotonicClock.now() < deadline else {
                        return self.logger.warn("cannot re-check revocations after resubscribing", ["sockets": .int(Int64(connected.count))])
                    }
                    await EventLoop.shared.sleep(for: delay)
                    delay = min(delay * 2, .seconds(5))
                }
                guard let revoked else { return }
                for principal in revoked {
                    let revocation = TokenRevocation(tokenID: principal.tokenID, sessionID: principal.sessionID)
                    for session in batch where session.principal == principal { session.revoke(revocation) }
                }
            }
        }
    }

    private static let recheckBatch = 500

    /// Refuses new sockets, closes open ones (WebSocket 1001, so clients reconnect
    /// elsewhere) and calls `completion` once they are gone or after `grace`.
    func shutdown(grace: Duration, spread: Duration = .zero, completion: @escaping @LoopActor () -> Void) {
        draining = true
        // Polls relayed to other gateways are answered now (503): their clients reconnect elsewhere.
        relay?.close()
        var finished = false
        let finish: @LoopActor () -> Void = {
            guard !finished else { return }
            finished = true
            completion()
        }
        if sessions.isEmpty { return finish() }
        drainWaiters.append(finish)
        logger.info("closing sockets", ["sockets": .int(Int64(sessions.count)), "spreadMs": .int(spread.wholeMilliseconds)])
        // Random order: no user, room or address always goes first.
        closeSpread(Array(sessions.keys).shuffled(), over: spread)
        clock.schedule(after: spread + grace) { finish() }
    }

    /// Closes the sessions named in `order` (those still open) evenly over `spread`: a batch
    /// every `drainTick`, so a gateway of 100,000 sockets draining over 10 s sends 2,000
    /// reconnections a tick to the others instead of 100,000 at once.
    private func closeSpread(_ order: [String], over spread: Duration) {
        let ticks = max(1, Int(min(spread / Self.drainTick, Double(order.count))))
        let perTick = (order.count + ticks - 1) / ticks
        var next = 0
        func closeBatch() {
            let end = min(next + perTick, order.count)
            for id in order[next..<end] { sessions[id]?.shutdown() }
            next = end
            if next < order.count { clock.schedule(after: spread / ticks) { closeBatch() } }
        }
        closeBatch()
    }

    /// The drain's batch interval.
    private static let drainTick = Duration.milliseconds(20)

    func close() { channels.close() }
}
