import Glibc
import Testing
@testable import Gateway
@testable import Shared

/// A gateway without sockets: the real object graph (`GatewayServices`: router, routes, hub,
/// sessions, messaging) against the test PostgreSQL and Redis, served by a real `HTTPServer` over
/// `InMemoryConnection`s, with every socket and command timer on a `ManualClock`. Tests play the
/// client byte for byte (`TestHTTPClient`, `TestSocket`) and, where a command goes to the stream,
/// the worker (`commands()`, `reply(to:_:)`).
///
/// Each harness has its own gateway id and command stream; data goes to one shared database
/// (`gateway_unit`, migrated once per process) under unique user names, so tests run in parallel.
/// Suites using it start the loop in their `init` (`EventLoop.shared.startInBackground()`): a
/// `@LoopActor` test cannot start it.
@LoopActor
final class GatewayHarness {
    let clock = ManualClock()
    let configuration: GatewayConfiguration
    let services: GatewayServices
    let server: HTTPServer
    let redis: RedisClient
    /// `/ready`'s state; dependencies down count at once (no grace).
    let readiness = Readiness(grace: .zero)
    private let database: PostgresPool
    /// Distinct per harness so per-address limits of one test never meet another's.
    private let addressPrefix: String
    private var nextPeer: UInt8 = 1

    struct SetupFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// Settings every harness gets; a test's `settings` override them.
    static let baseSettings: [String: String] = [
        "JWT_SECRET": String(repeating: "k", count: 48),
        "SCRYPT_LOG_N": "10",
        "LOG_LEVEL": "error",
        "RATE_LIMIT_LOGIN_IP": "1000/1m",
        "RATE_LIMIT_LOGIN_ACCOUNT": "1000/1m",
        "RATE_LIMIT_API": "1000/1m",
        "SOCKET_EVENT_RATE": "1000",
        "SOCKET_EVENT_BURST": "1000",
        "ALLOWED_ORIGINS": "https://app.example.com",
    ]

    init(settings: [String: String] = [:]) async throws {
        let urls = try Self.urls()
        let databaseURL = try await Self.database(adminURL: urls.database)
        let unique = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var environment = Self.baseSettings
        environment["DATABASE_URL"] = databaseURL
        environment["REDIS_URL"] = urls.redis
        environment["GATEWAY_ID"] = "unit-\(unique)"
        environment["COMMAND_STREAM"] = "chat:cmd:unit:\(unique)"
        // One shard: every command lands on one stream, in the order the gateway appended them.
        environment["COMMAND_SHARDS"] = "1"
        environment.merge(settings) { _, new in new }
        configuration = try GatewayConfiguration(reader: SettingsReader(settings: GatewayConfiguration.settings, environment: environment))
        let logger = Logger(service: "gateway-unit", minimumLevel: .error)
        database = PostgresPool(configuration: PostgresPoolConfiguration(common: configuration.common, applicationName: "gateway-unit"))
        let redisConfiguration = try RedisConfiguration(common: configuration.common, clientName: configuration.gatewayID)
        redis = RedisClient(configuration: redisConfiguration)
        redis.start()
        readiness.phase = .serving
        services = GatewayServices(configuration: configuration, database: database, redis: redis, readiness: readiness, logger: logger,
                                   clock: clock)
        services.realtime.start(redis: redisConfiguration)
        server = HTTPServer(configuration: configuration.http, responder: services.frontDoor, logger: logger, clock: clock)
        server.upgrader = services.realtime
        addressPrefix = "10.\(UInt8.random(in: 0...255)).\(UInt8.random(in: 0...255))."
        // The reply channel must be subscribed before commands are accepted.
        try await until("the gateway channel is subscribed") { self.services.realtime.channels.gatewayChannelReady }
    }

    /// Closes the clients; call at the end of a test. The services are kept for the rest of the
    /// process: work they started may still be running (the presence write of a socket that closed
    /// as the test ended, its `onChange`) and reaches its owners through `unowned` references,
    /// which would trap if the services were freed with the harness.
    func close() {
        services.close()
        Self.retired.append(services)
    }

    private static var retired: [GatewayServices] = []

    // MARK: Connections

    /// A new client connection from an address of its own (or `address`).
    func connect(address: String? = nil) -> InMemoryConnection {
        let host = address ?? addressPrefix + String(nextPeer)
        nextPeer &+= 1
        let connection = InMemoryConnection(peer: SocketAddress(host: host, port: 50_000)!)
        server.accept(connection)
        return connection
    }

    /// A client for HTTP requests on a connection of its own.
    func http(address: String? = nil) -> TestHTTPClient {
        TestHTTPClient(connection: connect(address: address))
    }

