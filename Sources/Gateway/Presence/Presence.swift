import Shared

/// Presence as the rest of the gateway sees it: sockets come and go here; the registry decides
/// transitions for the whole cluster; this class tells the user's contacts (`userOnline`,
/// `userOffline` on their user channels, so every device on every gateway gets them) and persists
/// `last_seen_at`. Nobody else hears about a user: events go to contacts only, never broadcast.
@LoopActor
final class Presence {
    let registry: PresenceRegistry
    let directory: ContactDirectory
    private let redis: RedisClient
    private let logger: Logger

    init(registry: PresenceRegistry, directory: ContactDirectory, redis: RedisClient, logger: Logger) {
        self.registry = registry
        self.directory = directory
        self.redis = redis
        self.logger = logger
        registry.onChange = { [unowned self] change in
            self.registry.track { await self.announce(change) }
        }
    }

    /// A socket of `userID` completed CONNECT: counts it, then sends it `onlineUsers` (its online
    /// contacts). Its user channel is already subscribed, so a change after this snapshot arrives
    /// as an event.
    ///
    /// The sockets of one user that connect while a read of its contacts is running share the
    /// next read (which starts after each of them was registered, so none gets a snapshot older
    /// than its subscription): a reconnect storm of 5,000 sockets of 50 users costs a few reads
    /// per user instead of 5,000 that would exhaust the pool and starve the connects' own queries.
    func socketConnected(_ session: SocketSession, userID: Int64) {
        registry.add(userID)
        contactReads[userID, default: ContactRead()].next.append(session)
        guard contactReads[userID]?.running == false else { return }
        contactReads[userID]?.running = true
        Task.onLoop {
            while let sessions = self.contactReads[userID]?.next, !sessions.isEmpty {
                self.contactReads[userID]?.next = []
                let list = await self.onlineContacts(of: userID)
                if let list { for session in sessions { session.emit(.onlineUsers, list) } }
            }
            self.contactReads[userID] = nil
        }
    }

    /// Per user: whether a read of its online contacts runs, and the sockets waiting for the next.
    private struct ContactRead {
        var running = false
        var next: [SocketSession] = []
    }

    private var contactReads: [Int64: ContactRead] = [:]

    /// A connected socket of `userID` closed.
    func socketClosed(userID: Int64) {
        registry.remove(userID)
    }

    /// `[{userId, username}]` of the user's online contacts; nil if the database cannot say.
    func onlineContacts(of userID: Int64) async -> JSONValue? {
        do {
            let online = try await registry.onlineContacts(of: userID, in: directory)
            return .array(online.map { ["userId": .int($0.id), "username": .string($0.username)] })
        } catch {
            logger.warn("presence: cannot read contacts", ["userId": .int(userID), "error": .string(String(describing: error))])
            return nil
        }
    }

    // MARK: Announcing

    /// `PUBLISH chat:presence:watch:<user> {"event", "data"}`.
    private static func watchCommand(_ userID: Int64, _ event: SocketEvent, _ data: JSONValue) -> RedisCommand {
        .publish(ChatChannels.presence(userID), payload: JSONValue.object(["event": .string(event.name), "data": data]).serialized())
    }

    private func announce(_ change: PresenceChange) async {
        var events: [ChatEvent] = []
        // Once more on the user's presence channel, for the sockets that subscribed to it.
        var watched: [RedisCommand] = []
        do {
            switch change {
            case .online(let userID):
                guard let (user, contacts) = try await directory.contacts(of: userID) else { return }
                let data: JSONValue = ["userId": .int(user.id), "username": .string(user.username)]
                events = contacts.map { ChatEvent(userID: $0.id, event: .userOnline, data: data) }
                watched.append(Self.watchCommand(user.id, .userOnline, data))
            case .offline(let users):
                for (user, contacts) in try await directory.recordLastSeen(users.map { ($0.userID, $0.lastSeenMilliseconds) }) {
                    let lastSeen = user.lastSeenMilliseconds.map { JSONValue.string(ISO8601.format(millisecondsSinceEpoch: $0)) } ?? .null
                    let data: JSONValue = ["userId": .int(user.id), "username": .string(user.username), "lastSeen": lastSeen]
                    events += contacts.map { ChatEvent(userID: $0, event: .userOffline, data: data) }
                    watched.append(Self.watchCommand(user.id, .userOffline, data))
                }
            }
        } catch {
            // Without the database there is no contact list: the state in Redis is right, only
            // this notification is lost (clients re-read presence with onlineUsers on reconnect).
            logger.warn("presence: cannot announce a change", ["change": .string(String(describing: change)), "error": .string(String(describing: error))])
            return
        }
        guard !events.isEmpty || !watched.isEmpty else { return }
        do throws(RedisError) {
            _ = try await redis.pipeline(events.map(\.publishCommand) + watched)
        } catch {
            logger.warn("presence: cannot publish a change", ["events": .int(Int64(events.count)), "error": .string(error.description)])
        }
    }
}
