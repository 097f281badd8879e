import Runtime

/// Keeps one `RedisConnection` alive: connects, and after a failed attempt or a lost connection tries
/// again with backoff, forever, until `close()`. Shared by `RedisClient` and `RedisSubscriber`.
@LoopActor
final class RedisConnector {
    let configuration: RedisConfiguration
    private var machine: RedisReconnectMachine
    /// The ready connection, if any.
    private(set) var connection: RedisConnection?
    /// The attempt in progress, if any.
    private var attempting: RedisConnection?
    private var retryTimer: TimerHandle?
    /// The last connect or connection failure (nil after a success).
    private(set) var lastError: RedisError?
    /// Why that failure happened, in words, for logs.
    private(set) var lastFailureReason: String?
    private var connectedWaiters: [UInt64: (continuation: CheckedContinuation<Bool, Never>, timer: TimerHandle)] = [:]
    private var nextWaiterID: UInt64 = 0
    /// A new connection is ready (handshake done).
    var onConnected: (@LoopActor (RedisConnection) -> Void)?
    /// The ready connection died; reconnecting has been scheduled.
    var onDisconnected: (@LoopActor (RedisError) -> Void)?

    init(configuration: RedisConfiguration) {
        self.configuration = configuration
        machine = RedisReconnectMachine(backoff: configuration.backoff)
    }

    // An owner dropped without close() must not leave a socket and a reconnect loop behind.
    isolated deinit {
        close()
    }

    var isClosed: Bool { machine.state == .closed }

    func start() {
        perform(machine.start())
    }

    func close() {
        machine.close()
        if let retryTimer { EventLoop.shared.cancel(retryTimer) }
        retryTimer = nil
        attempting?.close()
        attempting = nil
        let current = connection
        connection = nil
        current?.close()
        onConnected = nil
        onDisconnected = nil
        resumeWaiters(connected: false)
    }

    /// Waits until a connection is ready, at most `timeout`; returns whether one is.
    func waitUntilConnected(timeout: Duration) async -> Bool {
        if connection != nil { return true }
        if isClosed { return false }
        nextWaiterID &+= 1
        let id = nextWaiterID
        return await withCheckedContinuation { continuation in
            let timer = EventLoop.shared.schedule(after: timeout) { [weak self] in
                self?.connectedWaiters.removeValue(forKey: id)?.continuation.resume(returning: false)
            }
            connectedWaiters[id] = (continuation, timer)
        }
    }

    private func resumeWaiters(connected: Bool) {
        let waiters = connectedWaiters
        connectedWaiters = [:]
        for (_, waiter) in waiters {
            EventLoop.shared.cancel(waiter.timer)
            waiter.continuation.resume(returning: connected)
        }
    }

    private func perform(_ action: RedisReconnectMachine.Action) {
        switch action {
        case .connect:
            attempt()
        case .scheduleRetry(let delay):
            retryTimer = EventLoop.shared.schedule(after: delay) { [weak self] in
                guard let self else { return }
                self.retryTimer = nil
                self.perform(self.machine.retryTimerFired())
            }
        case .discardConnection, .none:
            break
        }
    }

    private func attempt() {
        let candidate = RedisConnection(configuration: configuration)
        attempting = candidate
        // Weak: an owner dropped while connecting must not be kept alive by its own attempt.
        Task { @LoopActor [weak self] in
            do throws(RedisError) {
                try await candidate.open()
                guard let self else { candidate.close(); return }
                self.attemptSucceeded(candidate)
            } catch {
                self?.attemptFailed(candidate, error: error)
            }
        }
    }

    private func attemptSucceeded(_ candidate: RedisConnection) {
        guard attempting === candidate else {
            candidate.close()
            return
        }
        attempting = nil
        guard machine.connectSucceeded() != .discardConnection else {
            candidate.close()
            return
        }
        connection = candidate
        lastError = nil
        candidate.onClose = { [weak self, weak candidate] error in
            guard let self, let candidate else { return }
            self.connectionClosed(candidate, error: error)
        }
        onConnected?(candidate)
        resumeWaiters(connected: connection != nil)
    }

    private func attemptFailed(_ candidate: RedisConnection, error: RedisError) {
        guard attempting === candidate else { return }
        attempting = nil
        lastError = error
        lastFailureReason = candidate.failureReason
        perform(machine.connectFailed(random: Double.random(in: 0..<1)))
    }

    private func connectionClosed(_ closed: RedisConnection, error: RedisError) {
        guard connection === closed else { return }
        connection = nil
        lastError = error
        lastFailureReason = closed.failureReason
        // Schedule first, so a hook that inspects the state sees "reconnecting".
        perform(machine.connectionLost(random: Double.random(in: 0..<1)))
        onDisconnected?(error)
    }
}
