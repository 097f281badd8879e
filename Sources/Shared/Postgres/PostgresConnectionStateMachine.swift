import Runtime

/// The life of one libpq connection, without I/O: events in, actions out.
///
/// `PostgresConnection` calls libpq, reports what libpq said as events, and performs the returned
/// action; this struct alone decides what each outcome means (which error, whether the connection
/// survives), so every transition is unit-tested without a server.
///
/// ```
/// initial ─start→ connecting ─ok→ idle ─query→ sending ─flushed→ awaitingResults ─results→ idle
///                     │ failed/timeout         │ stale/send failed   │ lost/timeout/protocol
///                     ▼                        ▼                     ▼
///                   failed ←──────── idle connection found dead ── failed ──close→ closed
/// ```
package struct PostgresConnectionStateMachine: Sendable {
    package enum State: Sendable, Equatable {
        /// Created, `PQconnectStartParams` not called yet.
        case initial
        /// `PQconnectPoll` in progress; waiting for the socket to become readable or writable.
        case connecting(waitingFor: IOInterest)
        /// Connected, no statement in flight. The socket is watched for reads so a server-side
        /// close (restart, `pg_terminate_backend`, idle timeout) is noticed at once.
        case idle
        /// A statement was handed to libpq; `PQflush` still has bytes to write.
        case sending
        /// The statement is fully sent; reading results.
        case awaitingResults
        /// Unusable; the reason is kept for later callers. The libpq handle has been released.
        case failed(PostgresError)
        /// Closed by its owner.
        case closed
    }

    /// What `PQconnectPoll` returned.
    package enum ConnectPoll: Sendable, Equatable {
        case reading
        case writing
        case ok
        case failed(String)
    }

    /// What `PQflush` returned.
    package enum Flush: Sendable, Equatable {
        /// 0: everything is sent.
        case complete
        /// 1: more to send once the socket is writable.
        case pending
        /// -1.
        case failed(String)
    }

    /// How the results of a statement ended (after `PQgetResult` returned NULL or the input broke).
    package enum Outcome: Sendable, Equatable {
        case success
        case serverError(PostgresServerError)
        /// A result kind this client cannot continue from (COPY, bad response).
        case protocolViolation(String)
    }

    package enum Action: Sendable, Equatable {
        case none
        /// Watch the socket for `interest` (while connecting: re-register, the socket may have changed).
        case watch(IOInterest)
        /// Call `PQconnectPoll` and report `connectPolled`.
        case pollConnect
        /// Connected (socket already non-blocking and watched for reads): cancel the connect timer,
        /// resume the caller.
        case finishConnect
        /// Release the handle, resume the connecting caller with the error.
        case failConnect(PostgresError)
        /// Call `PQsendQuery[Params]` (after checking the idle socket is still alive).
        case send
        /// Refuse the statement without touching the connection.
        case reject(PostgresError)
        /// Call `PQflush` and report `flushed`.
        case flush
        /// `PQconsumeInput` (the server may answer early, e.g. with an error), then `PQflush`.
        case consumeInputAndFlush
        /// `PQconsumeInput`, then `PQgetResult` while not busy; report `resultsFinished` at NULL.
        case readResults
        /// Idle socket became readable: consume input and check the connection is still alive.
        case checkIdleConnection
        /// Resume the caller with the collected rows.
        case succeedQuery
        /// Resume the caller with the error; if `closeConnection`, release the handle first.
        case failQuery(PostgresError, closeConnection: Bool)
        /// Release the handle (no caller to resume).
        case closeConnection
    }

    package private(set) var state: State = .initial
    private let connectTimeout: Duration

    /// `connectTimeout` is only used in the timeout's message.
    package init(connectTimeout: Duration) {
        self.connectTimeout = connectTimeout
    }

    /// Whether a statement may be sent now.
    package var isIdle: Bool { state == .idle }

    /// Whether a statement is in flight.
    package var isBusy: Bool { state == .sending || state == .awaitingResults }

    // MARK: Connecting

    /// `PQconnectStartParams` succeeded. libpq says: behave as if `PQconnectPoll` asked for writing.
    package mutating func connectStarted() -> Action {
        guard state == .initial else { return .none }
        state = .connecting(waitingFor: .write)
        return .watch(.write)
    }

    /// `PQconnectStartParams` failed outright (bad parameters, out of memory).
    package mutating func connectStartFailed(_ message: String) -> Action {
        guard state == .initial else { return .none }
        let error = PostgresError.unavailable(message)
        state = .failed(error)
        return .failConnect(error)
    }

    /// `PQconnectPoll` returned.
    package mutating func connectPolled(_ poll: ConnectPoll) -> Action {
        guard case .connecting = state else { return .none }
        switch poll {
        case .reading:
            state = .connecting(waitingFor: .read)
            return .watch(.read)
        case .writing:
            state = .connecting(waitingFor: .write)
            return .watch(.write)
        case .ok:
            state = .idle
            return .finishConnect
        case .failed(let message):
            let error = PostgresError.unavailable(message)
            state = .failed(error)
            return .failConnect(error)
        }
    }

    // MARK: Socket readiness

    /// epoll reported the socket ready.
    package mutating func socketReady(_ events: IOEvents) -> Action {
        switch state {
        case .connecting(let wanted):
            // A hang-up is reported whatever we asked for; PQconnectPoll will find the error.
            if events.hangup || (wanted.contains(.read) && events.readable) || (wanted.contains(.write) && events.writable) {
                return .pollConnect
            }
            return .none
        case .idle:
            return events.readable || events.hangup ? .checkIdleConnection : .none
        case .sending:
            if events.readable || events.hangup { return .consumeInputAndFlush }
            return events.writable ? .flush : .none
        case .awaitingResults:
            return events.readable || events.hangup ? .readResults : .none
        case .initial, .failed, .closed:
            return .none
        }
    }

    // MARK: Statements

    /// A caller wants to run a statement.
    package mutating func queryRequested() -> Action {
        switch state {
        case .idle:
            state = .sending
            return .send
        case .sending, .awaitingResults:
            return .reject(.misuse("a statement is already running on this connection (use one connection per task, e.g. via PostgresPool)"))
        case .initial, .connecting:
            return .reject(.misuse("the connection is not established yet"))
        case .failed(let error):
            return .reject(.unavailable("connection is no longer usable: \(error)"))
        case .closed:
            return .reject(.unavailable("connection is closed"))
        }
    }

    /// The statement could not be handed to libpq, or the idle connection turned out to be dead.
    /// Nothing reached the server, so the error is `.unavailable` (safe to retry elsewhere).
    package mutating func sendFailed(_ message: String) -> Action {
        guard state == .sending else { return .none }
        let error = PostgresError.unavailable(message)
        state = .failed(error)
        return .failQuery(error, closeConnection: true)
    }

    /// `PQflush` returned.
    package mutating func flushed(_ flush: Flush) -> Action {
        guard state == .sending else { return .none }
        switch flush {
        case .complete:
            state = .awaitingResults
            return .watch(.read)
        case .pending:
            // Keep reading too: the server may answer (an error) before it read everything.
            return .watch([.read, .write])
        case .failed(let message):
            // The message never fully left: the server executes a statement only once it has all of
            // it (and commits only at the trailing Sync), so nothing ran.
            let error = PostgresError.unavailable(message)
            state = .failed(error)
            return .failQuery(error, closeConnection: true)
        }
    }

    /// `PQconsumeInput` failed: the connection broke.
    package mutating func inputFailed(_ message: String) -> Action {
        switch state {
        case .sending, .awaitingResults:
            let error = PostgresError.connectionLost(message)
            state = .failed(error)
            return .failQuery(error, closeConnection: true)
        case .idle:
            state = .failed(.unavailable(message))
            return .closeConnection
        case .initial, .connecting, .failed, .closed:
            return .none
        }
    }

    /// `PQgetResult` returned NULL (all results read). `brokenConnection` is set when libpq reports
    /// the connection as bad afterwards: then the outcome is unknown, whatever the results said.
    package mutating func resultsFinished(_ outcome: Outcome, brokenConnection: String?) -> Action {
        guard state == .sending || state == .awaitingResults else { return .none }
        if let brokenConnection {
            let error = PostgresError.connectionLost(brokenConnection)
            state = .failed(error)
            return .failQuery(error, closeConnection: true)
        }
        switch outcome {
        case .success:
            state = .idle
            return .succeedQuery
        case .serverError(let serverError):
            state = .idle
            return .failQuery(.server(serverError), closeConnection: false)
        case .protocolViolation(let message):
            let error = PostgresError.protocol(message)
            state = .failed(error)
            return .failQuery(error, closeConnection: true)
        }
    }

    /// The idle socket was checked after a read event; `deadReason` is set if the server closed it.
    package mutating func idleChecked(deadReason: String?) -> Action {
        guard state == .idle, let deadReason else { return .none }
        state = .failed(.unavailable(deadReason))
        return .closeConnection
    }

    // MARK: Timeouts and closing

    /// The connect or statement timer fired.
    package mutating func timedOut() -> Action {
        switch state {
        case .initial, .connecting:
            let error = PostgresError.unavailable("could not connect within \(connectTimeout.wholeMilliseconds) ms")
            state = .failed(error)
            return .failConnect(error)
        case .sending, .awaitingResults:
            // Closing is the only non-blocking way to stop waiting (PQcancel blocks); the server
            // notices the closed socket and aborts the statement's transaction.
            state = .failed(.timeout)
            return .failQuery(.timeout, closeConnection: true)
        case .idle, .failed, .closed:
            return .none
        }
    }

    /// The owner closes the connection.
    package mutating func close() -> Action {
        let previous = state
        state = .closed
        switch previous {
        case .initial:
            return .none
        case .connecting:
            return .failConnect(.unavailable("connection closed while connecting"))
        case .sending, .awaitingResults:
            return .failQuery(.connectionLost("connection closed while a statement was running"), closeConnection: true)
        case .idle, .failed:
            return .closeConnection
        case .closed:
            return .none
        }
    }
}
