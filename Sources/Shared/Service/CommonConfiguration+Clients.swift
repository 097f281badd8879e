import Postgres
import Redis

extension PostgresPoolConfiguration {
    /// The pool the process's settings describe; `applicationName` shows in `pg_stat_activity`.
    package init(common: CommonConfiguration, applicationName: String) {
        self.init(url: common.databaseURL, applicationName: applicationName, size: common.databasePoolSize,
                  acquireTimeout: common.databaseAcquireTimeout, connectTimeout: common.databaseConnectTimeout,
                  queryTimeout: common.databaseQueryTimeout)
    }
}

extension RedisConfiguration {
    /// The Redis endpoint the process's settings describe.
    package init(common: CommonConfiguration, clientName: String) throws(RedisError) {
        try self.init(url: common.redisURL)
        if tls != nil { tls = common.redisTLS }
        self.clientName = clientName
        connectTimeout = common.redisConnectTimeout
        commandTimeout = common.redisCommandTimeout
    }
}
