import Runtime
import Support

/// The process's command connection to Redis, reconnecting by itself.
///
/// While disconnected every command fails at once with `.unavailable` (answer HTTP 503
/// `redis_unavailable`): nothing is queued for later, so memory stays bounded and callers decide.
/// Reconnection uses exponential backoff with jitter, forever, and starts from the minimum again after
/// a success.
///
/// Error replies: `send` and `evaluate` **throw** them as `RedisError.server(message)`; `pipeline`
/// returns them in place as `RedisValue.error` so one failing command does not hide the others.
@LoopActor
package final class RedisClient {
    private let connector: RedisConnector

    /// Called each time a connection becomes ready (first connect and every reconnect).
    package var onConnected: (@LoopActor () -> Void)?
    /// Called when the ready connection is lost, with the reason; reconnecting is already scheduled.
    package var onDisconnected: (@LoopActor (RedisError) -> Void)?
    /// Whether commands are timed into `chat_redis_command_duration_seconds`. Off for a client that
    /// sends blocking commands (`XREADGROUP ... BLOCK`): their waits are not latency.
    package var recordsLatency = true

    /// A client for `configuration`; call `start()` to connect.
    package init(configuration: RedisConfiguration) {
        connector = RedisConnector(configuration: configuration)
        connector.onConnected = { [weak self] _ in self?.onConnected?() }
        connector.onDisconnected = { [weak self] error in self?.onDisconnected?(error) }
    }

    /// The configuration in use.
    package var configuration: RedisConfiguration { connector.configuration }

    /// Where failed connection attempts (and why) and recoveries are logged; nil: silent.
    package var logger: Logger? {
        get { connector.logger }
        set { connector.logger = newValue }
    }

    /// Starts connecting in the background (and reconnecting whenever needed). Idempotent.
    package func start() {
        connector.start()
    }

    /// Whether a ready connection exists right now.
    package var isConnected: Bool { connector.connection != nil }

    /// The last connect/connection failure (nil once connected again).
    package var lastError: RedisError? { connector.lastError }

    /// The last failure in words (e.g. `127.0.0.1:6379: Connection refused`), for logs.
    package var lastFailureReason: String? { connector.lastFailureReason }

    /// Waits until connected, at most `timeout`; returns whether connected.
    package func waitUntilConnected(timeout: Duration) async -> Bool {
        await connector.waitUntilConnected(timeout: timeout)
    }

    // MARK: Commands

    /// Sends one command. Throws `.unavailable` at once when not connected, `.server` for an error
    /// reply, `.timeout`/`.connectionLost` when the reply never came.
    package func send(_ command: RedisCommand) async throws(RedisError) -> RedisValue {
        guard let connection = connector.connection else { throw .unavailable }
        let started = MonotonicClock.now()
        defer { if recordsLatency { RedisMetrics.commandDuration.observeSince(started) } }
        return try await connection.send(command)
    }

    /// Sends a command of text arguments, e.g. `["SET", key, value]`.
    package func send(_ arguments: [String]) async throws(RedisError) -> RedisValue {
        try await send(RedisCommand(arguments))
    }

    /// Sends a command of byte-string arguments.
    package func send(_ arguments: [[UInt8]]) async throws(RedisError) -> RedisValue {
        try await send(RedisCommand(arguments))
    }

    /// Writes all commands in one go; replies in order, error replies in place as `.error`.
    package func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [RedisValue] {
        guard let connection = connector.connection else { throw .unavailable }
        let started = MonotonicClock.now()
        defer { if recordsLatency { RedisMetrics.commandDuration.observeSince(started) } }
        return try await connection.pipeline(commands)
    }

    /// `pipeline` with text arguments.
    package func pipeline(_ commands: [[String]]) async throws(RedisError) -> [RedisValue] {
        try await pipeline(commands.map { RedisCommand($0) })
    }

    /// `pipeline` with byte-string arguments.
    package func pipeline(_ commands: [[[UInt8]]]) async throws(RedisError) -> [RedisValue] {
        try await pipeline(commands.map { RedisCommand($0) })
    }

    /// Whether Redis answers `PING` with `PONG` right now (health checks).
    package func ping() async -> Bool {
        do throws(RedisError) {
            return try await send(.ping()) == .simpleString("PONG")
        } catch {
            return false
        }
    }

    // MARK: Lua

    /// Runs `script` with `EVALSHA`; if Redis does not have it cached (`NOSCRIPT`, e.g. after a restart
    /// or `SCRIPT FLUSH`) runs it with `EVAL`, which also caches it. An error reply is thrown as `.server`.
    package func evaluate(_ script: RedisScript, keys: [String] = [], arguments: [String] = []) async throws(RedisError) -> RedisValue {
        try await evaluate(cached: .evalsha(script.sha1, keys: keys, arguments: arguments)) {
            .eval(script.source, keys: keys, arguments: arguments)
        }
    }

    /// `evaluate` with byte-string arguments.
    package func evaluate(_ script: RedisScript, keys: [String] = [], arguments: [[UInt8]]) async throws(RedisError) -> RedisValue {
        try await evaluate(cached: .evalsha(script.sha1, keys: keys, arguments: arguments)) {
            .eval(script.source, keys: keys, arguments: arguments)
        }
    }

    /// Sends `cached` (the `EVALSHA`), and `uncached()` (the `EVAL`) only when Redis answers `NOSCRIPT`.
    private func evaluate(cached: RedisCommand, uncached: () -> RedisCommand) async throws(RedisError) -> RedisValue {
        do throws(RedisError) {
            return try await send(cached)
        } catch {
            guard error.serverCode == .noScript else { throw error }
        }
        return try await send(uncached())
    }

    // MARK: Closing

    /// Closes the connection and stops reconnecting. Pending commands fail with `.connectionLost`,
    /// later ones with `.unavailable`.
    package func close() {
        connector.close()
    }
}
