import CLinux
import Glibc
import Synchronization
import Testing
@testable import Shared
@testable import Redis

/// The command client against a real Redis (`TEST_REDIS_URL`).
///
/// Serialized, and every test uses its own keys and kills only its own connections (by client id),
/// so other suites sharing the server are not disturbed.
@Suite(.serialized) struct RedisClientTests {
    init() { EventLoop.shared.startInBackground() }

    @Test @LoopActor func setAndGetAreBinarySafe() async throws {
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let key = Array(RedisTestSupport.uniqueKey("binary").utf8) + [0, 255, 13, 10]
        let value = (0...255).map { UInt8($0) }
        #expect(try await client.send([Array("SET".utf8), key, value]) == .simpleString("OK"))
        #expect(try await client.send([Array("GET".utf8), key]) == .bulk(value))
        #expect(try await client.send([Array("GET".utf8), key]).bytes == value)
        #expect(try await client.send([Array("DEL".utf8), key]) == .integer(1))
        #expect(try await client.send([Array("GET".utf8), key]) == .null)
        // An empty value is a value, not nil.
        var command = RedisCommand(["SET", RedisTestSupport.uniqueKey("empty")])
        command.append(bytes: [UInt8]())
        #expect(try await client.send(command) == .simpleString("OK"))
    }

    @Test @LoopActor func incrCounts() async throws {
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let key = RedisTestSupport.uniqueKey("counter")
        #expect(try await client.send(["INCR", key]) == .integer(1))
        #expect(try await client.send(["INCRBY", key, "41"]).int == 42)
        #expect(try await client.send(["GET", key]).int == 42)
        #expect(try await client.send(["GET", key]).string == "42")
        _ = try await client.send(["DEL", key])
    }

    @Test @LoopActor func pipelineOfAThousandCommandsAnswersInOrder() async throws {
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let key = RedisTestSupport.uniqueKey("list")
        let commands = (0..<1_000).map { ["RPUSH", key, String($0)] }
        let replies = try await client.pipeline(commands)
        #expect(replies == (1...1_000).map { RedisValue.integer(Int64($0)) })
        let stored = try await client.send(["LRANGE", key, "0", "-1"])
        #expect(stored.array?.compactMap(\.string) == (0..<1_000).map(String.init))
        #expect(try await client.pipeline([[String]]()) == [])
        _ = try await client.send(["DEL", key])
    }

