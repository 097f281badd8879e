import Glibc
import Testing
@testable import MessageWorker
@testable import Shared

/// The worker against real PostgreSQL (`TEST_DATABASE_URL`) and Redis (`TEST_REDIS_URL`): each test
/// gets a schema, shard streams (leases and roster included), a gateway id and user ids of its
/// own, so tests run in parallel. A started worker is a consumer with its shard coordinator, as in
/// the service.
@Suite struct WorkerIntegrationTests {
    init() { EventLoop.shared.startInBackground() }

    struct SetupFailure: Error, CustomStringConvertible {
        let description: String
    }

    private static func environment(_ name: String, _ hint: String) throws -> String {
        guard let raw = getenv(name), raw.pointee != 0 else { throw SetupFailure(description: "\(name) is not set: \(hint)") }
        return String(cString: raw)
    }

    /// A worker's world: schema, streams, clients, and everything published to the test's channels.
    @LoopActor
    final class Harness {
        let admin: PostgresPool
        let database: PostgresPool
        let redis: RedisClient
        let schema: String
        let gateway: String
        let configuration: WorkerConfiguration
        private let redisConfiguration: RedisConfiguration
        private var userBase = Int64.random(in: 1_000_000...1_000_000_000) * 1000
        /// Replies by request id, events by "channel name", in arrival order.
        private var repliesByRequest: [String: [JSONValue]] = [:]
        private var eventsByChannel: [String: [JSONValue]] = [:]
        private var consumers: [CommandConsumer] = []
        private var coordinators: [ShardCoordinator] = []
        private var clients: [RedisClient] = []

        init(_ overrides: [String: String] = [:]) async throws {
            let databaseURL = try WorkerIntegrationTests.environment("TEST_DATABASE_URL", "start PostgreSQL and export TEST_DATABASE_URL=postgresql://user@127.0.0.1:PORT/db")
            let redisURL = try WorkerIntegrationTests.environment("TEST_REDIS_URL", "start a throwaway redis-server and export TEST_REDIS_URL=redis://127.0.0.1:PORT/0")
            let tag = "\(UInt32.random(in: 0...UInt32.max))_\(getpid())"
            schema = "worker_\(tag)"
            gateway = "gw-test-\(tag)"
            var environment = [
                "DATABASE_URL": databaseURL, "REDIS_URL": redisURL, "WORKER_ID": "worker-a-\(tag)",
                "COMMAND_STREAM": "test:cmd:\(tag)", "DEAD_LETTER_STREAM": "test:dead:\(tag)", "COMMAND_SHARDS": "4",
                "SHARD_LEASE_TTL_MS": "1000", "WORKER_BLOCK_MS": "50", "WORKER_TRIM_INTERVAL_MS": "60000", "ADMIN_PORT": "0",
            ]
            environment.merge(overrides) { $1 }
            configuration = try WorkerConfiguration(reader: SettingsReader(settings: WorkerConfiguration.settings, environment: environment))
            redisConfiguration = try RedisConfiguration(url: redisURL)

            admin = PostgresPool(configuration: PostgresPoolConfiguration(url: databaseURL, size: 1))
            try await admin.query("CREATE SCHEMA \(schema)")
            database = PostgresPool(configuration: PostgresPoolConfiguration(
                url: databaseURL, size: 4, parameters: ["options": "-c search_path=\(schema)"]))
            _ = try await PostgresMigrator.migrate(pool: database, migrations: ChatSchema.migrations)

            redis = RedisClient(configuration: redisConfiguration)
            redis.start()
            guard await redis.waitUntilConnected(timeout: .milliseconds(3_000)) else { throw SetupFailure(description: "cannot connect to Redis") }
        }

        /// Every event received, in arrival order (one connection: publish order across channels).
        private(set) var arrivals: [(channel: String, event: String, data: JSONValue, except: Int64?)] = []

        /// Subscribes to the test gateway's reply channel and the users' channels.
        func listen(users: [Int64]) async throws {
            let listener = RedisSubscriber(configuration: redisConfiguration) { [weak self] channel, payload in
                guard let self, let json = try? JSONParser.parse(payload) else { return }
                if let request = json["reply"]?["request"]?.stringValue {
                    self.repliesByRequest[request, default: []].append(json)
                } else if let name = json["event"]?.stringValue {
                    self.eventsByChannel["\(channel) \(name)", default: []].append(json["data"] ?? .null)
                    self.arrivals.append((channel, name, json["data"] ?? .null, json["except"]?.int64Value))
                }
            }
            listener.start()
            guard await listener.waitUntilConnected(timeout: .milliseconds(3_000)) else { throw SetupFailure(description: "cannot subscribe") }
            try await listener.subscribe([ChatChannels.gateway(gateway)] + users.map { ChatChannels.user($0) })
            listeners.append(listener)
        }

        private var listeners: [RedisSubscriber] = []

        /// Creates users with ids no other test uses.
        func users(_ count: Int) async throws -> [Int64] {
            var ids: [Int64] = []
            for _ in 0..<count {
                userBase += 1
                try await database.query("""
                    INSERT INTO users (id, username, email, password_hash, display_name) OVERRIDING SYSTEM VALUE
                    VALUES ($1, $2, $3, 'x', $2)
                    """, [.int64(userBase), .string("u\(userBase)"), .string("u\(userBase)@example.test")])
                ids.append(userBase)
            }
            return ids
        }

        func reply(_ request: String) -> ReplyAddress { ReplyAddress(gateway: gateway, request: request) }

        var shards: CommandShards { configuration.shards }

        /// The stream a gateway appends `user`'s `command` to.
        func stream(of command: ChatCommand, by user: Int64) -> String {
            shards.stream(shards.shard(of: command, userID: user))
        }

        /// XADDs a command to its shard, as a gateway does; returns its entry id.
        @discardableResult
        func add(_ command: ChatCommand, by user: Int64, request: String) async throws -> String {
            try await addFields(CommandEnvelope(command: command, userID: user, reply: reply(request)).streamFields(),
                                to: stream(of: command, by: user))
        }

        @discardableResult
        func addFields(_ fields: [String], to stream: String? = nil) async throws -> String {
            try await redis.send(["XADD", stream ?? shards.stream(0), "*"] + fields).string ?? ""
        }

        func send(_ content: String, from sender: Int64, to receiver: Int64, key: String, request: String? = nil) async throws {
            try await add(.send(SendMessage(receiverID: receiver, content: content, clientMsgID: key)), by: sender, request: request ?? key)
        }

