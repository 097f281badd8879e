import Runtime

/// Finds the current primary through Redis Sentinel (`redis+sentinel://`, issue 18).
///
/// Every connection attempt asks first: the sentinels in the order given, the first that knows
/// the primary answers (`SENTINEL get-master-addr-by-name`). The new connection then checks it
/// reached a primary (`ROLE`), since a sentinel may answer with a stale address during a
/// failover. When the primary goes away its connections drop (or, demoted without dropping, its
/// writes answer `READONLY`, which closes the connection: `RedisConnection`), and reconnecting
/// asks again. Sentinels are asked without `AUTH`; the URL's credentials are the data nodes'.
@LoopActor
enum RedisSentinel {
    /// The primary's address as a plain configuration (no `sentinel`), or why none was found.
    static func primary(for configuration: RedisConfiguration) async -> Result<RedisConfiguration, RedisConnectFailure> {
        guard let sentinel = configuration.sentinel else { return .success(configuration) }
        var reasons: [String] = []
        for node in sentinel.nodes {
            var nodeConfiguration = RedisConfiguration(host: node.host, port: node.port)
            nodeConfiguration.connectTimeout = configuration.connectTimeout
            nodeConfiguration.commandTimeout = min(configuration.commandTimeout, configuration.connectTimeout)
            nodeConfiguration.keepAliveSeconds = 0
            // rediss+sentinel://: the sentinels speak TLS too, verified by the same authorities
            // (the server name, if set, is the data nodes').
            nodeConfiguration.tls = configuration.tls.map { tls in
                var sentinelTLS = tls
                sentinelTLS.serverName = nil
                return sentinelTLS
            }
            let connection = RedisConnection(configuration: nodeConfiguration)
            defer { connection.close() }
            do throws(RedisError) {
                try await connection.open()
                let reply = try await connection.send(["SENTINEL", "get-master-addr-by-name", sentinel.primaryName])
                guard let pair = reply.array, pair.count == 2, let host = pair[0].string, let portText = pair[1].string,
                      let port = Int(portText), (1...65_535).contains(port), !host.isEmpty else {
                    reasons.append("\(nodeConfiguration.endpointDescription): does not know \(sentinel.primaryName)")
                    continue
                }
                var primary = configuration
                primary.sentinel = nil
                primary.host = host
                primary.port = port
                return .success(primary)
            } catch {
                reasons.append(connection.failureReason ?? "\(nodeConfiguration.endpointDescription): \(error)")
            }
        }
        return .failure(RedisConnectFailure(reason: "no sentinel named the primary \(sentinel.primaryName): "
                                            + reasons.joined(separator: "; ")))
    }

    /// Whether `connection` reached a primary (`ROLE` says `master`); the reason when it did not.
    static func checkPrimary(_ connection: RedisConnection) async -> String? {
        do throws(RedisError) {
            let role = try await connection.send(["ROLE"])
            guard let kind = role.array?.first?.string else { return "unexpected ROLE reply" }
            return kind == "master" ? nil : "not the primary (ROLE says \(kind)); asking the sentinels again"
        } catch {
            return "ROLE failed: \(error)"
        }
    }
}

/// A connect attempt that failed before a connection existed.
struct RedisConnectFailure: Error {
    let reason: String
}