    @Test @LoopActor func errorRepliesAreThrownBySendAndReturnedInPipelines() async throws {
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let key = RedisTestSupport.uniqueKey("text")
        _ = try await client.send(["SET", key, "not a number"])
        await #expect(throws: RedisError.server("ERR value is not an integer or out of range")) {
            try await client.send(["INCR", key])
        }
        do {
            _ = try await client.send(["NO-SUCH-COMMAND"])
            Issue.record("expected an error reply")
        } catch {
            guard case .server(let message) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(message.hasPrefix("ERR unknown command"))
        }
        let replies = try await client.pipeline([["GET", key], ["INCR", key], ["STRLEN", key]])
        #expect(replies.count == 3)
        #expect(replies[0].string == "not a number")
        #expect(replies[1].errorMessage?.hasPrefix("ERR value is not an integer") == true)
        #expect(replies[2] == .integer(12))
        // The connection is still healthy after error replies.
        #expect(await client.ping())
        _ = try await client.send(["DEL", key])
    }

    @Test @LoopActor func outstandingRepliesAreBounded() async throws {
        var configuration = try RedisTestSupport.configuration()
        configuration.maxPendingReplies = 10
        let client = try await RedisTestSupport.connectedClient(configuration)
        defer { client.close() }
        await #expect(throws: RedisError.unavailable) {
            try await client.pipeline([[String]](repeating: ["PING"], count: 11))
        }
        #expect(try await client.pipeline([[String]](repeating: ["PING"], count: 10)).count == 10)
    }

    @Test @LoopActor func pubSubCommandsAreRefusedOnTheCommandConnection() async throws {
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        for name in ["SUBSCRIBE", "psubscribe", "Monitor"] {
            do {
                _ = try await client.send([name, "x"])
                Issue.record("\(name) should be refused")
            } catch {
                guard case .protocolError = error else {
                    Issue.record("wrong error \(error)")
                    continue
                }
            }
        }
        await #expect(throws: RedisError.protocolError("a command needs at least one argument")) {
            try await client.send([String]())
        }
        #expect(await client.ping())
    }

    @Test @LoopActor func evaluateUsesEvalshaAndFallsBackAfterScriptFlush() async throws {
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let key = RedisTestSupport.uniqueKey("lua")
        let script = RedisScript(source: "redis.call('SET', KEYS[1], ARGV[1]); return {KEYS[1], redis.call('GET', KEYS[1]), 7}")
        _ = try await client.send(["SCRIPT", "FLUSH"])
        #expect(try await client.send(["SCRIPT", "EXISTS", script.sha1]) == .array([.integer(0)]))
        // NOSCRIPT -> EVAL, which also caches it.
        let first = try await client.evaluate(script, keys: [key], arguments: ["v1"])
        #expect(first == .array([.bulk(Array(key.utf8)), .bulk(Array("v1".utf8)), .integer(7)]))
        #expect(try await client.send(["SCRIPT", "EXISTS", script.sha1]) == .array([.integer(1)]))
        // Now EVALSHA hits the cache; binary arguments work too.
        let second = try await client.evaluate(script, keys: [key], arguments: [[0, 1, 255]])
        #expect(second.array?[1] == .bulk([0, 1, 255]))
        // Flushed again: the fallback runs again.
        _ = try await client.send(["SCRIPT", "FLUSH"])
        #expect(try await client.evaluate(script, keys: [key], arguments: ["v3"]).array?[1].string == "v3")
        // A script error is thrown as a server error.
        let failing = RedisScript(source: "return redis.error_reply('MYERR custom failure')")
        await #expect(throws: RedisError.server("MYERR custom failure")) {
            try await client.evaluate(failing)
        }
        _ = try await client.send(["DEL", key])
    }

    @Test @LoopActor func selectsTheConfiguredDatabase() async throws {
        var configuration = try RedisTestSupport.configuration()
        configuration.database = configuration.database == 1 ? 2 : 1
        let other = try await RedisTestSupport.connectedClient(configuration)
        defer { other.close() }
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let key = RedisTestSupport.uniqueKey("db")
        _ = try await other.send(["SET", key, "x"])
        #expect(try await client.send(["EXISTS", key]) == .integer(0))
        #expect(try await other.send(["EXISTS", key]) == .integer(1))
        _ = try await other.send(["DEL", key])
    }

    @Test @LoopActor func authenticatesWithAclUserAndReportsRefusal() async throws {
        let admin = try await RedisTestSupport.connectedClient()
        defer { admin.close() }
        let user = "test-user-\(UInt32.random(in: 0...UInt32.max))"
        _ = try await admin.send(["ACL", "SETUSER", user, "on", ">p@ss:w/rd", "~*", "&*", "+@all"])
        defer { Task { @LoopActor in _ = try? await admin.send(["ACL", "DELUSER", user]) } }
        let base = try RedisTestSupport.configuration()

        let good = try RedisConfiguration(url: "redis://\(user):p%40ss%3Aw%2Frd@\(base.endpointDescription)/\(base.database)")
        let client = try await RedisTestSupport.connectedClient(good)
        #expect(try await client.send(["ACL", "WHOAMI"]).string == user)
        client.close()

        var bad = good
        bad.password = "wrong"
        let refused = RedisClient(configuration: bad)
        refused.start()
        #expect(await refused.waitUntilConnected(timeout: .milliseconds(300)) == false)
        guard case .server(let message) = refused.lastError else {
            Issue.record("expected a server error, got \(String(describing: refused.lastError))")
            refused.close()
            return
        }
        #expect(message.hasPrefix("WRONGPASS"))
        #expect(refused.lastFailureReason?.contains("wrong") == false)
        await #expect(throws: RedisError.unavailable) { try await refused.send(["PING"]) }
        refused.close()
    }

    @Test @LoopActor func hostNamesAreResolvedOffTheLoop() async throws {
        var configuration = try RedisTestSupport.configuration()
        if configuration.host == "127.0.0.1" { configuration.host = "localhost" }
        let client = try await RedisTestSupport.connectedClient(configuration)
        defer { client.close() }
        #expect(await client.ping())

        var unknown = configuration
        unknown.host = "no-such-host.invalid"
        let lost = RedisClient(configuration: unknown)
        lost.start()
        #expect(await lost.waitUntilConnected(timeout: .milliseconds(500)) == false)
        #expect(lost.lastError == .unavailable)
        #expect(lost.lastFailureReason?.contains("no-such-host.invalid") == true)
        lost.close()
    }

    @Test @LoopActor func killedConnectionFailsFastThenReconnects() async throws {
        var configuration = try RedisTestSupport.configuration()
        configuration.clientName = "victim-\(UInt32.random(in: 0...UInt32.max))"
        configuration.backoff = RedisBackoff(minimum: .milliseconds(200), maximum: .milliseconds(400))
        let victim = try await RedisTestSupport.connectedClient(configuration)
        defer { victim.close() }
        var disconnects: [RedisError] = []
        victim.onDisconnected = { disconnects.append($0) }
        let admin = try await RedisTestSupport.connectedClient()
        defer { admin.close() }

        try await RedisTestSupport.kill(clientNamed: configuration.clientName ?? "", using: admin)
        #expect(await RedisTestSupport.eventually { !victim.isConnected })
        #expect(disconnects == [.connectionLost])

        let start = MonotonicClock.now()
        await #expect(throws: RedisError.unavailable) { try await victim.send(["PING"]) }
        #expect(MonotonicClock.now() - start < 50_000_000)

        #expect(await victim.waitUntilConnected(timeout: .milliseconds(3_000)))
        #expect(try await victim.send(["PING"]) == .simpleString("PONG"))
        #expect(try await victim.send(["CLIENT", "GETNAME"]).string == configuration.clientName)
    }

    @Test @LoopActor func lateReplyTimesOutEveryPendingCommandAndReconnects() async throws {
        var configuration = try RedisTestSupport.configuration()
        configuration.commandTimeout = .milliseconds(200)
        configuration.backoff = RedisBackoff(minimum: .milliseconds(20), maximum: .milliseconds(100))
        let client = try await RedisTestSupport.connectedClient(configuration)
        defer { client.close() }
        let key = RedisTestSupport.uniqueKey("never")
        // BLPOP holds only this connection's reply for 1 s (DEBUG SLEEP would stall the whole server
        // and is disabled by default since Redis 7).
        let start = MonotonicClock.now()
        let blocked = Task { @LoopActor () -> RedisError? in
            do throws(RedisError) {
                _ = try await client.send(["BLPOP", key, "1"])
                return nil
            } catch {
                return error
            }
        }
        await Task.yield()
        await #expect(throws: RedisError.timeout) { try await client.send(["PING"]) }
        #expect(await blocked.value == .timeout)
        let elapsed = (MonotonicClock.now() - start) / 1_000_000
        #expect(elapsed >= 190 && elapsed < 900)
        #expect(await client.waitUntilConnected(timeout: .milliseconds(2_000)))
        #expect(await client.ping())
    }

    @Test @LoopActor func closedPortFailsFastThenConnectsWhenRedisAppears() async throws {
        let base = try RedisTestSupport.configuration()
        let port = try RedisTestSupport.freePort()
        var configuration = RedisConfiguration(host: "127.0.0.1", port: Int(port), database: base.database,
                                               username: base.username, password: base.password)
        configuration.backoff = RedisBackoff(minimum: .milliseconds(20), maximum: .milliseconds(100))
        let client = RedisClient(configuration: configuration)
        defer { client.close() }
        var connects = 0
        client.onConnected = { connects += 1 }
        client.start()
        #expect(await client.waitUntilConnected(timeout: .milliseconds(150)) == false)
        let start = MonotonicClock.now()
        await #expect(throws: RedisError.unavailable) { try await client.send(["PING"]) }
        #expect(MonotonicClock.now() - start < 50_000_000)
        #expect(client.lastError == .unavailable)
        #expect(client.lastFailureReason?.contains("refused") == true)

        let forwarder = try await RedisTestSupport.forwarder(port: port, to: base)
        defer { forwarder.stop() }
        #expect(await client.waitUntilConnected(timeout: .milliseconds(2_000)))
        #expect(try await client.send(["PING"]) == .simpleString("PONG"))
        #expect(connects == 1)
    }

    @Test @LoopActor func serverThatNeverAnswersHitsTheConnectTimeout() async throws {
        // A socket that listens but never accepts: the kernel completes the TCP handshake, nobody
        // answers PING.
        let port = try RedisTestSupport.freePort()
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        guard let address = SocketAddress(host: "127.0.0.1", port: port),
              address.withSockAddr({ bind(fd, $0, $1) }) == 0, listen(fd, 8) == 0 else {
            Issue.record("cannot listen: \(SystemError("listen"))")
            return
        }
        var configuration = RedisConfiguration(host: "127.0.0.1", port: Int(port))
        configuration.connectTimeout = .milliseconds(150)
        configuration.backoff = RedisBackoff(minimum: .milliseconds(1_000), maximum: .milliseconds(1_000))
        let client = RedisClient(configuration: configuration)
        defer { client.close() }
        client.start()
        let start = MonotonicClock.now()
        #expect(await RedisTestSupport.eventually { client.lastError != nil })
        let elapsed = (MonotonicClock.now() - start) / 1_000_000
        #expect(elapsed >= 140 && elapsed < 600)
        #expect(client.lastError == .timeout)
        #expect(client.lastFailureReason?.contains("no connection within 150 ms") == true, "\(client.lastFailureReason ?? "")")
        await #expect(throws: RedisError.unavailable) { try await client.send(["PING"]) }
    }

    @Test @LoopActor func droppingAClientWithoutCloseReleasesItsConnection() async throws {
        var configuration = try RedisTestSupport.configuration()
        let name = "dropped-\(UInt32.random(in: 0...UInt32.max))"
        configuration.clientName = name
        let admin = try await RedisTestSupport.connectedClient()
        defer { admin.close() }
        var client: RedisClient? = try await RedisTestSupport.connectedClient(configuration)
        #expect(await client?.ping() == true)
        #expect(try await admin.send(["CLIENT", "LIST"]).string?.contains("name=\(name) ") == true)
        client = nil
        #expect(await RedisTestSupport.eventually {
            (try? await admin.send(["CLIENT", "LIST"]).string?.contains("name=\(name) ")) == false
        })
    }

    @Test @LoopActor func closeFailsLaterCommandsAndStopsReconnecting() async throws {
        let client = try await RedisTestSupport.connectedClient()
        client.close()
        #expect(!client.isConnected)
        await #expect(throws: RedisError.unavailable) { try await client.send(["PING"]) }
        #expect(await client.waitUntilConnected(timeout: .milliseconds(100)) == false)
        #expect(await client.ping() == false)
    }
}

