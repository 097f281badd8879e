import Glibc
import Testing
@testable import Shared

/// Shared helpers of the Postgres integration tests (real server from `TEST_DATABASE_URL`).
enum PostgresTestDatabase {
    struct MissingEnvironment: Error, CustomStringConvertible {
        let description: String
    }

    /// `TEST_DATABASE_URL`, or an error that fails the test with instructions.
    static func url() throws -> String {
        guard let raw = getenv("TEST_DATABASE_URL"), !String(cString: raw).isEmpty else {
            throw MissingEnvironment(description: """
                TEST_DATABASE_URL is not set: start PostgreSQL (e.g. `scripts/lib/services.sh .data pg-start`) \
                and export TEST_DATABASE_URL=postgresql://user@127.0.0.1:PORT/db
                """)
        }
        return String(cString: raw)
    }

    /// A name no other test (or test run) uses.
    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UInt32.random(in: 0...UInt32.max))_\(getpid())"
    }

    static func configuration(_ url: String, applicationName: String = uniqueName("pgtest"),
                              queryTimeout: Duration = .milliseconds(10_000)) -> PostgresConnectionConfiguration {
        PostgresConnectionConfiguration(url: url, applicationName: applicationName,
                                        queryTimeout: queryTimeout)
    }

    /// Runs `body` and returns the `PostgresError` it threw, or nil.
    @LoopActor
    static func error<T>(_ body: @LoopActor () async throws -> T) async -> PostgresError? {
        do {
            _ = try await body()
            return nil
        } catch let error as PostgresError {
            return error
        } catch {
            Issue.record("unexpected error type: \(error)")
            return nil
        }
    }

    static func milliseconds(since start: UInt64) -> UInt64 { (MonotonicClock.now() - start) / 1_000_000 }
}

/// `PostgresConnection` against a real server.
@Suite struct PostgresConnectionTests {
    init() { EventLoop.shared.startInBackground() }

    @Test @LoopActor func connectsAndRunsAQuery() async throws {
        let connection = try await PostgresConnection.connect(PostgresTestDatabase.configuration(try PostgresTestDatabase.url()))
        #expect(connection.isIdle)
        #expect((connection.serverVersion ?? 0) >= 120_000)
        #expect(connection.backendPID != nil)
        let rows = try await connection.query("SELECT 1::int AS one, current_setting('application_name') AS app")
        #expect(try rows.int64("one") == 1)
        #expect(try rows.string("app").hasPrefix("pgtest_"))
        #expect(rows.commandTag == "SELECT 1")
        connection.close()
        #expect(connection.state == .closed)
        #expect(await PostgresTestDatabase.error { try await connection.query("SELECT 1") } == .unavailable("connection is closed"))
    }

    @Test @LoopActor func keyValueStringsAndMultipleHostsWork() async throws {
        let url = try PostgresTestDatabase.url()
        let probe = try await PostgresConnection.connect(PostgresTestDatabase.configuration(url))
        let info = try await probe.query(
            "SELECT host(inet_server_addr()) AS host, inet_server_port() AS port, current_user AS u, current_database() AS db")
        probe.close()
        guard let host = try info[0].optionalString("host"), let port = try info[0].optionalInt("port") else {
            return  // connected over a Unix socket: no TCP address to build a key=value string from
        }
        let user = try info.string("u"), database = try info.string("db")
        // First host refuses (port 1), libpq moves on to the second: a new socket mid-connect.
        let keyValue = "host=\(host),\(host) port=1,\(port) user=\(user) dbname=\(database)"
        let connection = try await PostgresConnection.connect(PostgresTestDatabase.configuration(keyValue))
        #expect(try await connection.query("SELECT 2 AS two").int64("two") == 2)
        connection.close()
    }

