import Glibc
import Testing
@testable import Gateway
@testable import Shared

/// The presence Lua scripts and `PresenceRegistry` against a real Redis (`TEST_REDIS_URL`).
///
/// A sweep takes apart *every* dead instance it finds, so these tests use a Redis database of
/// their own (not the one in the URL, where gateways of end-to-end runs may be waiting for their
/// own sweeps). Users are 9_000_000_000 + random, instances carry a random suffix, and every test
/// deletes what it wrote.
@Suite(.serialized) struct PresenceScriptsTests {
    init() { EventLoop.shared.startInBackground() }

    // MARK: Scripts

    @Test @LoopActor func countsAnnounceTheFirstAndTheLastConnectionOnly() async throws {
        let redis = try await PresenceRedis.connect()
        defer { redis.client.close() }
        let (a, b) = (PresenceRedis.instance("a"), PresenceRedis.instance("b"))
        let user = PresenceRedis.userID()
        #expect(try await redis.heartbeat(a, ttl: 60_000, "create") == 1)
        #expect(try await redis.heartbeat(b, ttl: 60_000, "create") == 1)

        let now = try await redis.timeMilliseconds()
        let online = try await redis.setCount(user, 1, on: a)
        #expect(online.change == 1)
        #expect(abs(online.now - now) < 5_000, "script time \(online.now) vs TIME \(now)")
        #expect(try await redis.client.send(["SISMEMBER", PresenceScripts.usersKey(a), String(user)]) == .integer(1))
        #expect(try await redis.client.send(["HGET", PresenceScripts.userKey(user), "s"]).string == "1")

        #expect(try await redis.setCount(user, 2, on: b).change == 0)
        #expect(try await redis.client.send(["HGET", PresenceScripts.userKey(user), "g:\(b)"]).string == "2")
        #expect(try await redis.setCount(user, 0, on: a).change == 0)
        #expect(try await redis.client.send(["HEXISTS", PresenceScripts.userKey(user), "g:\(a)"]) == .integer(0))
        #expect(try await redis.client.send(["SISMEMBER", PresenceScripts.usersKey(a), String(user)]) == .integer(0))
        #expect(try await redis.setCount(user, 0, on: b).change == -1)
        // Nothing left: the hash is gone.
        #expect(try await redis.client.send(["EXISTS", PresenceScripts.userKey(user)]) == .integer(0))
        #expect(try await redis.setCount(user, 0, on: b).change == 0)

        // Counts are absolute: writing the same count again changes nothing.
        #expect(try await redis.setCount(user, 3, on: a).change == 1)
        #expect(try await redis.setCount(user, 3, on: a).change == 0)
        #expect(try await redis.client.send(["HGET", PresenceScripts.userKey(user), "g:\(a)"]).string == "3")
        #expect(try await redis.setCount(user, 1, on: a).change == 0)
        #expect(try await redis.setCount(user, 0, on: a).change == -1)
        #expect(try await redis.client.send(["EXISTS", PresenceScripts.userKey(user)]) == .integer(0))

        try await redis.cleanUp(users: [user], instances: [a, b])
    }