/// Shared helpers of the Redis integration tests.
enum RedisTestSupport {
    struct SetupFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// The server under test, from `TEST_REDIS_URL` (the tests fail without it).
    static func configuration() throws -> RedisConfiguration {
        guard let raw = getenv("TEST_REDIS_URL"), raw.pointee != 0 else {
            throw SetupFailure(description: "TEST_REDIS_URL is not set: start a throwaway redis-server and export TEST_REDIS_URL=redis://127.0.0.1:<port>/0")
        }
        return try RedisConfiguration(url: String(cString: raw))
    }

    static func uniqueKey(_ label: String) -> String {
        "test:redis:\(label):\(UInt64.random(in: 0...UInt64.max))"
    }

    @LoopActor
    static func connectedClient(_ configuration: RedisConfiguration? = nil) async throws -> RedisClient {
        let client = RedisClient(configuration: try configuration ?? self.configuration())
        client.start()
        guard await client.waitUntilConnected(timeout: .milliseconds(3_000)) else {
            client.close()
            throw SetupFailure(description: "cannot connect to Redis: \(client.lastFailureReason ?? "?")")
        }
        return client
    }

    /// Polls `condition` on the loop every 5 ms, up to `timeout`.
    @LoopActor
    static func eventually(timeout: Duration = .milliseconds(3_000), _ condition: @LoopActor () async -> Bool) async -> Bool {
        let deadline = MonotonicClock.deadline(after: timeout, from: MonotonicClock.now())
        while await !condition() {
            if MonotonicClock.now() > deadline { return false }
            await EventLoop.shared.sleep(for: .milliseconds(5))
        }
        return true
    }