    @Test @LoopActor func everyParameterKindRoundTrips() async throws {
        let connection = try await PostgresConnection.connect(PostgresTestDatabase.configuration(try PostgresTestDatabase.url()))
        defer { connection.close() }
        let text = "héllo 🌍 日本語 'quoted' \"double\" \\backslash"
        let bytes = (0...255).map { UInt8($0) }
        let rows = try await connection.query(
            "SELECT $1::text AS s, $2::bigint AS i, $3::float8 AS d, $4::bool AS b, $5::bytea AS y, $6::text AS n, "
                + "$7 AS untyped_int, $8::int AS small, $9::float8 AS inf, $10::timestamptz AS ts",
            [.string(text), .int64(Int64.min), .double(0.1), .bool(true), .bytes(bytes), nil,
             .int64(Int64.max), 7, .double(.infinity), "2024-05-01T12:00:00Z"])
        let row = rows[0]
        #expect(try row.string("s") == text)
        #expect(try row.int64("i") == Int64.min)
        #expect(try row.double("d") == 0.1)
        #expect(try row.bool("b") == true)
        #expect(try row.bytes("y") == bytes)
        #expect(try row.isNull("n"))
        #expect(try row.optionalString("n") == nil)
        #expect(try row.int64("untyped_int") == Int64.max)
        #expect(try row.int("small") == 7)
        #expect(try row.double("inf") == .infinity)
        #expect(try row.string("ts").hasPrefix("2024-05-01"))
        #expect(rows.columnTypes[0] == 25 && rows.columnTypes[1] == 20)
    }

    @Test @LoopActor func injectionAttemptStaysData() async throws {
        let connection = try await PostgresConnection.connect(PostgresTestDatabase.configuration(try PostgresTestDatabase.url()))
        defer { connection.close() }
        try await connection.query("CREATE TEMP TABLE victims (name text NOT NULL)")
        let attack = "x'); DROP TABLE victims; --"
        let inserted = try await connection.query("INSERT INTO victims (name) VALUES ($1)", [.string(attack)])
        #expect(inserted.affectedRows == 1)
        #expect(inserted.commandTag == "INSERT 0 1")
        let rows = try await connection.query("SELECT name FROM victims WHERE name = $1", [.string(attack)])
        #expect(try rows.string("name") == attack)
        let stacked = try await connection.query("SELECT $1::text AS v", ["1; SELECT pg_sleep(5)"])
        #expect(try stacked.string("v") == "1; SELECT pg_sleep(5)")
    }

    @Test @LoopActor func interpolatedQueryBindsItsValues() async throws {
        let url = try PostgresTestDatabase.url()
        let connection = try await PostgresConnection.connect(PostgresTestDatabase.configuration(url))
        defer { connection.close() }
        let attack = "x'); DROP TABLE users; --"
        let missing: String? = nil
        let query: PostgresQuery = """
            SELECT \(attack)::text AS s, \(Int64.max) AS i, \(missing)::text AS n, \(unescaped: "'spliced'") AS u,
                   cardinality(\(integers: [Int64(1), 2, 3])) AS ints, (\(texts: ["a", #"b"c"#]))[2] AS second
            """
        let row = try await connection.query(query)[0]
        #expect(try row.string("s") == attack)
        #expect(try row.int64("i") == Int64.max)
        #expect(try row.isNull("n"))
        #expect(try row.string("u") == "spliced")
        #expect(try row.int64("ints") == 3)
        #expect(try row.string("second") == #"b"c"#)

        let pool = PostgresPool(configuration: PostgresPoolConfiguration(url: url, applicationName: PostgresTestDatabase.uniqueName("pgquery"), size: 1))
        defer { pool.close() }
        let doubled: PostgresQuery = "SELECT \(21)::int * 2 AS v"
        #expect(try await pool.query(doubled).int64("v") == 42)
    }

    @Test @LoopActor func byteaColumnRoundTrip() async throws {
        let connection = try await PostgresConnection.connect(PostgresTestDatabase.configuration(try PostgresTestDatabase.url()))
        defer { connection.close() }
        try await connection.query("CREATE TEMP TABLE blobs (id int PRIMARY KEY, data bytea)")
        let payload = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try await connection.query("INSERT INTO blobs VALUES ($1, $2), ($3, $4)", [1, .bytes(payload), 2, .bytes([])])
        let rows = try await connection.query("SELECT id, data, length(data) AS n FROM blobs ORDER BY id")
        #expect(try rows[0].bytes("data") == payload)
        #expect(try rows[0].int("n") == payload.count)
        #expect(try rows[1].bytes("data") == [])
    }