    @Test @LoopActor func deadInstancesAreIgnoredByLookupsAndTransitions() async throws {
        let redis = try await PresenceRedis.connect()
        defer { redis.client.close() }
        let (dead, live) = (PresenceRedis.instance("dead"), PresenceRedis.instance("live"))
        let user = PresenceRedis.userID()
        #expect(try await redis.heartbeat(live, ttl: 60_000, "create") == 1)
        // Connections on an instance whose liveness key is gone.
        _ = try await redis.client.send(["HSET", PresenceScripts.userKey(user), "g:\(dead)", "2"])

        #expect(try await redis.online([user], asking: live) == [0])
        // The asking instance counts its own connections whatever its key says.
        #expect(try await redis.online([user], asking: dead) == [1])

        #expect(try await redis.setCount(user, 1, on: live).change == 1)
        #expect(try await redis.online([user], asking: live) == [1])
        // The dead instance's 2 do not keep the user online.
        #expect(try await redis.setCount(user, 0, on: live).change == -1)
        #expect(try await redis.online([user], asking: live) == [0])
        // Its count stays (for its sweep to remove), with the state announced offline.
        #expect(try await redis.client.send(["HGET", PresenceScripts.userKey(user), "s"]).string == "0")
        #expect(try await redis.client.send(["HGET", PresenceScripts.userKey(user), "g:\(dead)"]).string == "2")

        // Alive again: its connections count.
        _ = try await redis.client.send(["SET", PresenceScripts.aliveKey(dead), "1", "PX", "60000"])
        #expect(try await redis.online([user, PresenceRedis.userID()], asking: live) == [1, 0])

        try await redis.cleanUp(users: [user], instances: [dead, live])
    }

    @Test @LoopActor func heartbeatCreatesAndRenewsOnlyAnExistingKey() async throws {
        let redis = try await PresenceRedis.connect()
        defer { redis.client.close() }
        let instance = PresenceRedis.instance("beat")
        let alive = PresenceScripts.aliveKey(instance)

        #expect(try await redis.heartbeat(instance, ttl: 60_000, "renew") == 0)
        #expect(try await redis.client.send(["EXISTS", alive]) == .integer(0))
        #expect(try await redis.client.send(["ZSCORE", PresenceScripts.gatewaysKey, instance]) == .null)

        let now = try await redis.timeMilliseconds()
        #expect(try await redis.heartbeat(instance, ttl: 60_000, "create") == 1)
        let ttl = try #require(try await redis.client.send(["PTTL", alive]).int)
        #expect(ttl > 59_000 && ttl <= 60_000)
        let beat = try #require(try await redis.client.send(["ZSCORE", PresenceScripts.gatewaysKey, instance]).int)
        #expect(abs(beat - now) < 5_000)

        #expect(try await redis.heartbeat(instance, ttl: 30_000, "renew") == 1)
        let renewed = try #require(try await redis.client.send(["PTTL", alive]).int)
        #expect(renewed > 29_000 && renewed <= 30_000)

        // Lost (expired, or deleted by a graceful stop): a renewal does not bring it back.
        _ = try await redis.client.send(["DEL", alive])
        #expect(try await redis.heartbeat(instance, ttl: 30_000, "renew") == 0)
        #expect(try await redis.client.send(["EXISTS", alive]) == .integer(0))

        try await redis.cleanUp(users: [], instances: [instance])
    }

    @Test @LoopActor func sweepAnnouncesTheUsersOfADeadInstanceOnce() async throws {
        let redis = try await PresenceRedis.connect()
        defer { redis.client.close() }
        let (dead, sweeper) = (PresenceRedis.instance("dying"), PresenceRedis.instance("sweeper"))
        let user = PresenceRedis.userID()
        #expect(try await redis.heartbeat(dead, ttl: 300, "create") == 1)
        #expect(try await redis.setCount(user, 1, on: dead).change == 1)
        let lastBeat = try #require(try await redis.client.send(["ZSCORE", PresenceScripts.gatewaysKey, dead]).int)

        // Too early: the instance is alive, nothing happens.
        #expect(try await redis.sweep(by: sweeper, ttl: 300).offline.filter { $0.user == user }.isEmpty)

        await EventLoop.shared.sleep(for: .milliseconds(450))
        #expect(try await redis.client.send(["EXISTS", PresenceScripts.aliveKey(dead)]) == .integer(0))
        let sweep = try await redis.sweep(by: sweeper, ttl: 300)
        #expect(sweep.visited >= 1)
        #expect(sweep.offline.filter { $0.user == user }.map(\.lastSeen) == [lastBeat])
        #expect(try await redis.client.send(["EXISTS", PresenceScripts.userKey(user)]) == .integer(0))
        #expect(try await redis.client.send(["EXISTS", PresenceScripts.usersKey(dead)]) == .integer(0))
        #expect(try await redis.client.send(["ZSCORE", PresenceScripts.gatewaysKey, dead]) == .null)

        let again = try await redis.sweep(by: sweeper, ttl: 300)
        #expect(again.offline.filter { $0.user == user }.isEmpty)

        try await redis.cleanUp(users: [user], instances: [dead, sweeper])
    }