        /// Creates `stream`'s group and reads `count` entries as a consumer that then "dies" (never acknowledges).
        func deliverToDeadConsumer(count: Int, stream: String, name: String = "dead-consumer") async throws -> [String] {
            _ = try? await redis.send(["XGROUP", "CREATE", stream, configuration.group, "0", "MKSTREAM"])
            let reply = try await redis.send(["XREADGROUP", "GROUP", configuration.group, name, "COUNT", String(count),
                                              "STREAMS", stream, ">"])
            return StreamEntry.parse(readReply: reply).map(\.id)
        }

        /// Starts a worker: a consumer (its own reader connection) and its shard coordinator, with
        /// `workerID` if given, writing through `applier` (default: a `BatchStore` on the test schema).
        @discardableResult
        func startConsumer(workerID: String? = nil, applier: (any BatchApplier)? = nil) -> CommandConsumer {
            startWorker(workerID: workerID, applier: applier).consumer
        }

        func startWorker(workerID: String? = nil, applier: (any BatchApplier)? = nil) -> (consumer: CommandConsumer, coordinator: ShardCoordinator) {
            var configuration = self.configuration
            if let workerID { configuration.workerID = workerID }
            let reader = RedisClient(configuration: redisConfiguration)
            let commands = RedisClient(configuration: redisConfiguration)
            reader.start()
            commands.start()
            clients += [reader, commands]
            let logger = Logger(service: "worker-test", minimumLevel: .error)
            let processor = BatchProcessor(applier: applier ?? BatchStore(database: database), logger: logger)
            let consumer = CommandConsumer(reader: reader, commands: commands, processor: processor, configuration: configuration, logger: logger)
            let store = ShardLeaseStore(redis: commands, shards: configuration.shards, workerID: configuration.workerID, ttl: configuration.leaseTTL)
            let coordinator = ShardCoordinator(shards: configuration.shards, store: store, database: database,
                                               timing: ShardLease.Timing(ttl: configuration.leaseTTL, retryEvery: .milliseconds(100)), logger: logger)
            consumer.follow(coordinator)
            consumer.start()
            coordinator.start()
            consumers.append(consumer)
            coordinators.append(coordinator)
            return (consumer, coordinator)
        }

        /// Replies published for `request`.
        func replies(_ request: String) -> [JSONValue] { repliesByRequest[request] ?? [] }

        /// Events published to a user.
        func events(_ user: Int64, _ name: String) -> [JSONValue] { eventsByChannel["\(ChatChannels.user(user)) \(name)"] ?? [] }

        /// Events published to a room's members.
        func events(room: Int64, _ name: String) -> [JSONValue] { eventsByChannel["\(ChatChannels.room(room)) \(name)"] ?? [] }

        /// Also listens to these rooms' channels.
        func listen(rooms: [Int64]) async throws {
            try await listeners.first?.subscribe(rooms.map(ChatChannels.room))
        }

        func waitForReplies(_ requests: [String], timeout: Duration = .milliseconds(5_000)) async throws {
            let ok = await Self.eventually(timeout: timeout) { requests.allSatisfy { !self.replies($0).isEmpty } }
            if !ok {
                let missing = requests.filter { self.replies($0).isEmpty }
                throw SetupFailure(description: "no reply for \(missing)")
            }
        }

        /// Entries pending in the group, over every shard.
        func pendingCount() async throws -> Int64 {
            var total: Int64 = 0
            for stream in shards.streams {
                guard let summary = try? await redis.send(["XPENDING", stream, configuration.group]) else { continue }
                if case .array(let fields) = summary, let count = fields.first?.int { total += count }
            }
            return total
        }

        static func eventually(timeout: Duration = .milliseconds(5_000), _ condition: @LoopActor () async throws -> Bool) async -> Bool {
            let deadline = MonotonicClock.deadline(after: timeout, from: MonotonicClock.now())
            while (try? await condition()) != true {
                if MonotonicClock.now() > deadline { return false }
                await EventLoop.shared.sleep(for: .milliseconds(10))
            }
            return true
        }