    @Test @LoopActor func largeStatementsAndResultsTravelInPieces() async throws {
        let connection = try await PostgresConnection.connect(PostgresTestDatabase.configuration(try PostgresTestDatabase.url()))
        defer { connection.close() }
        // 8 MB of parameters exceed the socket buffer: PQflush must report "pending" and resume on writable.
        let big = String(repeating: "abcdefgh", count: 512 * 1024)
        let echoed = try await connection.query("SELECT length($1::text) AS n, md5($1::text) = md5($2::text) AS same",
                                                [.string(big), .string(big)])
        #expect(try echoed.int64("n") == Int64(big.utf8.count))
        #expect(try echoed.bool("same"))
        let many = try await connection.query("SELECT g AS n, repeat('x', 100) AS pad FROM generate_series(1, 50000) AS g")
        #expect(many.count == 50_000)
        #expect(try many[49_999].int64("n") == 50_000)
    }

    @Test @LoopActor func uniqueViolationCarriesSQLStateAndConstraint() async throws {
        let connection = try await PostgresConnection.connect(PostgresTestDatabase.configuration(try PostgresTestDatabase.url()))
        defer { connection.close() }
        try await connection.query("""
            CREATE TEMP TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                     username text NOT NULL CONSTRAINT users_username_key UNIQUE)
            """)
        try await connection.query("INSERT INTO users (username) VALUES ($1)", ["alice"])
        let error = await PostgresTestDatabase.error {
            try await connection.query("INSERT INTO users (username) VALUES ($1)", ["alice"])
        }
        guard case .server(let serverError) = error else {
            Issue.record("expected a server error, got \(String(describing: error))")
            return
        }
        #expect(error?.isUniqueViolation == true)
        #expect(serverError.sqlState == "23505")
        #expect(serverError.constraint == "users_username_key")
        #expect(serverError.table == "users")
        #expect(serverError.detail?.contains("alice") == true)
        #expect(serverError.severity == "ERROR")
        // A server error leaves the connection usable.
        #expect(connection.isReusable)
        #expect(try await connection.query("SELECT count(*) AS n FROM users").int64("n") == 1)
    }

    @Test @LoopActor func syntaxErrorAndBadParametersKeepTheConnection() async throws {
        let connection = try await PostgresConnection.connect(PostgresTestDatabase.configuration(try PostgresTestDatabase.url()))
        defer { connection.close() }
        #expect(await PostgresTestDatabase.error { try await connection.query("SELEC 1") }?.sqlState == "42601")
        #expect(await PostgresTestDatabase.error { try await connection.query("SELECT $1::int", ["abc"]) }?.sqlState == "22P02")
        guard case .invalidParameter(index: 1, _) = await PostgresTestDatabase.error({
            try await connection.query("SELECT $1::text, $2::text", ["ok", "nul\u{0}byte"])
        }) else {
            Issue.record("expected invalidParameter for $2")
            return
        }
        #expect(try await connection.query("SELECT 3 AS three").int64("three") == 3)
    }

    @Test @LoopActor func scriptsRunSeveralStatementsAtomically() async throws {
        let connection = try await PostgresConnection.connect(PostgresTestDatabase.configuration(try PostgresTestDatabase.url()))
        defer { connection.close() }
        let last = try await connection.execute(script: """
            CREATE TEMP TABLE items (id int PRIMARY KEY, label text);
            INSERT INTO items VALUES (1, 'a'), (2, 'b');
            SELECT count(*) AS n FROM items;
            """)
        #expect(try last.int64("n") == 2)
        let error = await PostgresTestDatabase.error {
            try await connection.execute(script: "INSERT INTO items VALUES (3, 'c'); INSERT INTO items VALUES (1, 'dup');")
        }
        #expect(error?.isUniqueViolation == true)
        // One implicit transaction: the first INSERT was rolled back with the second.
        #expect(try await connection.query("SELECT count(*) AS n FROM items").int64("n") == 2)
    }

