/// The life of one HTTP/1.1 connection, without I/O: events in, actions out.
///
/// The server performs the actions; tests drive the machine with plain numbers for time.
/// Timeouts: the first request and every request after the first byte must arrive whole within
/// `requestReadTimeout` (slowloris); between requests a keep-alive connection may sit idle for
/// `idleTimeout`.
package struct HTTPConnectionStateMachine: Sendable {
    package enum State: Sendable, Equatable {
        /// Waiting for the first byte of a request.
        case idle
        /// Part of a request has arrived.
        case readingRequest
        /// A request is with the application; reading is paused.
        case processing(keepAlive: Bool)
        /// Closing or closed: ignore everything.
        case closed
    }

    package enum Action: Sendable, Equatable {
        case none
        /// Arm the connection's single timer for `deadline` (nanoseconds, monotonic).
        case scheduleTimeout(deadline: UInt64)
        /// Hand the request to the application and pause reading.
        case dispatch
        /// Resume reading and arm the timer.
        case resumeReading(deadline: UInt64)
        /// Look for a pipelined request already buffered before reading more.
        case parseNext
        /// Send `408` and close (request not received in time).
        case timeoutRequest
        /// Close after flushing what is queued.
        case closeAfterFlush
        /// Close at once.
        case close
    }

    package private(set) var state: State = .idle
    private var deadline: UInt64 = 0
    private var draining = false
    private var peerClosed = false
    private let requestReadTimeout: UInt64
    private let idleTimeout: UInt64

    /// Timeouts in nanoseconds.
    package init(requestReadTimeout: UInt64, idleTimeout: UInt64) {
        self.requestReadTimeout = requestReadTimeout
        self.idleTimeout = idleTimeout
    }

    /// The connection was accepted: the first request must arrive within the request-read timeout.
    package mutating func opened(now: UInt64) -> Action {
        deadline = now &+ requestReadTimeout
        return .scheduleTimeout(deadline: deadline)
    }

    /// The parser produced a complete request.
    package mutating func receivedRequest(keepAlive: Bool) -> Action {
        switch state {
        case .idle, .readingRequest:
            state = .processing(keepAlive: keepAlive && !draining)
            return .dispatch
        case .processing, .closed:
            return .none
        }
    }

    /// The response to the current request was queued for writing (`close`: the server wants the
    /// connection closed after it). Returns whether it must say `Connection: close`, and what next.
    package mutating func responseQueued(close: Bool = false) -> (keepAlive: Bool, next: Action) {
        guard case .processing(let keepAlive) = state else { return (false, .none) }
        if close || !keepAlive || draining || peerClosed {
            state = .closed
            return (false, .closeAfterFlush)
        }
        state = .idle
        return (true, .parseNext)
    }

    /// The parser has no complete request: wait for more bytes. `partial` says whether it holds
    /// part of one. A request keeps the deadline set by its first byte however slowly the rest
    /// trickles in (slowloris); an empty buffer waits with the idle timeout.
    package mutating func awaitingMoreData(partial: Bool, now: UInt64) -> Action {
        switch state {
        case .readingRequest where partial:
            return .resumeReading(deadline: deadline)
        case .idle, .readingRequest:
            state = partial ? .readingRequest : .idle
            deadline = now &+ (partial ? requestReadTimeout : idleTimeout)
            return .resumeReading(deadline: deadline)
        case .processing, .closed:
            return .none
        }
    }

    /// The timer fired.
    package mutating func timerFired(now: UInt64) -> Action {
        guard now >= deadline else { return .scheduleTimeout(deadline: deadline) }
        switch state {
        case .idle:
            state = .closed
            return .close
        case .readingRequest:
            state = .closed
            return .timeoutRequest
        case .processing, .closed:
            return .none
        }
    }

    /// The peer shut down its sending side.
    package mutating func peerClosedInput() -> Action {
        peerClosed = true
        switch state {
        case .idle, .readingRequest:
            state = .closed
            return .close
        case .processing, .closed:
            return .none
        }
    }

    /// The parser rejected the input: answer the error, then close.
    package mutating func parseFailed() -> Action {
        guard state != .closed else { return .none }
        state = .closed
        return .closeAfterFlush
    }

    /// Graceful shutdown: finish the request in flight, close idle connections now.
    package mutating func shutdownRequested() -> Action {
        draining = true
        switch state {
        case .idle, .readingRequest:
            state = .closed
            return .close
        case .processing:
            state = .processing(keepAlive: false)
            return .none
        case .closed:
            return .none
        }
    }
}