    /// One request on a fresh connection.
    func request(_ method: HTTPMethod, _ path: String, token: String? = nil, headers: [(String, String)] = [],
                 json: JSONValue? = nil, body: [UInt8]? = nil) async throws -> TestResponse {
        try await http().request(method, path, token: token, headers: headers, json: json, body: body)
    }

    // MARK: Accounts

    struct Account {
        let id: Int64
        let username: String
        let email: String
        let password: String
        let token: String
        let refreshToken: String
    }

    /// Signs up and logs in a new user with a unique name.
    func account(_ prefix: String = "user") async throws -> Account {
        let username = "\(prefix)\(UInt32.random(in: 0...UInt32.max))"
        let email = "\(username)@example.com"
        let password = "correct horse battery"
        let signup = try await request(.POST, "/api/auth/signup", json: ["username": .string(username), "email": .string(email),
                                                                          "password": .string(password)])
        guard signup.status == 201 else { throw SetupFailure(description: "signup answered \(signup.status): \(signup.text)") }
        let login = try await request(.POST, "/api/auth/login", json: ["email": .string(email), "password": .string(password)])
        guard login.status == 200, let json = login.json, let token = json["token"]?.stringValue,
              let refresh = json["refreshToken"]?.stringValue, let id = json["user"]?["id"]?.int64Value else {
            throw SetupFailure(description: "login answered \(login.status): \(login.text)")
        }
        return Account(id: id, username: username, email: email, password: password, token: token, refreshToken: refresh)
    }

    /// Makes two users contacts (their direct conversation with both as members and one message
    /// from `first`, stored as a worker stores it), so each sees the other's presence.
    func makeContacts(_ first: Account, _ second: Account) async throws {
        let key = "\(min(first.id, second.id)):\(max(first.id, second.id))"
        let conversation = try await database.query("""
            INSERT INTO conversations (kind, direct_key, created_by) VALUES ('direct', $1, $2)
            ON CONFLICT (direct_key) DO UPDATE SET last_seq = conversations.last_seq RETURNING id
            """, [.string(key), .int64(first.id)])
        guard let id = try conversation.first?.int64("id") else { throw SetupFailure(description: "no conversation for \(key)") }
        try await database.query("""
            INSERT INTO conversation_members (conversation_id, user_id) VALUES ($1, $2), ($1, $3) ON CONFLICT DO NOTHING
            """, [.int64(id), .int64(first.id), .int64(second.id)])
        try await database.query("""
            WITH message AS (
                INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, content)
                SELECT id, last_seq + 1, $2, $3, 'hi' FROM conversations WHERE id = $1 RETURNING id, seq
            )
            UPDATE conversations c SET last_seq = message.seq, last_message_id = message.id, last_message_at = now()
            FROM message WHERE c.id = $1
            """, [.int64(id), .int64(first.id), .string("unit-\(UInt64.random(in: 0...UInt64.max))")])
        // The sender has read their own message, as after a worker's send.
        try await database.query("""
            UPDATE conversation_members m SET last_read_seq = c.last_seq FROM conversations c
            WHERE c.id = $1 AND m.conversation_id = c.id AND m.user_id = $2
            """, [.int64(id), .int64(first.id)])
    }

    /// Runs SQL on the test database (fixtures the API cannot make).
    @discardableResult
    func sql(_ text: String, _ parameters: [PostgresValue] = []) async throws -> PostgresRows {
        try await database.query(text, parameters)
    }

    // MARK: Sockets

    /// Opens a socket (WebSocket upgrade and the Engine.IO open packet) without connecting the
    /// Socket.IO namespace.
    func openSocket(query: String = "EIO=4&transport=websocket", headers: [(String, String)] = [], address: String? = nil) async throws -> TestSocket {
        let socket = TestSocket(connection: connect(address: address))
        try await socket.upgrade(query: query, headers: headers)
        return socket
    }

    /// A socket connected to the default namespace with `token` in the CONNECT packet's auth.
    func connectedSocket(_ account: Account) async throws -> TestSocket {
        let socket = try await openSocket()
        let answer = try await socket.connectNamespace(auth: ["token": .string(account.token)])
        guard answer.hasPrefix("40{") else { throw SetupFailure(description: "CONNECT answered \(answer)") }
        return socket
    }

    // MARK: Playing the worker