    @Test @LoopActor func transactionsCommitAndRollBack() async throws {
        struct Abort: Error {}
        let connection = try await PostgresConnection.connect(PostgresTestDatabase.configuration(try PostgresTestDatabase.url()))
        defer { connection.close() }
        try await connection.query("CREATE TEMP TABLE ledger (id int PRIMARY KEY)")
        try await connection.transaction { connection in
            try await connection.query("INSERT INTO ledger VALUES (1)")
        }
        await #expect(throws: Abort.self) {
            try await connection.transaction { connection in
                try await connection.query("INSERT INTO ledger VALUES (2)")
                throw Abort()
            }
        }
        #expect(!connection.isInTransaction)
        // A statement error swallowed inside the body must not look like a commit.
        let swallowed = await PostgresTestDatabase.error {
            try await connection.transaction { connection in
                try await connection.query("INSERT INTO ledger VALUES (3)")
                _ = try? await connection.query("INSERT INTO ledger VALUES (1)")
            }
        }
        #expect(swallowed?.sqlState == PostgresSQLState.inFailedSQLTransaction)
        let ids = try await connection.query("SELECT id FROM ledger ORDER BY id").map { try $0.int("id") }
        #expect(ids == [1])
    }

    @Test @LoopActor func noticesAreKeptOffStderr() async throws {
        let connection = try await PostgresConnection.connect(PostgresTestDatabase.configuration(try PostgresTestDatabase.url()))
        defer { connection.close() }
        let before = connection.noticeCount
        try await connection.query("DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$")
        #expect(connection.noticeCount == before + 1)
        #expect(connection.lastNotice?.contains("hello from plpgsql") == true)
    }

    @Test @LoopActor func queryTimeoutClosesTheConnection() async throws {
        let connection = try await PostgresConnection.connect(PostgresTestDatabase.configuration(try PostgresTestDatabase.url()))
        let start = MonotonicClock.now()
        let error = await PostgresTestDatabase.error {
            try await connection.query("SELECT pg_sleep(2)", timeout: .milliseconds(200))
        }
        let elapsed = PostgresTestDatabase.milliseconds(since: start)
        #expect(error == .timeout)
        #expect(elapsed >= 190 && elapsed < 1_500)
        #expect(connection.state == .failed(.timeout))
        guard case .unavailable = await PostgresTestDatabase.error({ try await connection.query("SELECT 1") }) else {
            Issue.record("a timed-out connection must refuse further statements")
            return
        }
    }

    @Test @LoopActor func secondConcurrentQueryIsMisuse() async throws {
        let connection = try await PostgresConnection.connect(PostgresTestDatabase.configuration(try PostgresTestDatabase.url()))
        defer { connection.close() }
        let first = Task { @LoopActor in try await connection.query("SELECT pg_sleep(0.2), 1 AS one") }
        await EventLoop.shared.sleep(for: .milliseconds(20))
        guard case .misuse = await PostgresTestDatabase.error({ try await connection.query("SELECT 2") }) else {
            Issue.record("expected misuse")
            return
        }
        #expect(try await first.value.int64("one") == 1)
    }

    @Test @LoopActor func refusedConnectionIsUnavailableQuickly() async throws {
        let start = MonotonicClock.now()
        let error = await PostgresTestDatabase.error {
            try await PostgresConnection.connect(PostgresConnectionConfiguration(url: "postgresql://nobody@127.0.0.1:1/none"))
        }
        guard case .unavailable(let message) = error else {
            Issue.record("expected unavailable, got \(String(describing: error))")
            return
        }
        #expect(message.contains("refused") || message.contains("127.0.0.1"))
        // Far below the 5 s connect timeout: a refusal is reported at once, not waited out.
        #expect(PostgresTestDatabase.milliseconds(since: start) < 2_500)
    }

    @Test @LoopActor func connectTimeoutIsEnforced() async throws {
        // A listener that never accepts: the TCP handshake completes (backlog) but no startup reply comes.
        let listener = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        _ = listen(listener, 8)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let port = UInt16(bigEndian: address.sin_port)
        let start = MonotonicClock.now()
        let error = await PostgresTestDatabase.error {
            try await PostgresConnection.connect(PostgresConnectionConfiguration(
                url: "postgresql://nobody@127.0.0.1:\(port)/none?sslmode=disable", connectTimeout: .milliseconds(300)))
        }
        let elapsed = PostgresTestDatabase.milliseconds(since: start)
        #expect(error == .unavailable("could not connect within 300 ms"))
        #expect(elapsed >= 290 && elapsed < 1_500)
    }
}
