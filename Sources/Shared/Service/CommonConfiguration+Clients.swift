import Postgres
import Redis

extension PostgresPoolConfiguration {
    /// The pool the process's settings describe; `applicationName` shows in `pg_stat_activity`.
    package init(common: CommonConfiguration, applicationName: String) {
        self.init(url: common.databaseURL, applicationName: applicationName, size: common.databasePoolSize,
                  acquireTimeoutMilliseconds: Int64(common.databaseAcquireTimeoutMilliseconds),
                  connectTimeoutMilliseconds: Int64(common.databaseConnectTimeoutMilliseconds),
                  queryTimeoutMilliseconds: Int64(common.databaseQueryTimeoutMilliseconds))
    }
}

extension RedisConfiguration {
    /// The Redis endpoint the process's settings describe.
    package init(common: CommonConfiguration, clientName: String) throws(RedisError) {
        try self.init(url: common.redisURL)
        self.clientName = clientName
        connectTimeoutMilliseconds = Int64(common.redisConnectTimeoutMilliseconds)
        commandTimeoutMilliseconds = Int64(common.redisCommandTimeoutMilliseconds)
    }
}
