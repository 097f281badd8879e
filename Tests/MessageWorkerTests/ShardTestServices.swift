import Glibc
import Testing
@testable import MessageWorker
@testable import Shared

/// The real servers of the shard suites: a Redis database of their own (flushed per test) and a
/// PostgreSQL schema of their own (migrated per test).
@LoopActor
enum ShardTestServices {
    struct SetupFailure: Error, CustomStringConvertible {
        let description: String
    }

    /// A connected client on `database` of the `TEST_REDIS_URL` server, emptied.
    static func flushedRedis(database: Int) async throws -> RedisClient {
        guard let raw = getenv("TEST_REDIS_URL"), raw.pointee != 0 else {
            throw SetupFailure(description: "TEST_REDIS_URL is not set: start a throwaway redis-server and export it")
        }
        var configuration = try RedisConfiguration(url: String(cString: raw))
        configuration.database = database
        let client = RedisClient(configuration: configuration)
        client.start()
        guard await client.waitUntilConnected(timeout: .seconds(3)) else { throw SetupFailure(description: "cannot connect to Redis") }
        _ = try await client.send(["FLUSHDB"])
        return client
    }

    /// A schema of its own on `TEST_DATABASE_URL` with the chat migrations applied.
    @LoopActor
    final class Schema {
        let pool: PostgresPool
        private let admin: PostgresPool
        private let name: String

        init(poolSize: Int) async throws {
            guard let raw = getenv("TEST_DATABASE_URL"), raw.pointee != 0 else {
                throw SetupFailure(description: "TEST_DATABASE_URL is not set: start PostgreSQL and export it")
            }
            let url = String(cString: raw)
            name = "shards_\(UInt32.random(in: 0...UInt32.max))_\(getpid())"
            admin = PostgresPool(configuration: PostgresPoolConfiguration(url: url, size: 1))
            try await admin.query("CREATE SCHEMA \(name)")
            pool = PostgresPool(configuration: PostgresPoolConfiguration(url: url, size: poolSize, parameters: ["options": "-c search_path=\(name)"]))
            _ = try await PostgresMigrator.migrate(pool: pool, migrations: ChatSchema.migrations)
        }

        /// Closes the pool and drops the schema.
        func drop() async throws {
            pool.close()
            try await admin.query("DROP SCHEMA \(name) CASCADE")
            admin.close()
        }
    }
}
