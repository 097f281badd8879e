import Shared

/// The gateway's own metric families (the shared ones are in `ChatMetrics`).
@LoopActor
enum GatewayMetrics {
    /// Socket.IO event names with their own series; anything else is counted as `other` so a
    /// client cannot grow the label set.
    static let knownEvents: Set<String> = Set(SocketEvent.client.map(\.name))

    /// Socket.IO events received from clients, by event name.
    static let socketEventsIn = MetricsRegistry.shared.counter(
        "chat_socket_events_in_total", help: "Socket.IO events received from clients, by event name (unknown names as other).",
        labelName: "event", initialLabels: knownEvents.sorted() + ["other"])

    /// Event names the workers and gateways publish to users; anything else is counted as `other`.
    nonisolated static let publishedEvents: Set<String> = Set(SocketEvent.server.map(\.name))

    /// Published events written to local sockets (one per socket), by event name.
    static let publishedEventsDelivered = MetricsRegistry.shared.counter(
        "chat_published_events_delivered_total", help: "Published events written to local sockets, one per socket, by event name.",
        labelName: "event", initialLabels: publishedEvents.sorted() + ["other"])

    /// Socket.IO acks of room message deliveries that confirmed receipt (issue 13).
    static let deliveryAcks = MetricsRegistry.shared.counter(
        "chat_delivery_acks_total", help: "Socket.IO acks of room messages that confirmed their delivery to a member's device.")

    /// Long-polling requests relayed to the gateway owning their session (issue 15), by outcome.
    static let pollingRelays = MetricsRegistry.shared.counter(
        "chat_polling_relays_total", help: "Long-polling requests relayed to the gateway owning their session, by outcome.",
        labelName: "outcome", initialLabels: ["relayed", "owner_gone", "timeout", ErrorCode.redisUnavailable.name])

    /// Reconnecting clients that presented a recovery pid (issue 15), by outcome.
    static let recoveries = MetricsRegistry.shared.counter(
        "chat_socket_recoveries_total", help: "CONNECTs with a connection state recovery pid, by outcome (recovered, or told to resync).",
        labelName: "outcome", initialLabels: ["recovered", "resync"])

    /// Engine.IO sessions by transport at the time they connected, and completed upgrades.
    static let engineSessions = MetricsRegistry.shared.counter(
        "chat_engine_sessions_total", help: "Engine.IO sessions opened, by first transport; upgrades from polling to WebSocket; sessions taken over from another gateway at their upgrade.",
        labelName: "kind", initialLabels: ["websocket", "polling", "upgrade", "transfer"])

    /// Writes refused because too many wait for a worker's reply on this gateway (issue 17).
    static let commandsRefused = MetricsRegistry.shared.counter(
        "chat_commands_refused_total", help: "Writes refused with overloaded because MAX_PENDING_COMMANDS wait for a worker's reply on this gateway.")

    /// The label for a published event name: itself when known, else `other`.
    nonisolated static func publishedLabel(_ name: String) -> String {
        publishedEvents.contains(name) ? name : "other"
    }

    /// The label for an event name: itself when known, else `other`.
    static func eventLabel(_ name: String) -> String {
        knownEvents.contains(name) ? name : "other"
    }
}