    /// Kills the connections whose `CLIENT SETNAME` is `name` (by id, so nobody else is affected).
    @LoopActor
    static func kill(clientNamed name: String, using admin: RedisClient) async throws {
        let list = try await admin.send(["CLIENT", "LIST"]).string ?? ""
        var killed = 0
        for line in list.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.contains(where: { $0 == "name=\(name)" }),
                  let idField = fields.first(where: { $0.hasPrefix("id=") }) else { continue }
            _ = try await admin.send(["CLIENT", "KILL", "ID", String(idField.dropFirst(3))])
            killed += 1
        }
        if killed == 0 { throw SetupFailure(description: "no client named \(name)") }
    }

    /// A loopback port nothing listens on (bound and released).
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        guard let address = SocketAddress(host: "127.0.0.1", port: 0),
              address.withSockAddr({ bind(fd, $0, $1) }) == 0 else {
            throw SetupFailure(description: "bind failed")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return SocketAddress(storage: storage, length: length).port
    }

    /// Starts a TCP forwarder on 127.0.0.1:`port` to the server of `configuration`.
    @LoopActor
    static func forwarder(port: UInt16, to configuration: RedisConfiguration) async throws -> TCPForwarder {
        let upstream: String
        switch RedisHostResolver.blockingResolve(configuration.host) {
        case .success(let numeric): upstream = numeric
        case .failure(let failure): throw SetupFailure(description: failure.reason)
        }
        return try TCPForwarder(port: port, upstreamHost: upstream, upstreamPort: UInt16(configuration.port))
    }
}