    /// The commands this gateway appended to its stream since `after` (the stream id of the last one seen).
    func commands(after: String = "-") async throws -> [(id: String, envelope: CommandEnvelope)] {
        let start = after == "-" ? "-" : "(" + after
        let reply = try await redis.send(["XRANGE", configuration.messaging.commandShards.stream(0), start, "+"])
        guard case .array(let entries) = reply else { return [] }
        return try entries.map { entry in
            guard case .array(let parts) = entry, parts.count == 2, case .bulk(let id) = parts[0], case .array(let flat) = parts[1] else {
                throw SetupFailure(description: "unexpected XRANGE entry \(entry)")
            }
            var fields: [(String, [UInt8])] = []
            var index = 0
            while index + 1 < flat.count {
                if case .bulk(let name) = flat[index], case .bulk(let value) = flat[index + 1] {
                    fields.append((String(decoding: name, as: UTF8.self), value))
                }
                index += 2
            }
            return (String(decoding: id, as: UTF8.self), try CommandEnvelope.decode(fields: fields))
        }
    }

    /// Waits for the next command on the stream after `after`.
    func nextCommand(after: String = "-") async throws -> (id: String, envelope: CommandEnvelope) {
        var found: (id: String, envelope: CommandEnvelope)?
        try await until("a command on the stream") {
            found = try? await self.commands(after: after).first
            return found != nil
        }
        return found!
    }

    /// Publishes a worker's answer to a command, as a worker would.
    func reply(to envelope: CommandEnvelope, _ outcome: ChatReply.Outcome) async throws {
        guard let address = envelope.reply else { throw SetupFailure(description: "the command has no reply address") }
        _ = try await redis.send(ChatReply(reply: address, outcome: outcome).publishCommand)
    }

    /// Publishes an event on a user's channel, as a worker does for deliveries.
    func publish(_ event: SocketEvent, _ data: JSONValue, to userID: Int64) async throws {
        _ = try await redis.send(ChatEvent(userID: userID, event: event, data: data).publishCommand)
    }

    // MARK: Setup

    private static func urls() throws -> (database: String, redis: String) {
        guard let database = getenv("TEST_DATABASE_URL").map({ String(cString: $0) }), !database.isEmpty else {
            throw SetupFailure(description: "TEST_DATABASE_URL is not set: start PostgreSQL and export it")
        }
        guard let redis = getenv("TEST_REDIS_URL").map({ String(cString: $0) }), !redis.isEmpty else {
            throw SetupFailure(description: "TEST_REDIS_URL is not set: start a throwaway redis-server and export it")
        }
        return (database, harnessRedisURL(redis))
    }

    /// `TEST_REDIS_URL` with a database of the harness's own (12, or 11 if the URL names 12): its
    /// gateways keep presence counts and limits by user id, and ids of `gateway_unit` repeat those
    /// of the end-to-end suite's database, which runs next against database 0 of the same server.
    private static func harnessRedisURL(_ url: String) -> String {
        var base = Substring(url)
        var current = 0
        if let slash = url.lastIndex(of: "/"), url[url.index(after: slash)...].allSatisfy(\.isNumber),
           url.distance(from: url.startIndex, to: slash) > "redis://".count {
            current = Int(url[url.index(after: slash)...]) ?? 0
            base = url[..<slash]
        }
        return base + "/" + String(current == 12 ? 11 : 12)
    }

    private static var prepared: Task<String, any Error>?

    /// The URL of `gateway_unit`, created and migrated once per process.
    private static func database(adminURL: String) async throws -> String {
        if let prepared { return try await prepared.value }
        let task = Task { @LoopActor () throws -> String in
            let name = "gateway_unit"
            guard let slash = adminURL.lastIndex(of: "/") else { throw SetupFailure(description: "TEST_DATABASE_URL has no database name") }
            let url = String(adminURL[..<slash]) + "/" + name
            let admin = PostgresPool(configuration: PostgresPoolConfiguration(url: adminURL, size: 1))
            defer { admin.close() }
            let exists = try await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [.string(name)])
            if exists.isEmpty {
                do { try await admin.query("CREATE DATABASE \(name)") } catch let error as PostgresError where error.sqlState == "42P04" {}
            }
            let pool = PostgresPool(configuration: PostgresPoolConfiguration(url: url, size: 1))
            defer { pool.close() }
            _ = try await PostgresMigrator.migrate(pool: pool, migrations: ChatSchema.migrations)
            return url
        }
        prepared = task
        return try await task.value
    }
}

/// Waits (in real time, the loop running) until `condition` holds; fails after `seconds`.
@LoopActor
func until(_ what: String, seconds: Double = 5, _ condition: @LoopActor () async throws -> Bool) async throws {
    let deadline = MonotonicClock.now() + UInt64(seconds * 1e9)
    while true {
        if try await condition() { return }
        guard MonotonicClock.now() < deadline else { throw GatewayHarness.SetupFailure(description: "timed out waiting for \(what)") }
        await EventLoop.shared.sleep(for: .milliseconds(2))
    }
}
