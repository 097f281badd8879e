import Shared

/// What the registry saw change in the cluster-wide state of users.
enum PresenceChange: Sendable, Equatable {
    /// The user's first connection anywhere opened.
    case online(userID: Int64)
    /// The users' last connections everywhere closed (or their gateway died), with the time.
    case offline([OfflineUser])

    struct OfflineUser: Sendable, Equatable {
        let userID: Int64
        let lastSeenMilliseconds: Int64
    }
}

/// This gateway's part of the presence registry in Redis (layout and scripts: `PresenceScripts`).
///
/// It writes its absolute connection count per user (so writes are idempotent and a failed one is
/// simply written again), renews its liveness key, sweeps the users of dead gateways, and reports
/// every online/offline transition the scripts decide to `onChange`, exactly once per transition.
///
/// If a renewal finds the liveness key gone (Redis lost it, or this process stalled longer than
/// the TTL), other gateways may already be sweeping its users: it re-registers under a new
/// instance name and writes every local count again, so nothing it holds stays offline.
@LoopActor
final class PresenceRegistry: PresenceLookup {
    private let redis: RedisClient
    private let configuration: PresenceConfiguration
    private let gatewayID: String
    private let logger: Logger
    /// The name this process's counts are stored under: the gateway id and a random suffix, so a
    /// restarted gateway with the same id never revives the counts of its previous life.
    private(set) var instance: String
    /// Local connections per user: the truth this instance writes.
    private var localCounts: [Int64: Int] = [:]
    /// Users whose count is being written; a change meanwhile is written when that write returns.
    private var writing: Set<Int64> = []
    /// Users whose last write failed (retried on every heartbeat).
    private var dirty: Set<Int64> = []
    private var heartbeatTimer: TimerHandle?
    private var sweepTimer: TimerHandle?
    private var registered = false
    private var stopped = false
    private var inFlight = 0
    private var idleWaiters: [@LoopActor () -> Void] = []

    /// Transitions to announce (to the users' contacts).
    var onChange: (@LoopActor (PresenceChange) -> Void)?

    /// Users visited per sweep script call (bounds the time Redis spends in one call).
    static let sweepBatch = 1_000
    /// Keys per `online` script call.
    static let lookupBatch = 1_000

    init(redis: RedisClient, configuration: PresenceConfiguration, gatewayID: String, logger: Logger) {
        self.redis = redis
        self.configuration = configuration
        self.gatewayID = gatewayID
        self.logger = logger
        instance = Self.newInstance(gatewayID)
    }

    private static func newInstance(_ gatewayID: String) -> String {
        gatewayID + "." + SecureRandom.token(byteCount: 6)
    }

    /// Registers the instance (retried by the heartbeat if Redis is not there yet) and starts the
    /// heartbeat and sweep timers.
    func start() {
        track {
            // The client connects in the background; registering before it is up would only fail.
            _ = await self.redis.waitUntilConnected(timeout: .seconds(5))
            await self.register()
        }
        scheduleHeartbeat()
        scheduleSweep()
    }

    // MARK: Counts

    /// A socket of `userID` is connected here.
    func add(_ userID: Int64) {
        localCounts[userID, default: 0] += 1
        write(userID)
    }

    /// A socket of `userID` closed here.
    func remove(_ userID: Int64) {
        guard let count = localCounts[userID] else { return }
        localCounts[userID] = count > 1 ? count - 1 : nil
        write(userID)
    }

    /// Local connection count of a user (tests, diagnostics).
    func localCount(_ userID: Int64) -> Int { localCounts[userID] ?? 0 }

    private func write(_ userID: Int64) {
        guard !writing.contains(userID), !stopped || localCounts[userID] == nil else { return }
        writing.insert(userID)
        let count = localCounts[userID] ?? 0
        let instance = self.instance
        track {
            var failed = false
            do throws(RedisError) {
                let reply = try await self.redis.evaluate(
                    PresenceScripts.setCount, keys: [PresenceScripts.userKey(userID), PresenceScripts.usersKey(instance)],
                    arguments: [instance, String(count), String(userID)])
                self.dirty.remove(userID)
                if let values = reply.array, values.count == 2, let change = values[0].int, let now = values[1].int {
                    switch change {
                    case 1: self.onChange?(.online(userID: userID))
                    case -1: self.onChange?(.offline([.init(userID: userID, lastSeenMilliseconds: now)]))
                    default: break
                    }
                }
            } catch {
                failed = true
                self.dirty.insert(userID)
            }
            self.writing.remove(userID)
            // Changed while in flight, or the instance was renamed: write the current state.
            if !failed, (self.localCounts[userID] ?? 0) != count || self.instance != instance { self.write(userID) }
        }
    }

    // MARK: Heartbeat

    private func register() async {
        do throws(RedisError) {
            _ = try await redis.evaluate(PresenceScripts.heartbeat, keys: [PresenceScripts.aliveKey(instance), PresenceScripts.gatewaysKey],
                                         arguments: [instance, String(configuration.ttl.wholeMilliseconds), "create"])
            registered = true
            // Counts written before the key existed were invisible to other gateways (one of them
            // may have announced a user offline meanwhile): write them again, now visible.
            for userID in localCounts.keys { write(userID) }
        } catch {
            logger.warn("presence: cannot register this gateway yet; retrying", ["error": .string(error.description)])
        }
    }

