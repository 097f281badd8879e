import Runtime
import Support

/// The process's pub/sub connection to Redis, separate from the command connection (a subscribed
/// connection accepts nothing but (UN)SUBSCRIBE).
///
/// It keeps the set of channels the process wants. After a reconnect it subscribes all of them again
/// and then calls `onResubscribed`: messages published while it was away are lost (pub/sub is
/// at-most-once), so the owner tells its clients to resync. Channels are a set, not reference
/// counted: the owner counts its own users of a channel.
///
/// Liveness: a subscribed connection sends nothing, so a silently dead peer is detected by TCP
/// keepalive (`keepAliveSeconds`).
@LoopActor
package final class RedisSubscriber {
    private let connector: RedisConnector
    private let onMessage: @LoopActor (_ channel: String, _ payload: [UInt8]) -> Void

    /// The channels the owner wants, whether or not Redis confirmed them yet.
    package private(set) var channels: Set<String> = []
    /// Called after a (re)connection subscribed every wanted channel again (only if there was one).
    package var onResubscribed: (@LoopActor () -> Void)?
    /// Called when the subscription connection is lost, with the reason; reconnecting is scheduled.
    package var onDisconnected: (@LoopActor (RedisError) -> Void)?

    /// A subscriber delivering every message of a wanted channel to `onMessage`; call `start()`.
    package init(
        configuration: RedisConfiguration,
        onMessage: @escaping @LoopActor (_ channel: String, _ payload: [UInt8]) -> Void
    ) {
        connector = RedisConnector(configuration: configuration)
        self.onMessage = onMessage
        connector.onConnected = { [weak self] connection in self?.didConnect(connection) }
        connector.onDisconnected = { [weak self] error in self?.onDisconnected?(error) }
    }

    /// Where failed connection attempts (and why) and recoveries are logged; nil: silent.
    package var logger: Logger? {
        get { connector.logger }
        set { connector.logger = newValue }
    }

    /// Starts connecting in the background (and reconnecting whenever needed). Idempotent.
    package func start() {
        connector.start()
    }

    /// Whether the subscription connection is up.
    package var isConnected: Bool { connector.connection != nil }

    /// Waits until connected, at most `timeout`; returns whether connected.
    package func waitUntilConnected(timeout: Duration) async -> Bool {
        await connector.waitUntilConnected(timeout: timeout)
    }

    /// The last connect/connection failure (nil once connected again).
    package var lastError: RedisError? { connector.lastError }

    /// The last failure in words, for logs.
    package var lastFailureReason: String? { connector.lastFailureReason }

    /// Adds `channel` to the wanted set and returns once Redis confirmed the subscription, so the
    /// caller can rely on "subscribed before I answer". While disconnected the wish is kept (it is
    /// subscribed on reconnect) and `.unavailable` is thrown; `.timeout`/`.connectionLost` likewise keep it.
    package func subscribe(_ channel: String) async throws(RedisError) {
        try await subscribe([channel])
    }

    /// `subscribe` for several channels at once (one round trip).
    package func subscribe(_ channels: [String]) async throws(RedisError) {
        self.channels.formUnion(channels)
        guard let connection = connector.connection else { throw .unavailable }
        try await connection.subscribe(channels)
    }

    /// Removes `channel` from the wanted set: its messages stop reaching `onMessage` at once, and
    /// this returns once Redis confirmed (or at once when disconnected).
    package func unsubscribe(_ channel: String) async {
        await unsubscribe([channel])
    }

    /// `unsubscribe` for several channels at once.
    package func unsubscribe(_ channels: [String]) async {
        self.channels.subtract(channels)
        guard let connection = connector.connection else { return }
        // A failure here means the connection died, which drops every subscription anyway.
        try? await connection.unsubscribe(channels)
    }

    /// Closes the connection and stops reconnecting.
    package func close() {
        connector.close()
    }

    private func didConnect(_ connection: RedisConnection) {
        connection.onMessage = { [weak self] channel, payload in
            // Filtered here so unsubscribe() takes effect before Redis confirms it.
            guard let self, self.channels.contains(channel) else { return }
            self.onMessage(channel, payload)
        }
        let wanted = Array(channels)
        guard !wanted.isEmpty else { return }
        Task.onLoop { [weak self] in
            do throws(RedisError) {
                try await connection.subscribe(wanted)
            } catch {
                return  // the connection died; the connector reconnects and this runs again
            }
            guard let self, self.connector.connection === connection else { return }
            self.onResubscribed?()
        }
    }
}