/// A blocking-thread TCP forwarder: "a Redis appears on this port" without spawning a server.
final class TCPForwarder: Sendable {
    private let listenFD: CInt
    private let open = Mutex<Set<CInt>>([])

    init(port: UInt16, upstreamHost: String, upstreamPort: UInt16) throws {
        listenFD = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        var one: CInt = 1
        _ = setsockopt(listenFD, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        guard let address = SocketAddress(host: "127.0.0.1", port: port),
              let upstream = SocketAddress(host: upstreamHost, port: upstreamPort),
              address.withSockAddr({ bind(listenFD, $0, $1) }) == 0, listen(listenFD, 16) == 0 else {
            close(listenFD)
            throw RedisTestSupport.SetupFailure(description: "cannot listen on \(port): \(SystemError("bind"))")
        }
        let listener = listenFD
        NativeThread.spawn(name: "fwd-accept") { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    close(listener)
                    return
                }
                let server = socket(CInt(upstream.family), CInt(SOCK_STREAM.rawValue), 0)
                guard upstream.withSockAddr({ connect(server, $0, $1) }) == 0 else {
                    close(client)
                    close(server)
                    continue
                }
                open.withLock { $0.formUnion([client, server]) }
                let pair = Pair(client, server)
                pump(from: client, to: server, pair: pair)
                pump(from: server, to: client, pair: pair)
            }
        }
    }

    /// Both sockets of one forwarded connection; the second pump to finish closes them, so neither
    /// pump can write to a descriptor number that was closed and reused.
    private final class Pair: Sendable {
        let fds: (CInt, CInt)
        let running = Atomic<Int>(2)
        init(_ a: CInt, _ b: CInt) { fds = (a, b) }
    }

    private func pump(from source: CInt, to sink: CInt, pair: Pair) {
        NativeThread.spawn(name: "fwd-pump") { [self] in
            var buffer = [UInt8](repeating: 0, count: 16_384)
            pumping: while true {
                let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                var offset = 0
                while offset < count {
                    let written = buffer.withUnsafeBytes { write(sink, $0.baseAddress?.advanced(by: offset), count - offset) }
                    if written <= 0 { break pumping }
                    offset += written
                }
            }
            // Either direction ending ends both: the shutdown wakes the other pump.
            shutdown(source, CInt(SHUT_RDWR))
            shutdown(sink, CInt(SHUT_RDWR))
            if pair.running.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                open.withLock { $0.subtract([pair.fds.0, pair.fds.1]) }
                close(pair.fds.0)
                close(pair.fds.1)
            }
        }
    }

    /// Stops accepting and cuts every forwarded connection.
    func stop() {
        shutdown(listenFD, CInt(SHUT_RDWR))
        open.withLock { fds in
            for fd in fds { shutdown(fd, CInt(SHUT_RDWR)) }
        }
    }
}
