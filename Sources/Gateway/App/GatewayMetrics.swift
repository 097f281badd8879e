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

    /// The label for a published event name: itself when known, else `other`.
    nonisolated static func publishedLabel(_ name: String) -> String {
        publishedEvents.contains(name) ? name : "other"
    }

    /// The label for an event name: itself when known, else `other`.
    static func eventLabel(_ name: String) -> String {
        knownEvents.contains(name) ? name : "other"
    }
}
