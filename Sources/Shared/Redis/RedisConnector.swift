import JSON
import Runtime
import Support

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
    /// Counts sentinel discoveries (`redis+sentinel://`): `close()` voids the one in progress.
    private var attemptGeneration: UInt64 = 0
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
    /// Where failed attempts (why: refused, TLS, a sentinel) and recoveries are told; nil: silent.
    var logger: Logger?
    /// The last failure logged and when (monotonic): the same reason is repeated every 30 s at
    /// most, so a long outage does not flood the log.
    private var loggedFailure: (reason: String, at: UInt64)?

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
        attemptGeneration &+= 1
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
        guard configuration.sentinel != nil else { return open(RedisConnection(configuration: configuration)) }
        attemptGeneration &+= 1
        let generation = attemptGeneration
        // Weak: an owner dropped while discovering must not be kept alive by its own attempt.
        Task.onLoop { [weak self, configuration] in
            let primary = await RedisSentinel.primary(for: configuration)
            guard let self, generation == self.attemptGeneration, !self.isClosed else { return }
            switch primary {
            case .success(let target):
                self.open(RedisConnection(configuration: target), checkRole: true)
            case .failure(let failure):
                self.lastError = .unavailable
                self.lastFailureReason = failure.reason
                self.logFailure(failure.reason)
                self.perform(self.machine.connectFailed(random: Double.random(in: 0..<1)))
            }
        }
    }

    /// Opens `candidate`; with `checkRole` (a primary a sentinel named) it must say it is one.
    private func open(_ candidate: RedisConnection, checkRole: Bool = false) {
        attempting = candidate
        // Weak: an owner dropped while connecting must not be kept alive by its own attempt.
        Task.onLoop { [weak self] in
            do throws(RedisError) {
                try await candidate.open()
                if checkRole, let problem = await RedisSentinel.checkPrimary(candidate) {
                    candidate.failureReason = "\(candidate.configuration.endpointDescription): \(problem)"
                    candidate.close()
                    throw .unavailable
                }
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
        if loggedFailure != nil {
            loggedFailure = nil
            logger?.info("Redis connection restored", ["client": .string(configuration.clientName ?? ""),
                                                      "endpoint": .string(candidate.configuration.endpointDescription)])
        }
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
        logFailure(candidate.failureReason ?? error.message)
        perform(machine.connectFailed(random: Double.random(in: 0..<1)))
    }

    private func connectionClosed(_ closed: RedisConnection, error: RedisError) {
        guard connection === closed else { return }
        connection = nil
        lastError = error
        lastFailureReason = closed.failureReason
        logFailure("connection lost: " + (closed.failureReason ?? error.message))
        // Schedule first, so a hook that inspects the state sees "reconnecting".
        perform(machine.connectionLost(random: Double.random(in: 0..<1)))
        onDisconnected?(error)
    }

    private func logFailure(_ reason: String) {
        guard let logger else { return }
        let now = MonotonicClock.now()
        if let logged = loggedFailure, logged.reason == reason, Duration.between(logged.at, now) < .seconds(30) { return }
        loggedFailure = (reason, now)
        logger.warn("Redis connection failed; retrying", ["client": .string(configuration.clientName ?? ""), "reason": .string(reason)])
    }
}
