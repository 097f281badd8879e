import Shared

/// Which local sockets belong to which user, and the Redis subscription that feeds them.
///
/// A gateway subscribes to `chat:user:{id}` when the user's first local socket connects and
/// unsubscribes after the last one leaves, so its subscription count equals its number of distinct
/// connected users. Every event published there is encoded once and written to each local socket.
///
/// The same connection carries the gateway's own channel `chat:gw:{gatewayId}` (workers' replies to
/// commands), subscribed for the process's lifetime and handed to its handler (so is the polling relay's
/// channel `chat:relay:{token}`), and the room
/// channels `chat:room:{id}` (issue 13): a room's channel is subscribed while a member of it has a
/// local socket. A user's rooms are loaded when its first socket connects (before the CONNECT is
/// answered, so "subscribe before sync" holds for rooms too) and follow the membership events on
/// its channel: `roomJoined` subscribes the room before the event is written to the sockets (the
/// client then syncs the room), `roomLeft` stops the room's events for the user at once. Payloads
/// are handled strictly in arrival order, the ones after a `roomJoined` waiting for its subscription.
@LoopActor
final class UserChannels {
    private var socketsByUser: [Int64: [ObjectIdentifier: SocketSession]] = [:]
    /// Rooms of each user with a local socket, and local members of each room.
    private var roomsByUser: [Int64: Set<Int64>] = [:]
    private var usersByRoom: [Int64: Set<Int64>] = [:]
    /// Room loads in flight, per user (a second socket of the user waits for the first's load).
    private var roomLoads: [Int64: Task<Void, any Error>] = [:]
    /// The rooms of these users (room ids per user), from Postgres; set by the composition root.
    var loadRooms: (@LoopActor ([Int64]) async throws -> [Int64: [Int64]])?
    /// Users whose rooms the next query reads, and who waits for them: the connects of a burst
    /// share one query (one in flight at a time), so a connect storm does not exhaust the pool.
    private var roomLoadQueue: [Int64: [CheckedContinuation<[Int64], any Error>]] = [:]
    private var roomLoadRunning = false
    /// Rooms a user left while its room list was being read: that (older) read must not add them back.
    private var leftWhileLoading: [Int64: Set<Int64>] = [:]
    /// Presence subscriptions (issue 13): the sockets watching each user, the users each watches.
    private var watchersByUser: [Int64: [ObjectIdentifier: SocketSession]] = [:]
    private var watchedBySocket: [ObjectIdentifier: Set<Int64>] = [:]
    /// Payloads waiting while a membership change's subscription is in flight, in arrival order.
    private var routeQueue: [(channel: String, payload: [UInt8])] = []
    private var routeHead = 0
    private var routing = false
    private var subscriber: RedisSubscriber?
    private let logger: Logger
    /// The gateway's own channels (command replies, polling relay) and their handlers.
    private var ownChannels: [String: @LoopActor ([UInt8]) -> Void] = [:]
    /// The command reply channel, whose subscription `gatewayChannelReady` reports.
    private var gatewayChannel: String?
    /// Whether the gateway channel is subscribed right now, i.e. replies can arrive.
    private(set) var gatewayChannelReady = false
    /// The delivery acks of room messages (issue 13), set by the composition root.
    var deliveryAcks: DeliveryAcks?
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
        subscriber.logger = logger
        subscriber.onResubscribed = { [weak self] in
            // Every wanted channel, the gateway's included, is subscribed again.
            if self?.gatewayChannel != nil { self?.gatewayChannelReady = true }
            // Membership events may have been lost meanwhile: the local users' rooms are read again
            // before the clients are told to resync.
            Task.onLoop {
                await self?.reloadRooms()
                onResubscribed()
            }
        }
        subscriber.onDisconnected = { [weak self, logger] error in
            self?.gatewayChannelReady = false
            logger.warn("pub/sub connection lost; sockets will be told to resync", ["error": .string(error.message)])
        }
        subscriber.start()
        self.subscriber = subscriber
        for channel in ownChannels.keys { subscribeOwnChannel(channel) }
    }

    /// Routes the payloads of the gateway's own channel to `handler`, subscribing it now (or as soon
    /// as the connection is up) and again after every reconnect.
    func listen(gatewayChannel channel: String, _ handler: @escaping @LoopActor ([UInt8]) -> Void) {
        gatewayChannel = channel
        listen(ownChannel: channel, handler)
    }

    /// Routes the payloads of another channel of this gateway alone (the polling relay's) to
    /// `handler`, subscribed for the process's lifetime like the reply channel.
    func listen(ownChannel channel: String, _ handler: @escaping @LoopActor ([UInt8]) -> Void) {
        ownChannels[channel] = handler
        if subscriber != nil { subscribeOwnChannel(channel) }
    }

    private func subscribeOwnChannel(_ channel: String) {
        guard let subscriber else { return }
        Task.onLoop { [weak self] in
            do throws(RedisError) {
                try await subscriber.subscribe(channel)
                if channel == self?.gatewayChannel { self?.gatewayChannelReady = true }
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

    /// Removes a socket; the last one of a user drops the subscription (and its rooms').
    func unregister(_ session: SocketSession, userID: Int64) {
        unwatch(session)
        guard var sockets = socketsByUser[userID], sockets.removeValue(forKey: ObjectIdentifier(session)) != nil else { return }
        if sockets.isEmpty {
            socketsByUser[userID] = nil
            roomLoads[userID] = nil
            let emptied = (roomsByUser.removeValue(forKey: userID) ?? []).filter { removeLocalMember(userID, from: $0) }
            guard let subscriber else { return }
            Task.onLoop {
                await subscriber.unsubscribe(Self.channel(for: userID))
                if !emptied.isEmpty { await subscriber.unsubscribe(emptied.map(ChatChannels.room)) }
            }
        } else {
            socketsByUser[userID] = sockets
        }
    }

    // MARK: Presence subscriptions

    /// Makes `session` hear the presence changes of exactly `users` (replacing what it watched),
    /// returning once the new channels are subscribed, so a change after this is not missed.
    func watch(_ users: Set<Int64>, for session: SocketSession) async throws(RedisError) {
        let id = ObjectIdentifier(session)
        let before = watchedBySocket[id] ?? []
        var dropped: [String] = []
        for user in before.subtracting(users) where removeWatcher(id, of: user) { dropped.append(ChatChannels.presence(user)) }
        var fresh: [String] = []
        for user in users.subtracting(before) {
            if watchersByUser[user] == nil { fresh.append(ChatChannels.presence(user)) }
            watchersByUser[user, default: [:]][id] = session
        }
        watchedBySocket[id] = users.isEmpty ? nil : users
        guard let subscriber else { throw .unavailable }
        if !dropped.isEmpty { Task.onLoop { await subscriber.unsubscribe(dropped) } }
        if !fresh.isEmpty { try await subscriber.subscribe(fresh) }
    }

    private func unwatch(_ session: SocketSession) {
        let id = ObjectIdentifier(session)
        guard let users = watchedBySocket.removeValue(forKey: id) else { return }
        let dropped = users.filter { removeWatcher(id, of: $0) }.map(ChatChannels.presence)
        if !dropped.isEmpty, let subscriber { Task.onLoop { await subscriber.unsubscribe(dropped) } }
    }

    /// Drops one watcher of `user`; true when nobody here watches the user any more.
    private func removeWatcher(_ id: ObjectIdentifier, of user: Int64) -> Bool {
        guard var watchers = watchersByUser[user] else { return false }
        watchers[id] = nil
        watchersByUser[user] = watchers.isEmpty ? nil : watchers
        return watchers.isEmpty
    }

    // MARK: Rooms

    /// Loads the rooms of a registered user (once, whatever its number of sockets) and subscribes
    /// their channels; returns when they are subscribed. Throws when Postgres or Redis fails.
    func registerRooms(of userID: Int64) async throws {
        guard loadRooms != nil else { return }
        if let load = roomLoads[userID] { return try await load.value }
        leftWhileLoading[userID] = []
        let load = Task.onLoop {
            let loaded = try await self.queuedRoomLoad(userID)
            let left = self.leftWhileLoading.removeValue(forKey: userID) ?? []
            try await self.addRooms(loaded.filter { !left.contains($0) }, for: userID)
        }
        roomLoads[userID] = load
        do {
            try await load.value
        } catch {
            roomLoads[userID] = nil
            leftWhileLoading[userID] = nil
            throw error
        }
    }

    /// `userID`'s rooms, read with whatever other users' reads are queued by then.
    private func queuedRoomLoad(_ userID: Int64) async throws -> [Int64] {
        try await withCheckedThrowingContinuation { continuation in
            roomLoadQueue[userID, default: []].append(continuation)
            guard !roomLoadRunning else { return }
            roomLoadRunning = true
            Task.onLoop { await self.runRoomLoads() }
        }
    }

    /// One query per round for every user queued since the last, until none is left.
    private func runRoomLoads() async {
        while !roomLoadQueue.isEmpty, let loadRooms {
            let waiters = roomLoadQueue
            roomLoadQueue = [:]
            do {
                let rooms = try await loadRooms(Array(waiters.keys))
                for (user, continuations) in waiters { for continuation in continuations { continuation.resume(returning: rooms[user] ?? []) } }
            } catch {
                for continuations in waiters.values { for continuation in continuations { continuation.resume(throwing: error) } }
            }
        }
        roomLoadRunning = false
    }

    /// The rooms of `userID` known here (tests and diagnostics).
    func rooms(of userID: Int64) -> Set<Int64> { roomsByUser[userID] ?? [] }

    private func addRooms(_ rooms: [Int64], for userID: Int64) async throws(RedisError) {
        guard socketsByUser[userID] != nil else { return }
        var fresh: [String] = []
        for room in rooms where roomsByUser[userID, default: []].insert(room).inserted {
            if usersByRoom[room, default: []].isEmpty { fresh.append(ChatChannels.room(room)) }
            usersByRoom[room, default: []].insert(userID)
        }
        guard !fresh.isEmpty else { return }
        guard let subscriber else { throw .unavailable }
        try await subscriber.subscribe(fresh)
    }

    /// Drops `userID` from `room`'s local members; true when the room has none left here.
    private func removeLocalMember(_ userID: Int64, from room: Int64) -> Bool {
        guard var users = usersByRoom[room] else { return false }
        users.remove(userID)
        usersByRoom[room] = users.isEmpty ? nil : users
        return users.isEmpty
    }

    /// `userID` left `room` (or the room is gone): its events stop for the user here at once.
    private func leave(_ room: Int64, userID: Int64) {
        guard roomsByUser[userID]?.remove(room) != nil else { return }
        if removeLocalMember(userID, from: room), let subscriber {
            Task.onLoop { await subscriber.unsubscribe(ChatChannels.room(room)) }
        }
    }

    /// Reads the rooms of every local user again and subscribes or drops channels to match.
    private func reloadRooms() async {
        guard let loadRooms, !socketsByUser.isEmpty else { return }
        let users = Array(socketsByUser.keys)
        guard let rooms = try? await loadRooms(users) else {
            logger.warn("cannot read the local users' rooms after a reconnect; room events may be missed until they reconnect")
            return
        }
        for user in users {
            let wanted = Set(rooms[user] ?? [])
            for room in (roomsByUser[user] ?? []).subtracting(wanted) { leave(room, userID: user) }
            try? await addRooms(Array(wanted), for: user)
        }
    }

    /// Local sockets of a user (for tests and diagnostics).
    func sockets(of userID: Int64) -> [SocketSession] { socketsByUser[userID].map { Array($0.values) } ?? [] }

    /// Handles a payload at once, unless an earlier `roomJoined` still waits for its room's
    /// subscription: then it queues behind it, so payloads are handled in arrival order.
    private func route(channel: String, payload: [UInt8]) {
        if routing {
            routeQueue.append((channel, payload))
            return
        }
        guard let wait = routeNow(channel: channel, payload: payload) else { return }
        routing = true
        Task.onLoop {
            await wait()
            await self.drainRoutes()
        }
    }

    private func drainRoutes() async {
        while routeHead < routeQueue.count {
            let (channel, payload) = routeQueue[routeHead]
            routeHead += 1
            if let wait = routeNow(channel: channel, payload: payload) { await wait() }
        }
        routeQueue.removeAll(keepingCapacity: true)
        routeHead = 0
        routing = false
    }

    /// A published event: `{"event": "<name>", "data": <any>}` → `42["<name>", <data>]` to every
    /// local socket of the user (of every local member but `except`, on a room channel); a control
    /// message (`{"control": ...}`) goes to `onControl`. Malformed payloads are logged and dropped.
    /// Returns the work to await before the next payload: a `roomJoined` whose room must be
    /// subscribed here first (its frame is written after).
    private func routeNow(channel: String, payload: [UInt8]) -> (@LoopActor () async -> Void)? {
        if let handler = ownChannels[channel] {
            handler(payload)
            return nil
        }
        if channel.hasPrefix(ChatChannels.presencePrefix) {
            if let user = Int64(channel.dropFirst(ChatChannels.presencePrefix.count)), let watchers = watchersByUser[user],
               case .event(let publication)? = Self.published(payload) {
                for session in watchers.values { session.sendPublished(publication) }
                GatewayMetrics.publishedEventsDelivered.increment(GatewayMetrics.publishedLabel(publication.event), by: Double(watchers.count))
            }
            return nil
        }
        if channel.hasPrefix(ChatChannels.roomPrefix) {
            if let room = Int64(channel.dropFirst(ChatChannels.roomPrefix.count)) { routeRoom(room, payload: payload) }
            return nil
        }
        guard channel.hasPrefix(Self.channelPrefix), let userID = Int64(channel.dropFirst(Self.channelPrefix.count)),
              socketsByUser[userID]?.isEmpty == false else { return nil }
        switch Self.published(payload) {
        case .event(let publication)?:
            let event = publication.event
            let deliver: @LoopActor () -> Void = { [weak self] in
                guard let sockets = self?.socketsByUser[userID] else { return }
                for session in sockets.values { session.sendPublished(publication) }
                GatewayMetrics.publishedEventsDelivered.increment(GatewayMetrics.publishedLabel(event), by: Double(sockets.count))
            }
            if event == SocketEvent.roomJoined.name || event == SocketEvent.roomLeft.name, let room = Self.roomOfMembershipEvent(payload) {
                if event == SocketEvent.roomLeft.name {
                    leftWhileLoading[userID]?.insert(room)
                    leave(room, userID: userID)
                } else if usersByRoom[room]?.isEmpty == false {
                    roomsByUser[userID, default: []].insert(room)
                    usersByRoom[room, default: []].insert(userID)
                } else {
                    return { [weak self] in
                        do {
                            try await self?.addRooms([room], for: userID)
                        } catch {
                            self?.logger.warn("cannot subscribe a joined room's channel", ["room": .int(room), "error": .string(String(describing: error))])
                        }
                        deliver()
                    }
                }
            }
            deliver()
        case .control(let control)?:
            if let sockets = socketsByUser[userID] { onControl?(Array(sockets.values), control) }
        case nil:
            logger.warn("dropped a malformed published event", ["channel": .string(channel), "bytes": .int(Int64(payload.count))])
        }
        return nil
    }

    /// A room channel's event to the local members but `except`; a `roomLeft` (the room was
    /// deleted) also ends the room here.
    private func routeRoom(_ room: Int64, payload: [UInt8]) {
        guard let members = usersByRoom[room], case .object(let object)? = try? JSONParser.parse(payload),
              case .string(let event)? = object["event"], !event.isEmpty, !SocketIOPacket.reservedEventNames.contains(event) else { return }
        let except = object["except"]?.int64Value
        let data = object["data"] ?? .null
        // A message's frame asks for an ack: the device's ack confirms its delivery.
        var ackID: Int64?
        if event == SocketEvent.receiveMessage.name, let deliveryAcks, let id = data["id"]?.int64Value, let seq = data["seq"]?.int64Value {
            ackID = deliveryAcks.ackID(messageID: id, room: room, seq: seq)
        }
        let publication = Publication(event: event, data: data, ackID: ackID, mark: DeliveryMark.of(event: event, data: data))
        var delivered = 0
        for user in members where user != except {
            for session in socketsByUser[user]?.values ?? [:].values {
                session.sendPublished(publication)
                delivered += 1
            }
        }
        GatewayMetrics.publishedEventsDelivered.increment(GatewayMetrics.publishedLabel(event), by: Double(delivered))
        if event == SocketEvent.roomLeft.name {
            for user in members { leave(room, userID: user) }
        }
    }

    /// The room a `roomJoined` (`data.id`) or `roomLeft` (`data.roomId`) names.
    nonisolated static func roomOfMembershipEvent(_ payload: [UInt8]) -> Int64? {
        guard let json = try? JSONParser.parse(payload), let data = json["data"] else { return nil }
        return data["roomId"]?.int64Value ?? data["id"]?.int64Value
    }

    /// What a user channel carries.
    enum Published {
        /// An event for the user's sockets: its name, data, frames, and its mark when it is a
        /// message or a change (recovery offsets).
        case event(Publication)
        case control(UserChannelControl)
    }

    /// The WebSocket frame for a published event, or nil if the payload is not `{"event", "data"}`.
    nonisolated static func eventFrame(_ payload: [UInt8]) -> [UInt8]? {
        publishedEvent(payload)?.frame
    }

    /// The event name (for metrics) and the frame of a published event; nil as for `eventFrame`.
    nonisolated static func publishedEvent(_ payload: [UInt8]) -> (event: String, frame: [UInt8])? {
        guard case .event(let publication)? = published(payload) else { return nil }
        return (publication.event, publication.frame)
    }

    /// A user channel's payload, parsed once; nil when it is neither an event nor a known control.
    nonisolated static func published(_ payload: [UInt8]) -> Published? {
        guard case .object(let object)? = try? JSONParser.parse(payload) else { return nil }
        // A name Socket.IO reserves (`disconnect`, ...) would make a frame clients refuse: malformed.
        if case .string(let event)? = object["event"], !event.isEmpty, !SocketIOPacket.reservedEventNames.contains(event) {
            let data = object["data"] ?? .null
            return .event(Publication(event: event, data: data, mark: DeliveryMark.of(event: event, data: data)))
        }
        return UserChannelControl.parse(object).map { .control($0) }
    }
}