        func close() async {
            for consumer in consumers {
                await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in consumer.stop { done.resume() } }
            }
            for coordinator in coordinators { await coordinator.stop() }
            for client in clients { client.close() }
            for listener in listeners { listener.close() }
            let keys = shards.streams + (0..<shards.count).map(shards.lease) + [shards.rosterKey, configuration.deadLetterStream]
            _ = try? await redis.send(["DEL"] + keys)
            redis.close()
            database.close()
            _ = try? await admin.query("DROP SCHEMA \(schema) CASCADE")
            admin.close()
        }
    }

    // MARK: Tests

    @Test @LoopActor func sendsInTwoConversationsGetGapFreeSeqsInOneBatch() async throws {
        let harness = try await Harness()
        let users = try await harness.users(3)
        let (a, b, c) = (users[0], users[1], users[2])
        try await harness.listen(users: users)
        let plan: [(Int64, Int64)] = [(a, b), (a, c), (b, a), (a, b), (c, a), (a, b), (b, a), (a, c)]
        for (index, pair) in plan.enumerated() {
            try await harness.send("m\(index)", from: pair.0, to: pair.1, key: "k\(index)")
        }
        let consumer = harness.startConsumer()
        try await harness.waitForReplies((0..<plan.count).map { "k\($0)" })

        let rows = try await harness.database.query("""
            SELECT c.direct_key, m.seq, m.content FROM messages m JOIN conversations c ON c.id = m.conversation_id ORDER BY c.direct_key, m.seq
            """)
        var seqs: [String: [Int64]] = [:]
        var contents: [String: [String]] = [:]
        for row in rows {
            seqs[try row.string("direct_key"), default: []].append(try row.int64("seq"))
            contents[try row.string("direct_key"), default: []].append(try row.string("content"))
        }
        #expect(seqs[DirectConversation.key(a, b)] == [1, 2, 3, 4, 5])
        #expect(seqs[DirectConversation.key(a, c)] == [1, 2, 3])
        // Stream order is seq order.
        #expect(contents[DirectConversation.key(a, b)] == ["m0", "m2", "m3", "m5", "m6"])
        #expect(contents[DirectConversation.key(a, c)] == ["m1", "m4", "m7"])
        // Each head names the conversation's newest message (moved in the insert's statement).
        let heads = try await harness.database.query("""
            SELECT c.direct_key, c.last_seq, m.seq, m.content FROM conversations c JOIN messages m ON m.id = c.last_message_id
            """)
        #expect(try heads.map { try "\($0.string("direct_key"))=\($0.int64("last_seq"))/\($0.int64("seq"))/\($0.string("content"))" }.sorted()
            == ["\(DirectConversation.key(a, b))=5/5/m6", "\(DirectConversation.key(a, c))=3/3/m7"].sorted())

        // Replies carry the stored message; B saw receiveMessage with its unread count.
        let reply = try #require(harness.replies("k5").first)
        #expect(reply["ok"] == true)
        #expect(reply["result"]?["seq"] == 4)
        #expect(reply["result"]?["senderId"] == .int(a))
        #expect(reply["result"]?["receiverId"] == .int(b))
        #expect(await Harness.eventually { harness.events(b, "receiveMessage").count == 3 })
        let received = harness.events(b, "receiveMessage")
        #expect(received.map { $0["unreadCount"] } == [1, 1, 2])  // B's own message at seq 3 moved its pointer
        #expect(harness.events(a, "messageSent").count == 5)
        // One command per entry was acknowledged; nothing stays pending.
        #expect(await Harness.eventually { consumer.processed == plan.count })
        #expect(try await harness.pendingCount() == 0)
        await harness.close()
    }

    @Test @LoopActor func twoWorkersKeepEveryConversationGapFreeAndExactlyOnce() async throws {
        let harness = try await Harness(["WORKER_BATCH_SIZE": "16"])
        let users = try await harness.users(5)
        try await harness.listen(users: [])
        var pairs: [(Int64, Int64)] = []
        for sender in users { for receiver in users where receiver != sender { pairs.append((sender, receiver)) } }
        // 400 sends over 10 conversations, plus 60 client retries of earlier ones, all queued at once.
        var commands: [[String]] = []
        var requests: [String] = []
        for index in 0..<400 {
            let (sender, receiver) = pairs[index % pairs.count]
            let fields = CommandEnvelope(command: .send(SendMessage(receiverID: receiver, content: "m\(index)", clientMsgID: "k\(index)")),
                                         userID: sender, reply: harness.reply("r\(index)")).streamFields()
            commands.append(["XADD", harness.shards.stream(harness.shards.shard(directBetween: sender, receiver)), "*"] + fields)
            requests.append("r\(index)")
            if index % 7 == 3 {
                let retried = index - 3
                let (retrySender, retryReceiver) = pairs[retried % pairs.count]
                let retry = CommandEnvelope(command: .send(SendMessage(receiverID: retryReceiver, content: "m\(retried)", clientMsgID: "k\(retried)")),
                                            userID: retrySender, reply: harness.reply("retry\(retried)")).streamFields()
                commands.append(["XADD", harness.shards.stream(harness.shards.shard(directBetween: retrySender, retryReceiver)), "*"] + retry)
                requests.append("retry\(retried)")
            }
        }
        _ = try await harness.redis.pipeline(commands)
        let first = harness.startConsumer(workerID: "worker-1")
        let second = harness.startConsumer(workerID: "worker-2")
        try await harness.waitForReplies(requests, timeout: .milliseconds(30_000))
        #expect(requests.allSatisfy { harness.replies($0).first?["ok"] == true })
        // Acknowledged after the replies went out: wait for the counters.
        #expect(await Harness.eventually { first.processed + second.processed == commands.count })

        #expect(try await harness.database.query("SELECT count(*) AS n FROM messages").int64("n") == 400)
        let gaps = try await harness.database.query("""
            SELECT c.id, c.last_seq, count(m.id) AS n, min(m.seq) AS low, max(m.seq) AS high
            FROM conversations c JOIN messages m ON m.conversation_id = c.id GROUP BY c.id, c.last_seq
            """)
        #expect(gaps.count == 10)
        for row in gaps {
            #expect(try row.int64("low") == 1)
            #expect(try row.int64("high") == row.int64("n"))
            #expect(try row.int64("last_seq") == row.int64("n"))
        }
        // A retry answers with the message its first attempt stored.
        for index in stride(from: 0, through: 392, by: 7) {
            #expect(harness.replies("retry\(index)").first?["result"]?["id"] == harness.replies("r\(index)").first?["result"]?["id"])
        }
        await harness.close()
    }

    @Test @LoopActor func theSameClientMessageIDTwiceIsOneRowAndOneMessage() async throws {
        let harness = try await Harness()
        let users = try await harness.users(2)
        try await harness.listen(users: users)
        try await harness.send("hello", from: users[0], to: users[1], key: "dup-1", request: "r1")
        try await harness.send("hello", from: users[0], to: users[1], key: "dup-1", request: "r2")
        harness.startConsumer()
        try await harness.waitForReplies(["r1", "r2"])
        // Again in a later batch, as a client retry after a lost ack would.
        try await harness.send("hello again?", from: users[0], to: users[1], key: "dup-1", request: "r3")
        try await harness.waitForReplies(["r3"])

        #expect(try await harness.database.query("SELECT count(*) AS n FROM messages").int64("n") == 1)
        #expect(try await harness.database.query("SELECT last_seq FROM conversations").int64("last_seq") == 1)
        let results = ["r1", "r2", "r3"].compactMap { harness.replies($0).first?["result"] }
        #expect(results.count == 3)
        #expect(Set(results.compactMap { $0["id"]?.int64Value }).count == 1)
        #expect(results.allSatisfy { $0["content"] == "hello" && $0["seq"] == 1 })
        await harness.close()
    }

    @Test @LoopActor func readsMovePointersForwardOnlyAndCount() async throws {
        let harness = try await Harness()
        let users = try await harness.users(2)
        let (a, b) = (users[0], users[1])
        try await harness.listen(users: users)
        for index in 1...4 { try await harness.send("m\(index)", from: a, to: b, key: "s\(index)") }
        harness.startConsumer()
        try await harness.waitForReplies((1...4).map { "s\($0)" })
        let ids = (1...4).compactMap { harness.replies("s\($0)").first?["result"]?["id"]?.int64Value }
        #expect(ids.count == 4)

        func pointer(_ user: Int64) async throws -> Int64 {
            try await harness.database.query("SELECT last_read_seq FROM conversation_members WHERE user_id = $1", [.int64(user)]).int64("last_read_seq")
        }
        func unread(_ user: Int64) async throws -> Int64 {
            try await harness.database.query("""
                SELECT coalesce(sum(\(Unread.sqlExpression)), 0)::bigint AS n FROM conversation_members cm
                JOIN conversations c ON c.id = cm.conversation_id WHERE cm.user_id = $1
                """, [.int64(user)]).int64("n")
        }
        #expect(try await unread(b) == 4)
        #expect(try await pointer(a) == 4)

        try await harness.add(.read(messageID: ids[1]), by: b, request: "read2")
        try await harness.waitForReplies(["read2"])
        #expect(harness.replies("read2").first?["result"] == ["count": 2, "lastReadSeq": 2])
        #expect(try await pointer(b) == 2)
        #expect(try await unread(b) == 2)
        #expect(await Harness.eventually { harness.events(a, "messageReadByReceiver").count == 1 })
        #expect(harness.events(a, "messageReadByReceiver").first?["readerId"] == .int(b))
        #expect(harness.events(b, "messageReadConfirmed").first?["isRead"] == true)

        // An older message: the pointer stays.
        try await harness.add(.read(messageID: ids[0]), by: b, request: "read1")
        try await harness.waitForReplies(["read1"])
        #expect(harness.replies("read1").first?["result"] == ["count": 0, "lastReadSeq": 2])
        #expect(try await pointer(b) == 2)

        // Someone else's message cannot be marked by its sender; unknown ids are reported.
        try await harness.add(.read(messageID: ids[3]), by: a, request: "own")
        try await harness.add(.read(messageID: 999_999_999), by: b, request: "missing")
        try await harness.waitForReplies(["own", "missing"])
        #expect(harness.replies("own").first?["error"]?["code"] == "not_a_recipient")
        #expect(harness.replies("missing").first?["error"]?["code"] == "message_not_found")

        try await harness.add(.readAll(senderID: a), by: b, request: "all")
        try await harness.waitForReplies(["all"])
        #expect(harness.replies("all").first?["result"]?["count"] == 2)
        #expect(harness.replies("all").first?["result"]?["lastReadSeq"] == 4)
        #expect(try await unread(b) == 0)
        #expect(await Harness.eventually { !harness.events(a, "messagesReadByReceiver").isEmpty })
        #expect(harness.events(a, "messagesReadByReceiver").first?["receiverId"] == .int(b))
        #expect(harness.events(b, "allMessagesRead").first?["count"] == 2)

        // History shows isRead from the pointer.
        let history = try await harness.database.query("SELECT \(ChatMessageRecord.columns) FROM \(ChatMessageRecord.tables) ORDER BY m.seq")
        #expect(try history.map { try ChatMessageRecord(row: $0).isRead } == [true, true, true, true])
        #expect(try history.map { try ChatMessageRecord(row: $0).receiverID } == [b, b, b, b])
        await harness.close()
    }

    @Test @LoopActor func anUnknownReceiverIsRefusedAndTheBatchStillStored() async throws {
        let harness = try await Harness()
        let users = try await harness.users(2)
        try await harness.listen(users: users)
        try await harness.send("to nobody", from: users[0], to: 42, key: "bad", request: "bad")
        try await harness.send("fine", from: users[0], to: users[1], key: "good", request: "good")
        try await harness.send("self", from: users[0], to: users[0], key: "self", request: "self")
        try await harness.addFields(["v", "1", "type", "send", "user", String(users[0]), "body", #"{"receiverId":2}"#,
                                     "reply", ReplyAddress(gateway: harness.gateway, request: "invalid").json.jsonString])
        let consumer = harness.startConsumer()
        try await harness.waitForReplies(["bad", "good", "self", "invalid"])
        #expect(harness.replies("bad").first?["error"]?["code"] == "user_not_found")
        #expect(harness.replies("self").first?["error"]?["code"] == "cannot_message_self")
        #expect(harness.replies("invalid").first?["error"]?["code"] == "validation_failed")
        #expect(harness.replies("good").first?["ok"] == true)
        #expect(try await harness.database.query("SELECT count(*) AS n FROM messages").int64("n") == 1)
        #expect(await Harness.eventually { consumer.processed == 4 })
        #expect(consumer.deadLettered == 0)
        await harness.close()
    }

    @Test @LoopActor func aCommandThatBreaksTheTransactionIsIsolated() async throws {
        let harness = try await Harness()
        let users = try await harness.users(2)
        try await harness.listen(users: users)
        // A rule the worker's checks do not know about, to make one row fail inside the transaction.
        try await harness.database.query("ALTER TABLE messages ADD CONSTRAINT test_no_poison CHECK (content <> 'poison')")
        for index in 0..<5 { try await harness.send(index == 3 ? "poison" : "ok \(index)", from: users[0], to: users[1], key: "p\(index)") }
        let consumer = harness.startConsumer()
        try await harness.waitForReplies((0..<5).map { "p\($0)" })
        #expect(harness.replies("p3").first?["error"]?["code"] == "processing_failed")
        #expect((0..<5).filter { $0 != 3 }.allSatisfy { harness.replies("p\($0)").first?["ok"] == true })
        let seqs = try await harness.database.query("SELECT seq FROM messages ORDER BY seq").map { try $0.int64("seq") }
        #expect(seqs == [1, 2, 3, 4])
        #expect(await Harness.eventually { consumer.deadLettered == 1 })
        let dead = StreamEntry.parse(entries: try await harness.redis.send(["XRANGE", harness.configuration.deadLetterStream, "-", "+"]))
        #expect(dead.count == 1)
        #expect(dead.first?.fields.contains { $0.0 == "reason" && String(decoding: $0.1, as: UTF8.self).contains("test_no_poison") } == true)
        #expect(dead.first?.fields.contains { $0.0 == "body" } == true)
        #expect(await Harness.eventually { try await harness.pendingCount() == 0 })
        await harness.close()
    }

    @Test @LoopActor func aDeadOwnersPendingEntriesAreTakenOverFirstWhenTheShardStarts() async throws {
        let harness = try await Harness()
        let users = try await harness.users(2)
        try await harness.listen(users: users)
        let stream = harness.stream(of: .send(SendMessage(receiverID: users[1], content: "", clientMsgID: "")), by: users[0])
        try await harness.send("orphan", from: users[0], to: users[1], key: "orphan")
        let taken = try await harness.deliverToDeadConsumer(count: 10, stream: stream)
        #expect(taken.count == 1)
        // Sent after the orphan, never delivered to anyone: it must be stored after it.
        try await harness.send("newer", from: users[0], to: users[1], key: "newer")
        #expect(try await harness.pendingCount() == 1)
        let consumer = harness.startConsumer()
        try await harness.waitForReplies(["orphan", "newer"])
        #expect(consumer.claimed == 1)
        #expect(harness.replies("orphan").first?["result"]?["seq"] == 1)
        #expect(harness.replies("newer").first?["result"]?["seq"] == 2)
        #expect(await Harness.eventually { try await harness.pendingCount() == 0 })
        #expect(try await harness.database.query("SELECT count(*) AS n FROM messages").int64("n") == 2)
        await harness.close()
    }

    @Test @LoopActor func aBatchUnderAStaleEpochIsRefusedAndRedoneByTheShardsNextOwner() async throws {
        let harness = try await Harness()
        let users = try await harness.users(2)
        try await harness.listen(users: users)
        let shard = harness.shards.shard(directBetween: users[0], users[1])
        let worker = harness.startWorker(workerID: "fenced-worker")
        #expect(await Harness.eventually { worker.consumer.shards.count == 4 })
        try await harness.send("before", from: users[0], to: users[1], key: "before")
        try await harness.waitForReplies(["before"])
        // Another owner takes the shard over in Postgres (as after this worker's pause): the next
        // batch on it must not commit, and the worker stops the shard until it holds a lease again.
        let stolen = try await ShardFence.advance(shard: shard, owner: "someone-else", on: harness.database)
        try await harness.send("during", from: users[0], to: users[1], key: "during")
        #expect(await Harness.eventually { worker.consumer.fenced == 1 })
        // The worker takes the shard back (a new lease, a newer epoch) and redoes the entry: stored once, in order.
        try await harness.waitForReplies(["during"], timeout: .seconds(10))
        #expect(harness.replies("during").first?["result"]?["seq"] == 2)
        #expect(worker.coordinator.epochForBatch(shard).map { $0 > stolen } == true)
        #expect(try await harness.database.query("SELECT count(*) AS n FROM messages").int64("n") == 2)
        #expect(await Harness.eventually { try await harness.pendingCount() == 0 })
        await harness.close()
    }

    @Test @LoopActor func whileTheShardCountGrowsANewShardWaitsForItsConversationsOlderCommands() async throws {
        let harness = try await Harness(["COMMAND_SHARDS": "4", "COMMAND_SHARDS_PREVIOUS": "2"])
        let users = try await harness.users(8)
        try await harness.listen(users: users)
        // A conversation that moves: shard 2 or 3 under the new count, shard 0 or 1 under the old.
        var pair: (Int64, Int64)?
        for a in users { for b in users where a < b && pair == nil && harness.shards.shard(directBetween: a, b) >= 2 { pair = (a, b) } }
        let (a, b) = try #require(pair)
        let newShard = harness.shards.shard(directBetween: a, b)
        let oldShard = CommandShards(count: 2, prefix: harness.shards.prefix).shard(directBetween: a, b)
        #expect(harness.configuration.parent(newShard) == oldShard)
        // An old-count gateway appended "first"; a worker read it and died. The old shard's lease is
        // still someone else's for a while, so "first" waits there.
        try await harness.addFields(CommandEnvelope(command: .send(SendMessage(receiverID: b, content: "first", clientMsgID: "first")),
                                                    userID: a, reply: harness.reply("first")).streamFields(), to: harness.shards.stream(oldShard))
        _ = try await harness.deliverToDeadConsumer(count: 1, stream: harness.shards.stream(oldShard))
        _ = try await harness.redis.send(["SET", harness.shards.lease(oldShard), "someone-else", "PX", "1500"])
        // Then the same device, through a new-count gateway, sent "second".
        try await harness.send("second", from: a, to: b, key: "second")
        harness.startConsumer()
        try await harness.waitForReplies(["first", "second"], timeout: .seconds(10))
        #expect(harness.replies("first").first?["result"]?["seq"] == 1)
        #expect(harness.replies("second").first?["result"]?["seq"] == 2)
        #expect(await Harness.eventually { try await harness.pendingCount() == 0 })

        let settings = WorkerConfiguration.settings
        for bad in ["3", "4", "8"] {
            #expect(throws: ConfigurationError.self) {
                try WorkerConfiguration(reader: SettingsReader(settings: settings, environment: [
                    "DATABASE_URL": "postgresql://x@127.0.0.1/x", "COMMAND_SHARDS": "4", "COMMAND_SHARDS_PREVIOUS": bad]))
            }
        }
        await harness.close()
    }

    @Test @LoopActor func roomsAreCreatedJoinedAndLeftThroughTheStream() async throws {
        let harness = try await Harness()
        let users = try await harness.users(3)
        let (a, b, c) = (users[0], users[1], users[2])
        try await harness.listen(users: users)
        harness.startConsumer()
        func result(_ request: String) -> JSONValue? { harness.replies(request).first?["result"] }
        func code(_ request: String) -> JSONValue? { harness.replies(request).first?["error"]?["code"] }

        try await harness.add(.room(.create(name: "  Team ", description: nil, isPrivate: false)), by: a, request: "create")
        try await harness.waitForReplies(["create"])
        let team = try #require(result("create")?["id"]?.int64Value)
        try await harness.listen(rooms: [team])
        #expect(result("create")?["name"] == "Team" && result("create")?["role"] == "admin" && result("create")?["memberCount"] == 1)
        #expect(result("create")?["inviteCode"] == .null, "a public room has no code")

        try await harness.add(.room(.join(roomID: team)), by: b, request: "join")
        try await harness.add(.room(.join(roomID: team)), by: b, request: "again")
        try await harness.waitForReplies(["join", "again"])
        #expect(result("join")?["memberCount"] == 2 && result("join")?["role"] == "member")
        #expect(code("again") == "already_a_member")
        #expect(await Harness.eventually { harness.events(room: team, "memberJoined").count == 1 })
        #expect(harness.arrivals.last { $0.event == "memberJoined" }?.except == b, "the joiner gets roomJoined instead")
        #expect(harness.events(b, "roomJoined").first?["id"] == .int(team))

        // A private room: its code (for admins only) lets c in; a wrong one does not, and without
        // the code the room does not exist for c.
        try await harness.add(.room(.create(name: "Secret", description: "shh", isPrivate: true)), by: a, request: "secret")
        try await harness.waitForReplies(["secret"])
        let secret = try #require(result("secret")?["id"]?.int64Value)
        let invite = try #require(result("secret")?["inviteCode"]?.stringValue)
        #expect(InviteCode.isWellFormed(invite))
        try await harness.add(.room(.join(roomID: secret)), by: c, request: "no-code")
        try await harness.add(.room(.joinByInvite(roomID: secret, code: InviteCode.generate())), by: c, request: "bad-code")
        try await harness.add(.room(.joinByInvite(roomID: secret, code: invite)), by: c, request: "good-code")
        try await harness.waitForReplies(["no-code", "bad-code", "good-code"])
        #expect(code("no-code") == "room_not_found")
        #expect(code("bad-code") == "invite_invalid")
        #expect(result("good-code")?["id"] == .int(secret) && result("good-code")?["inviteCode"] == nil, "members do not see the code")
        // Only admins rotate it; the old code stops working.
        try await harness.add(.room(.rotateInvite(roomID: secret, revoke: false)), by: c, request: "c-rotates")
        try await harness.add(.room(.rotateInvite(roomID: secret, revoke: false)), by: a, request: "a-rotates")
        try await harness.add(.room(.joinByInvite(roomID: secret, code: invite)), by: b, request: "old-code")
        try await harness.waitForReplies(["c-rotates", "a-rotates", "old-code"])
        #expect(code("c-rotates") == "admin_required")
        #expect(result("a-rotates")?["inviteCode"]?.stringValue != invite)
        #expect(code("old-code") == "invite_invalid")

        // The only admin leaves: the oldest member becomes admin; the last member leaving archives the room.
        try await harness.add(.room(.leave(roomID: team)), by: a, request: "a-leaves")
        try await harness.waitForReplies(["a-leaves"])
        #expect(result("a-leaves")?["promoted"] == .int(b))
        #expect(await Harness.eventually { harness.events(room: team, "memberRoleChanged").contains { $0["userId"] == .int(b) && $0["role"] == "admin" } })
        #expect(harness.events(a, "roomLeft").first?["roomId"] == .int(team))
        try await harness.add(.room(.leave(roomID: team)), by: b, request: "b-leaves")
        try await harness.add(.room(.join(roomID: team)), by: c, request: "c-joins-archived")
        try await harness.waitForReplies(["b-leaves", "c-joins-archived"])
        #expect(result("b-leaves")?["archived"] == true)
        #expect(code("c-joins-archived") == "room_not_found")
        let counts = try await harness.database.query("SELECT member_count, archived_at IS NOT NULL AS archived FROM conversations WHERE id = $1",
                                                      [.int64(team)])
        #expect(try counts.int64("member_count") == 0 && counts.bool("archived"))
        await harness.close()
    }

    @Test @LoopActor func roomMessagesReachEveryMemberInOrderWithMembershipChanges() async throws {
        let harness = try await Harness(["WORKER_BATCH_SIZE": "64"])
        let users = try await harness.users(4)
        let (a, b, c, outsider) = (users[0], users[1], users[2], users[3])
        try await harness.listen(users: users)
        harness.startConsumer()
        func send(_ content: String, by user: Int64, to room: Int64, key: String) async throws {
            try await harness.add(.send(SendMessage(target: .room(room), content: content, clientMsgID: key)), by: user, request: key)
        }
        try await harness.add(.room(.create(name: "Chat", description: nil, isPrivate: false)), by: a, request: "create")
        try await harness.waitForReplies(["create"])
        let room = try #require(harness.replies("create").first?["result"]?["id"]?.int64Value)
        try await harness.listen(rooms: [room])
        try await harness.add(.room(.join(roomID: room)), by: b, request: "b-joins")
        try await harness.add(.room(.join(roomID: room)), by: c, request: "c-joins")
        // One stream of commands, queued at once: sends around a removal. c must get the messages
        // sent before its removal and none after, because the removal is applied in stream order.
        try await send("m1", by: a, to: room, key: "m1")
        try await send("m2", by: b, to: room, key: "m2")
        try await harness.add(.room(.removeMember(roomID: room, userID: c)), by: a, request: "remove-c")
        try await send("m3", by: a, to: room, key: "m3")
        try await send("m4", by: c, to: room, key: "m4-removed")
        try await send("m5", by: outsider, to: room, key: "m5-outsider")
        try await send("m1", by: a, to: room, key: "m1")  // a client retry: the same message
        try await harness.waitForReplies(["b-joins", "c-joins", "m1", "m2", "remove-c", "m3", "m4-removed", "m5-outsider"])

        func seq(_ request: String) -> JSONValue? { harness.replies(request).first?["result"]?["seq"] }
        #expect([seq("m1"), seq("m2"), seq("m3")] == [1, 2, 3])
        #expect(harness.replies("m1").first?["result"]?["roomId"] == .int(room))
        #expect(harness.replies("m1").first?["result"]?["receiverId"] == .null)
        #expect(harness.replies("m4-removed").first?["error"]?["code"] == "not_a_member")
        #expect(harness.replies("m5-outsider").first?["error"]?["code"] == "not_a_member")
        #expect(harness.replies("m1").count == 2 && harness.replies("m1")[1]["result"]?["id"] == harness.replies("m1")[0]["result"]?["id"])
        // One publish per message on the room's channel, but for its sender; c's roomLeft is
        // published between m2 and m3, so a gateway stops c's room events before m3 arrives.
        #expect(await Harness.eventually { harness.events(room: room, "receiveMessage").count >= 3 })
        let order = harness.arrivals.compactMap { arrival -> String? in
            if arrival.channel == ChatChannels.room(room), arrival.event == "receiveMessage" {
                return "\(arrival.data["content"]?.stringValue ?? "?") except \(arrival.except.map(String.init) ?? "none")"
            }
            if arrival.channel == ChatChannels.user(c), arrival.event == "roomLeft" { return "c left" }
            return nil
        }
        #expect(Array(order.prefix(4)) == ["m1 except \(a)", "m2 except \(b)", "c left", "m3 except \(a)"], "\(order)")
        #expect(harness.events(a, "messageSent").contains { $0["content"] == "m3" })
        let rows = try await harness.database.query("SELECT seq FROM messages WHERE conversation_id = $1 ORDER BY seq", [.int64(room)])
        #expect(try rows.map { try $0.int64("seq") } == [1, 2, 3])
        await harness.close()
    }

    @Test @LoopActor func aUserInAsManyRoomsAsAllowedCannotCreateJoinOrBeAddedToAnother() async throws {
        let harness = try await Harness()
        let users = try await harness.users(2)
        let store = BatchStore(database: harness.database, roomsPerUser: 2)
        func apply(_ command: RoomCommand, by user: Int64, entry: String) async throws -> ChatReply.Outcome? {
            try await store.apply([BatchCommand(entryID: entry, envelope: CommandEnvelope(command: .room(command), userID: user,
                                                                                          reply: harness.reply(entry)))], fence: [:]).first?.reply?.outcome
        }
        func roomID(_ outcome: ChatReply.Outcome?) -> Int64? { if case .ok(let json)? = outcome { return json["id"]?.int64Value } else { return nil } }
        func code(_ outcome: ChatReply.Outcome?) -> String? { if case .failed(let code, _, _)? = outcome { return code } else { return nil } }
        let first = try #require(roomID(try await apply(.create(name: "one", description: nil, isPrivate: false), by: users[0], entry: "0/1-0")))
        _ = try #require(roomID(try await apply(.create(name: "two", description: nil, isPrivate: false), by: users[0], entry: "0/2-0")))
        #expect(code(try await apply(.create(name: "three", description: nil, isPrivate: false), by: users[0], entry: "0/3-0")) == "too_many_rooms")
        let other = try #require(roomID(try await apply(.create(name: "bob's", description: nil, isPrivate: false), by: users[1], entry: "0/4-0")))
        #expect(code(try await apply(.join(roomID: other), by: users[0], entry: "0/5-0")) == "too_many_rooms")
        #expect(code(try await apply(.addMember(roomID: other, userID: users[0]), by: users[1], entry: "0/6-0")) == "too_many_rooms")
        // Leaving one makes room for another.
        _ = try await apply(.leave(roomID: first), by: users[0], entry: "0/7-0")
        #expect(roomID(try await apply(.join(roomID: other), by: users[0], entry: "0/8-0")) == other)
        await harness.close()
    }

    @Test @LoopActor func aRoomCommandRedeliveredAfterItsCommitIsNotAppliedTwice() async throws {
        let harness = try await Harness()
        let users = try await harness.users(2)
        let store = BatchStore(database: harness.database)
        let create = BatchCommand(entryID: "0/1-0", envelope: CommandEnvelope(
            command: .room(.create(name: "Once", description: nil, isPrivate: false)), userID: users[0], reply: harness.reply("c")))
        let first = try await store.apply([create], fence: [:])
        let room = try #require({ if case .ok(let json)? = first.first?.reply?.outcome { return json["id"]?.int64Value } else { return nil } }())
        let join = BatchCommand(entryID: "3/7-0", envelope: CommandEnvelope(command: .room(.join(roomID: room)), userID: users[1],
                                                                             reply: harness.reply("j")))
        let joined = try await store.apply([join], fence: [:])
        let again = try await store.apply([join], fence: [:])
        #expect(again.first?.reply == joined.first?.reply, "the same answer, not already_a_member")
        #expect(again.first?.events == joined.first?.events, "and the same events, published again")
        #expect(try await harness.database.query("SELECT member_count FROM conversations WHERE id = $1", [.int64(room)]).int64("member_count") == 2)
        #expect(try await store.apply([create], fence: [:]) == first)
        #expect(try await harness.database.query("SELECT count(*) AS n FROM conversations WHERE kind = 'room'").int64("n") == 1)
        await harness.close()
    }

    /// Issue 14: the edit window is the worker's (`EDIT_WINDOW_MS`, measured from the row's
    /// `created_at`), a redelivered edit or delete writes nothing more, and a delete erases the row.
    @Test @LoopActor func editsKeepToTheWindowAndRedeliveryWritesNothingTwice() async throws {
        let harness = try await Harness()
        let users = try await harness.users(2)
        let store = BatchStore(database: harness.database, editWindow: .seconds(60))
        func apply(_ command: ChatCommand, by user: Int64, entry: String) async throws -> ChatReply.Outcome? {
            try await store.apply([BatchCommand(entryID: entry, envelope: CommandEnvelope(command: command, userID: user,
                                                                                          reply: harness.reply(entry)))], fence: [:]).first?.reply?.outcome
        }
        func json(_ outcome: ChatReply.Outcome?) -> JSONValue? { if case .ok(let json)? = outcome { return json } else { return nil } }
        func code(_ outcome: ChatReply.Outcome?) -> String? { if case .failed(let code, _, _)? = outcome { return code } else { return nil } }
        let sent = try #require(json(try await apply(.send(SendMessage(receiverID: users[1], content: "first", clientMsgID: "w1")),
                                                     by: users[0], entry: "0/1-0")))
        let id = try #require(sent["id"]?.int64Value)
        let edited = try #require(json(try await apply(.edit(messageID: id, content: "second"), by: users[0], entry: "0/2-0")))
        #expect(edited["content"] == "second" && edited["version"] == 1)
        let replayed = try #require(json(try await apply(.edit(messageID: id, content: "second"), by: users[0], entry: "0/2-0")))
        #expect(replayed["version"] == 1, "a redelivered edit advances nothing")
        #expect(code(try await apply(.edit(messageID: id, content: "x"), by: users[1], entry: "0/3-0")) == "not_message_sender")
        // Past the window: the row is made older than 60 s.
        try await harness.database.query("UPDATE messages SET created_at = now() - interval '61 seconds' WHERE id = $1", [.int64(id)])
        #expect(code(try await apply(.edit(messageID: id, content: "third"), by: users[0], entry: "0/4-0")) == "edit_window_passed")
        let deleted = try #require(json(try await apply(.delete(messageID: id), by: users[0], entry: "0/5-0")))
        #expect(deleted["isDeleted"] == true && deleted["version"] == 2)
        #expect(json(try await apply(.delete(messageID: id), by: users[0], entry: "0/5-0"))?["version"] == 2)
        #expect(try await harness.database.query("SELECT content FROM messages WHERE id = $1", [.int64(id)]).string("content") == "")
        #expect(code(try await apply(.edit(messageID: id, content: "again"), by: users[0], entry: "0/6-0")) == "message_deleted")
        await harness.close()
    }

    @Test @LoopActor func reprocessingAfterACrashRepublishesTheStoredMessage() async throws {
        let harness = try await Harness()
        let users = try await harness.users(2)
        try await harness.listen(users: users)
        try await harness.send("once", from: users[0], to: users[1], key: "crash", request: "crash")
        // A worker reads the entry, commits it, and dies before publishing and acknowledging.
        let stream = harness.stream(of: .send(SendMessage(receiverID: users[1], content: "", clientMsgID: "")), by: users[0])
        let ids = try await harness.deliverToDeadConsumer(count: 1, stream: stream)
        let fields = StreamEntry.parse(entries: try await harness.redis.send(["XRANGE", stream, "-", "+"]))[0].fields
        let envelope = try CommandEnvelope.decode(fields: fields)
        let committed = try await BatchStore(database: harness.database).apply([BatchCommand(entryID: ids[0], envelope: envelope)], fence: [:])
        guard case .ok(let stored)? = committed.first?.reply?.outcome else {
            Issue.record("not applied")
            return
        }
        #expect(harness.replies("crash").isEmpty)

        let consumer = harness.startConsumer()
        try await harness.waitForReplies(["crash"])
        #expect(consumer.claimed == 1)
        #expect(harness.replies("crash").first?["result"] == stored)
        #expect(try await harness.database.query("SELECT count(*) AS n FROM messages").int64("n") == 1)
        #expect(try await harness.database.query("SELECT last_seq FROM conversations").int64("last_seq") == 1)
        #expect(await Harness.eventually { harness.events(users[1], "receiveMessage").count == 1 })
        #expect(await Harness.eventually { try await harness.pendingCount() == 0 })
        await harness.close()
    }

    @Test @LoopActor func anEntryDeliveredTooOftenGoesToTheDeadLetterStream() async throws {
        let harness = try await Harness(["WORKER_MAX_DELIVERIES": "3"])
        let users = try await harness.users(2)
        try await harness.listen(users: users)
        try await harness.send("crashes workers", from: users[0], to: users[1], key: "poison", request: "poison")
        let stream = harness.stream(of: .send(SendMessage(receiverID: users[1], content: "", clientMsgID: "")), by: users[0])
        let ids = try await harness.deliverToDeadConsumer(count: 1, stream: stream)
        // Two more owners took it over and died too: 3 deliveries (the takeover now is the 4th).
        for name in ["dead-2", "dead-3"] {
            _ = try await harness.redis.send(["XCLAIM", stream, harness.configuration.group, name, "0"] + ids)
        }
        let consumer = harness.startConsumer()
        try await harness.waitForReplies(["poison"])
        #expect(harness.replies("poison").first?["error"]?["code"] == "processing_failed")
        #expect(await Harness.eventually { consumer.deadLettered == 1 })
        #expect(try await harness.database.query("SELECT count(*) AS n FROM messages").int64("n") == 0)
        let dead = StreamEntry.parse(entries: try await harness.redis.send(["XRANGE", harness.configuration.deadLetterStream, "-", "+"]))
        #expect(dead.count == 1)
        func field(_ name: String) -> String? { dead.first?.fields.first { $0.0 == name }.map { String(decoding: $0.1, as: UTF8.self) } }
        #expect(field("origin") == ids.first)
        #expect(field("stream") == stream)
        #expect(field("deliveries") == "4")
        #expect(field("type") == "send")
        #expect(await Harness.eventually { try await harness.pendingCount() == 0 })

        // An undecodable entry is dead-lettered at its first delivery.
        try await harness.addFields(["v", "9", "junk", "x"])
        #expect(await Harness.eventually { consumer.deadLettered == 2 })
        #expect(await Harness.eventually { try await harness.pendingCount() == 0 })
        await harness.close()
    }

    /// Fails the first `failures` batches as if the database were down, then writes through `store`.
    @LoopActor
    private final class UnavailableAtFirst: BatchApplier {
        private let store: any BatchApplier
        private var failures: Int
        private(set) var calls = 0

        init(store: any BatchApplier, failures: Int) {
            self.store = store
            self.failures = failures
        }

        func apply(_ commands: [BatchCommand], fence: [Int: Int64]) async throws -> [CommandOutcome] {
            calls += 1
            if failures > 0 {
                failures -= 1
                throw PostgresError.unavailable("test: database down")
            }
            return try await store.apply(commands, fence: fence)
        }
    }

    @Test @LoopActor func aBatchIsRetriedInPlaceWhileTheDatabaseIsDown() async throws {
        let harness = try await Harness()
        let users = try await harness.users(2)
        try await harness.listen(users: users)
        try await harness.send("after the outage", from: users[0], to: users[1], key: "outage")
        let applier = UnavailableAtFirst(store: BatchStore(database: harness.database), failures: 2)
        let consumer = harness.startConsumer(applier: applier)
        try await harness.waitForReplies(["outage"])
        #expect(harness.replies("outage").first?["ok"] == true)
        #expect(applier.calls == 3)
        #expect(await Harness.eventually { consumer.processed == 1 })
        #expect(consumer.deadLettered == 0)
        #expect(try await harness.database.query("SELECT count(*) AS n FROM messages").int64("n") == 1)
        #expect(await Harness.eventually { try await harness.pendingCount() == 0 })
        await harness.close()
    }

    @Test @LoopActor func trimmingKeepsWhatAnyGroupStillNeeds() async throws {
        let harness = try await Harness(["WORKER_TRIM_INTERVAL_MS": "30"])
        let users = try await harness.users(2)
        try await harness.listen(users: users)
        let stream = harness.stream(of: .send(SendMessage(receiverID: users[1], content: "", clientMsgID: "")), by: users[0])
        // Another group (an audit reader, say) read e0 and e1 and acknowledged only e0; the workers process all.
        try await harness.send("e0", from: users[0], to: users[1], key: "e0")
        try await harness.send("e1", from: users[0], to: users[1], key: "e1")
        _ = try await harness.redis.send(["XGROUP", "CREATE", stream, "audit", "0", "MKSTREAM"])
        let read = StreamEntry.parse(readReply: try await harness.redis.send(["XREADGROUP", "GROUP", "audit", "a", "COUNT", "2", "STREAMS", stream, ">"]))
        #expect(read.count == 2)
        _ = try await harness.redis.send(["XACK", stream, "audit", read[0].id])
        for index in 2...4 { try await harness.send("e\(index)", from: users[0], to: users[1], key: "e\(index)") }
        harness.startConsumer()
        try await harness.waitForReplies(["e0", "e1", "e2", "e3", "e4"])
        #expect(await Harness.eventually {
            StreamEntry.parse(entries: try await harness.redis.send(["XRANGE", stream, "-", "+"])).first?.id == read[1].id
        })
        #expect(StreamEntry.parse(entries: try await harness.redis.send(["XRANGE", stream, "-", "+"])).count == 4)
        #expect(await Harness.eventually { try await harness.pendingCount() == 0 })
        await harness.close()
    }
}