    @Test @LoopActor func sweepKeepsUsersConnectedElsewhereOnline() async throws {
        let redis = try await PresenceRedis.connect()
        defer { redis.client.close() }
        let (dead, live) = (PresenceRedis.instance("dying"), PresenceRedis.instance("live"))
        let user = PresenceRedis.userID()
        #expect(try await redis.heartbeat(dead, ttl: 300, "create") == 1)
        #expect(try await redis.heartbeat(live, ttl: 60_000, "create") == 1)
        #expect(try await redis.setCount(user, 1, on: dead).change == 1)
        #expect(try await redis.setCount(user, 1, on: live).change == 0)

        await EventLoop.shared.sleep(for: .milliseconds(450))
        let sweep = try await redis.sweep(by: live, ttl: 300)
        #expect(sweep.offline.filter { $0.user == user }.isEmpty)
        let fields = try await redis.client.send(["HGETALL", PresenceScripts.userKey(user)]).array?.compactMap(\.string) ?? []
        #expect(Set(fields) == ["g:\(live)", "1", "s"])
        #expect(try await redis.client.send(["HGET", PresenceScripts.userKey(user), "s"]).string == "1")
        #expect(try await redis.online([user], asking: live) == [1])
        #expect(try await redis.client.send(["ZSCORE", PresenceScripts.gatewaysKey, dead]) == .null)

        // The last connection, on the live instance, is what turns the user offline.
        #expect(try await redis.setCount(user, 0, on: live).change == -1)

        try await redis.cleanUp(users: [user], instances: [dead, live])
    }

    @Test @LoopActor func sweepVisitsAtMostItsBudgetAndContinuesNextTime() async throws {
        let redis = try await PresenceRedis.connect()
        defer { redis.client.close() }
        let (dead, sweeper) = (PresenceRedis.instance("dying"), PresenceRedis.instance("sweeper"))
        let users = (0..<3).map { _ in PresenceRedis.userID() }
        // Leftovers of earlier runs in this database would share the budget: clear them first.
        _ = try await redis.sweep(by: sweeper, ttl: 300)
        #expect(try await redis.heartbeat(dead, ttl: 300, "create") == 1)
        for user in users { #expect(try await redis.setCount(user, 1, on: dead).change == 1) }

        await EventLoop.shared.sleep(for: .milliseconds(450))
        let first = try await redis.sweep(by: sweeper, ttl: 300, budget: 2)
        #expect(first.visited == 2)
        #expect(first.offline.count == 2)
        #expect(try await redis.client.send(["ZSCORE", PresenceScripts.gatewaysKey, dead]) != .null)
        let second = try await redis.sweep(by: sweeper, ttl: 300, budget: 2)
        #expect(second.visited == 1)
        #expect(Set((first.offline + second.offline).map(\.user)) == Set(users))
        #expect(try await redis.client.send(["ZSCORE", PresenceScripts.gatewaysKey, dead]) == .null)

        try await redis.cleanUp(users: users, instances: [dead, sweeper])
    }

    // MARK: PresenceRegistry

    @Test @LoopActor func twoRegistriesAnnounceOnlineAndOfflineOnce() async throws {
        let first = try await PresenceRedis.connect()
        defer { first.client.close() }
        let second = try await PresenceRedis.connect()
        defer { second.client.close() }
        let logger = Logger(service: "presence-test", minimumLevel: .error)
        let a = PresenceRegistry(redis: first.client, configuration: PresenceConfiguration(),
                                 gatewayID: PresenceRedis.instance("gw-a"), logger: logger)
        let b = PresenceRegistry(redis: second.client, configuration: PresenceConfiguration(),
                                 gatewayID: PresenceRedis.instance("gw-b"), logger: logger)
        var changes: [String: [PresenceChange]] = [:]
        a.onChange = { changes["a", default: []].append($0) }
        b.onChange = { changes["b", default: []].append($0) }
        a.start()
        b.start()
        // Both registered, so each sees the other's counts.
        #expect(await RedisTestWaiting.eventually {
            (try? await first.client.send(["EXISTS", PresenceScripts.aliveKey(a.instance), PresenceScripts.aliveKey(b.instance)])) == .integer(2)
        })
        let user = PresenceRedis.userID()

