/// Connection commands (the handshake and health checks), as typed builders of `RedisCommand`.
extension RedisCommand {
    /// `PING`: answered `PONG` by a server that is up.
    package static func ping() -> RedisCommand {
        RedisCommand(["PING"])
    }

    /// `AUTH [<username>] <password>`: without a username, the `default` user (and Redis before 6).
    package static func auth(username: String?, password: String) -> RedisCommand {
        if let username { return RedisCommand(["AUTH", username, password]) }
        return RedisCommand(["AUTH", password])
    }

    /// `SELECT <database>`: the logical database of the connection.
    package static func select(database: Int) -> RedisCommand {
        RedisCommand(["SELECT", String(database)])
    }

    /// `CLIENT SETNAME <name>`: the name `CLIENT LIST` shows for the connection.
    package static func clientSetName(_ name: String) -> RedisCommand {
        RedisCommand(["CLIENT", "SETNAME", name])
    }
}