    private func scheduleHeartbeat() {
        heartbeatTimer = EventLoop.shared.schedule(after: configuration.heartbeatInterval) { [weak self] in
            guard let self, !self.stopped else { return }
            self.track { await self.heartbeat() }
            self.scheduleHeartbeat()
        }
    }

    private func heartbeat() async {
        guard registered else { return await register() }
        do throws(RedisError) {
            let renewed = try await redis.evaluate(PresenceScripts.heartbeat, keys: [PresenceScripts.aliveKey(instance), PresenceScripts.gatewaysKey],
                                                   arguments: [instance, String(configuration.ttl.wholeMilliseconds), "renew"])
            if renewed.int == 0 {
                let old = instance
                instance = Self.newInstance(gatewayID)
                logger.warn("presence: this gateway's liveness key had expired; re-registering its users under a new name",
                            ["old": .string(old), "new": .string(instance), "users": .int(Int64(localCounts.count))])
                registered = false
                await register()  // rewrites every local count under the new name
            }
        } catch {
            return  // Redis is away; the next beat tries again (and finds out if the key lapsed).
        }
        for userID in dirty { write(userID) }
    }

    // MARK: Sweep

    private func scheduleSweep() {
        sweepTimer = EventLoop.shared.schedule(after: configuration.sweepInterval) { [weak self] in
            guard let self, !self.stopped else { return }
            self.track { await self.sweep() }
            self.scheduleSweep()
        }
    }

    /// Announces the users of dead instances offline; continues while a call used its whole budget.
    func sweep() async {
        for _ in 0..<100 {
            let reply: RedisValue
            do throws(RedisError) {
                reply = try await redis.evaluate(PresenceScripts.sweep, keys: [PresenceScripts.gatewaysKey],
                                                 arguments: [instance, String(Self.sweepBatch), String(configuration.ttl.wholeMilliseconds)])
            } catch {
                return
            }
            guard let values = reply.array, let visited = values.first?.int else { return }
            var offline: [PresenceChange.OfflineUser] = []
            var index = 1
            while index + 1 < values.count {
                if let userID = values[index].string.flatMap({ Int64($0) }), let last = values[index + 1].string.flatMap({ Int64($0) }) {
                    offline.append(.init(userID: userID, lastSeenMilliseconds: last))
                }
                index += 2
            }
            if !offline.isEmpty {
                logger.info("presence: users of a dead gateway are offline", ["users": .int(Int64(offline.count))])
                onChange?(.offline(offline))
            }
            if visited < Int64(Self.sweepBatch) { return }
        }
    }

    // MARK: PresenceLookup

    func onlineUsers(among userIDs: [Int64]) async -> Set<Int64> {
        var online = Set<Int64>()
        var start = 0
        while start < userIDs.count {
            let chunk = Array(userIDs[start..<min(userIDs.count, start + Self.lookupBatch)])
            start += chunk.count
            guard let reply = try? await redis.evaluate(PresenceScripts.online, keys: chunk.map(PresenceScripts.userKey),
                                                        arguments: [instance]),
                  let flags = reply.array, flags.count == chunk.count else { continue }
            for (userID, flag) in zip(chunk, flags) where flag.int == 1 { online.insert(userID) }
        }
        return online
    }

    // MARK: Stopping

    /// After the sockets are gone: waits for outstanding writes (and the announcements they
    /// trigger, which the caller tracks with `track`), then removes the liveness key, so the
    /// cluster needs no sweep for a graceful stop. `completion` runs within `grace`.
    func stop(grace: Duration, completion: @escaping @LoopActor () -> Void) {
        stopped = true
        if let heartbeatTimer { EventLoop.shared.cancel(heartbeatTimer) }
        if let sweepTimer { EventLoop.shared.cancel(sweepTimer) }
        var finished = false
        let finish: @LoopActor () -> Void = {
            guard !finished else { return }
            finished = true
            completion()
        }
        EventLoop.shared.schedule(after: grace) { finish() }
        whenIdle { [self] in
            Task.onLoop {
                let instance = self.instance
                _ = try? await self.redis.evaluate(PresenceScripts.unregister, keys: [
                    PresenceScripts.aliveKey(instance), PresenceScripts.gatewaysKey, PresenceScripts.usersKey(instance),
                ], arguments: [instance])
                finish()
            }
        }
    }

    /// Runs `work` as a task the stop waits for.
    func track(_ work: @escaping @LoopActor () async -> Void) {
        inFlight += 1
        Task.onLoop {
            await work()
            self.inFlight -= 1
            if self.inFlight == 0 {
                let waiters = self.idleWaiters
                self.idleWaiters = []
                for waiter in waiters { waiter() }
            }
        }
    }

    private func whenIdle(_ body: @escaping @LoopActor () -> Void) {
        if inFlight == 0 { body() } else { idleWaiters.append(body) }
    }
}
