import Shared

extension GatewayMetrics {
    /// Registers the gateway's own families (after `ChatMetrics.registerCommon()`), with gauges read from `server` and `realtime` at scrape time.
    static func register(server: HTTPServer, realtime: RealtimeHub) {
        _ = socketEventsIn
        _ = publishedEventsDelivered
        _ = commandsRefused
        let registry = MetricsRegistry.shared
        _ = registry.gauge("chat_open_connections", help: "Open client connections (HTTP and upgraded).") { [weak server] in
            Double(server?.connectionCount ?? 0)
        }
        let cap = Double(server.maxConnections)
        _ = registry.gauge("chat_max_connections", help: "The connection cap in force (MAX_CONNECTIONS, lowered to fit the descriptor limit).") { cap }
        _ = registry.gauge("chat_sockets", help: "Connected Socket.IO sessions on this gateway.") { [weak realtime] in
            Double(realtime?.sessionCount ?? 0)
        }
        _ = registry.gauge("chat_connected_users", help: "Distinct users with at least one socket on this gateway.") { [weak realtime] in
            Double(realtime?.channels.userCount ?? 0)
        }
    }
}