        a.add(user)
        #expect(await RedisTestWaiting.eventually { changes["a"] == [.online(userID: user)] })
        #expect(await a.onlineUsers(among: [user, PresenceRedis.userID()]) == [user])
        b.add(user)
        a.add(user)
        #expect(a.localCount(user) == 2)
        await EventLoop.shared.sleep(for: .milliseconds(200))
        #expect(await b.onlineUsers(among: [user]) == [user])
        a.remove(user)
        a.remove(user)
        #expect(a.localCount(user) == 0)
        await EventLoop.shared.sleep(for: .milliseconds(200))
        #expect(changes["a"] == [.online(userID: user)])
        #expect(changes["b"] == nil)
        #expect(await a.onlineUsers(among: [user]) == [user])

        let before = try await first.timeMilliseconds()
        b.remove(user)
        #expect(await RedisTestWaiting.eventually { changes["b"] != nil })
        guard case .offline(let offline)? = changes["b"]?.first, offline.count == 1 else {
            Issue.record("expected one offline change, got \(changes)")
            return
        }
        #expect(offline[0].userID == user)
        #expect(offline[0].lastSeenMilliseconds >= before && offline[0].lastSeenMilliseconds < before + 5_000)
        await EventLoop.shared.sleep(for: .milliseconds(100))
        #expect(changes["a"]?.count == 1)
        #expect(changes["b"]?.count == 1)
        #expect(await b.onlineUsers(among: [user]).isEmpty)
        #expect(try await first.client.send(["EXISTS", PresenceScripts.userKey(user)]) == .integer(0))

        // A graceful stop removes the liveness key and the instance: no sweep needed.
        let instances = [a.instance, b.instance]
        var stopped = 0
        a.stop(grace: .milliseconds(2_000)) { stopped += 1 }
        b.stop(grace: .milliseconds(2_000)) { stopped += 1 }
        #expect(await RedisTestWaiting.eventually { stopped == 2 })
        for instance in instances {
            #expect(try await first.client.send(["EXISTS", PresenceScripts.aliveKey(instance)]) == .integer(0))
            #expect(try await first.client.send(["ZSCORE", PresenceScripts.gatewaysKey, instance]) == .null)
        }
        try await first.cleanUp(users: [user], instances: instances)
    }
}

/// A connection to the presence tests' database, and the scripts called the way the registry calls them.
@LoopActor
private struct PresenceRedis {
    let client: RedisClient

    struct SetupFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// `TEST_REDIS_URL` with another database (13, or 14 if the URL already names 13).
    static func configuration() throws -> RedisConfiguration {
        guard let raw = getenv("TEST_REDIS_URL"), raw.pointee != 0 else {
            throw SetupFailure(description: "TEST_REDIS_URL is not set: start a throwaway redis-server and export TEST_REDIS_URL=redis://127.0.0.1:<port>/0")
        }
        var configuration = try RedisConfiguration(url: String(cString: raw))
        configuration.database = configuration.database == 13 ? 14 : 13
        return configuration
    }

