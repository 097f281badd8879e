import Shared

/// Which local sockets belong to which user, and the Redis subscription that feeds them.
///
/// A gateway subscribes to `chat:user:{id}` when the user's first local socket connects and
/// unsubscribes after the last one leaves, so its subscription count equals its number of distinct
/// connected users. Every event published there is encoded once and written to each local socket.
///
/// The same connection carries the gateway's own channel `chat:gw:{gatewayId}` (workers' replies to
/// commands), subscribed for the process's lifetime and handed to `gatewayHandler`.
@LoopActor
final class UserChannels {
    private var socketsByUser: [Int64: [ObjectIdentifier: SocketSession]] = [:]
    private var subscriber: RedisSubscriber?
    private let logger: Logger
    private var gatewayChannel: String?
    private var gatewayHandler: (@LoopActor ([UInt8]) -> Void)?
    /// Whether the gateway channel is subscribed right now, i.e. replies can arrive.
    private(set) var gatewayChannelReady = false
    /// Control messages on a user's channel (token revocations), for the user's local sockets.
    var onControl: (@LoopActor (_ sockets: [SocketSession], _ control: UserChannelControl) -> Void)?

    nonisolated static let channelPrefix = ChatChannels.userPrefix

    nonisolated static func channel(for userID: Int64) -> String { ChatChannels.user(userID) }

    init(logger: Logger) {
        self.logger = logger
    }

    /// Connects the subscription; `onResubscribed` runs after Redis came back (clients must resync).
    func start(configuration: RedisConfiguration, onResubscribed: @escaping @LoopActor () -> Void) {
        let subscriber = RedisSubscriber(configuration: configuration) { [weak self] channel, payload in
            self?.route(channel: channel, payload: payload)
        }
        subscriber.onResubscribed = { [weak self] in
            // Every wanted channel, the gateway's included, is subscribed again.
            if self?.gatewayChannel != nil { self?.gatewayChannelReady = true }
            onResubscribed()
        }
        subscriber.onDisconnected = { [weak self, logger] error in
            self?.gatewayChannelReady = false
            logger.warn("pub/sub connection lost; sockets will be told to resync", ["error": .string(error.message)])
        }
        subscriber.start()
        self.subscriber = subscriber
        if let gatewayChannel { subscribeGatewayChannel(gatewayChannel) }
    }

    /// Routes the payloads of the gateway's own channel to `handler`, subscribing it now (or as soon
    /// as the connection is up) and again after every reconnect.
    func listen(gatewayChannel channel: String, _ handler: @escaping @LoopActor ([UInt8]) -> Void) {
        gatewayChannel = channel
        gatewayHandler = handler
        if subscriber != nil { subscribeGatewayChannel(channel) }
    }

    private func subscribeGatewayChannel(_ channel: String) {
        guard let subscriber else { return }
        Task { @LoopActor [weak self] in
            do throws(RedisError) {
                try await subscriber.subscribe(channel)
                self?.gatewayChannelReady = true
            } catch {
                // Kept as a wish: the subscriber subscribes it on (re)connection, then onResubscribed runs.
            }
        }
    }

    func close() { subscriber?.close() }

    /// Distinct users with a local socket.
    var userCount: Int { socketsByUser.count }

    /// Adds a socket and returns once the user's channel is subscribed, so nothing published after
    /// this returns can be missed. On failure the socket is not registered.
    func register(_ session: SocketSession, userID: Int64) async throws(RedisError) {
        socketsByUser[userID, default: [:]][ObjectIdentifier(session)] = session
        guard let subscriber else { throw .unavailable }
        do {
            // Cheap when the channel is already subscribed: no round trip is made.
            try await subscriber.subscribe(Self.channel(for: userID))
        } catch {
            unregister(session, userID: userID)
            throw error
        }
    }

    /// Removes a socket; the last one of a user drops the subscription.
    func unregister(_ session: SocketSession, userID: Int64) {
        guard var sockets = socketsByUser[userID], sockets.removeValue(forKey: ObjectIdentifier(session)) != nil else { return }
        if sockets.isEmpty {
            socketsByUser[userID] = nil
            guard let subscriber else { return }
            Task { @LoopActor in await subscriber.unsubscribe(Self.channel(for: userID)) }
        } else {
            socketsByUser[userID] = sockets
        }
    }

    /// Local sockets of a user (for tests and diagnostics).
    func sockets(of userID: Int64) -> [SocketSession] { socketsByUser[userID].map { Array($0.values) } ?? [] }

    /// A published event: `{"event": "<name>", "data": <any>}` → `42["<name>", <data>]` to every
    /// local socket of the user; a control message (`{"control": ...}`) goes to `onControl`.
    /// Malformed payloads are logged and dropped.
    private func route(channel: String, payload: [UInt8]) {
        if channel == gatewayChannel {
            gatewayHandler?(payload)
            return
        }
        guard channel.hasPrefix(Self.channelPrefix), let userID = Int64(channel.dropFirst(Self.channelPrefix.count)),
              let sockets = socketsByUser[userID], !sockets.isEmpty else { return }
        switch Self.published(payload) {
        case .event(let event, let frame)?:
            for session in sockets.values { session.sendPublished(frame) }
            GatewayMetrics.publishedEventsDelivered.increment(GatewayMetrics.publishedLabel(event), by: Double(sockets.count))
        case .control(let control)?:
            onControl?(Array(sockets.values), control)
        case nil:
            logger.warn("dropped a malformed published event", ["channel": .string(channel), "bytes": .int(Int64(payload.count))])
        }
    }

    /// What a user channel carries.
    enum Published {
        /// An event for the user's sockets: its name (for metrics) and its WebSocket frame.
        case event(String, [UInt8])
        case control(UserChannelControl)
    }

    /// The WebSocket frame for a published event, or nil if the payload is not `{"event", "data"}`.
    nonisolated static func eventFrame(_ payload: [UInt8]) -> [UInt8]? {
        publishedEvent(payload)?.frame
    }

    /// The event name (for metrics) and the frame of a published event; nil as for `eventFrame`.
    nonisolated static func publishedEvent(_ payload: [UInt8]) -> (event: String, frame: [UInt8])? {
        guard case .event(let event, let frame)? = published(payload) else { return nil }
        return (event, frame)
    }

    /// A user channel's payload, parsed once; nil when it is neither an event nor a known control.
    nonisolated static func published(_ payload: [UInt8]) -> Published? {
        guard case .object(let object)? = try? JSONParser.parse(payload) else { return nil }
        // A name Socket.IO reserves (`disconnect`, ...) would make a frame clients refuse: malformed.
        if case .string(let event)? = object["event"], !event.isEmpty, !SocketIOPacket.reservedEventNames.contains(event) {
            let data = object["data"] ?? .null
            return .event(event, SocketSession.frame(for: .event(event, [data])))
        }
        return UserChannelControl.parse(object).map { .control($0) }
    }
}