    static func connect() async throws -> PresenceRedis {
        let client = RedisClient(configuration: try configuration())
        client.start()
        guard await client.waitUntilConnected(timeout: .milliseconds(3_000)) else {
            client.close()
            throw SetupFailure(description: "cannot connect to Redis: \(client.lastFailureReason ?? "?")")
        }
        return PresenceRedis(client: client)
    }

    nonisolated static func userID() -> Int64 { 9_000_000_000 + Int64.random(in: 0..<1_000_000_000) }

    nonisolated static func instance(_ label: String) -> String { "test-\(label)-\(UInt64.random(in: 0...UInt64.max))" }

    func timeMilliseconds() async throws -> Int64 {
        let time = try await client.send(["TIME"]).array ?? []
        guard time.count == 2, let seconds = time[0].int, let micros = time[1].int else {
            throw SetupFailure(description: "unexpected TIME reply")
        }
        return seconds * 1_000 + micros / 1_000
    }

    func setCount(_ user: Int64, _ count: Int, on instance: String) async throws -> (change: Int64, now: Int64) {
        let reply = try await client.evaluate(PresenceScripts.setCount, keys: [PresenceScripts.userKey(user), PresenceScripts.usersKey(instance)],
                                              arguments: [instance, String(count), String(user)])
        guard let values = reply.array, values.count == 2, let change = values[0].int, let now = values[1].int else {
            throw SetupFailure(description: "unexpected setCount reply \(reply)")
        }
        return (change, now)
    }

    func heartbeat(_ instance: String, ttl: Int64, _ mode: String) async throws -> Int64? {
        try await client.evaluate(PresenceScripts.heartbeat, keys: [PresenceScripts.aliveKey(instance), PresenceScripts.gatewaysKey],
                                  arguments: [instance, String(ttl), mode]).int
    }

    func sweep(by instance: String, ttl: Int64, budget: Int = 1_000) async throws -> (visited: Int64, offline: [(user: Int64, lastSeen: Int64)]) {
        let reply = try await client.evaluate(PresenceScripts.sweep, keys: [PresenceScripts.gatewaysKey],
                                              arguments: [instance, String(budget), String(ttl)])
        guard let values = reply.array, let visited = values.first?.int, values.count % 2 == 1 else {
            throw SetupFailure(description: "unexpected sweep reply \(reply)")
        }
        var offline: [(user: Int64, lastSeen: Int64)] = []
        for index in stride(from: 1, to: values.count, by: 2) {
            guard let user = values[index].int, let lastSeen = values[index + 1].int else {
                throw SetupFailure(description: "unexpected sweep entry in \(reply)")
            }
            offline.append((user, lastSeen))
        }
        return (visited, offline)
    }

    func online(_ users: [Int64], asking instance: String) async throws -> [Int64] {
        let reply = try await client.evaluate(PresenceScripts.online, keys: users.map(PresenceScripts.userKey), arguments: [instance])
        return reply.array?.compactMap(\.int) ?? []
    }

    func cleanUp(users: [Int64], instances: [String]) async throws {
        var keys = users.map(PresenceScripts.userKey)
        for instance in instances { keys += [PresenceScripts.aliveKey(instance), PresenceScripts.usersKey(instance)] }
        if !keys.isEmpty { _ = try await client.send(["DEL"] + keys) }
        if !instances.isEmpty { _ = try await client.send(["ZREM", PresenceScripts.gatewaysKey] + instances) }
    }
}

/// Polling for asynchronous effects (the registry writes and announces in tasks).
private enum RedisTestWaiting {
    @LoopActor
    static func eventually(timeout: Duration = .milliseconds(3_000), _ condition: @LoopActor () async -> Bool) async -> Bool {
        let deadline = MonotonicClock.deadline(after: timeout, from: MonotonicClock.now())
        while await !condition() {
            if MonotonicClock.now() > deadline { return false }
            await EventLoop.shared.sleep(for: .milliseconds(5))
        }
        return true
    }
}
