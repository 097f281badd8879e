import Runtime

/// Receives a WebSocket connection's messages. Calls happen on the loop.
@LoopActor
package protocol WebSocketConnectionDelegate: AnyObject {
    /// A complete text or binary message.
    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage)
    /// The connection is closed (called once). `code` is the close code received or sent, 1006
    /// when the TCP connection ended without a closing handshake.
    func webSocketDidClose(_ connection: WebSocketConnection, code: UInt16)
}

/// Settings of upgraded connections.
package struct WebSocketConfiguration: Sendable {
    package var limits = WebSocketLimits()
    /// Output queued beyond this closes the connection (slow consumer).
    package var maxPendingWriteBytes = 1 << 20
    /// Output queued from this on stops the peer's input until the queue drains (backpressure):
    /// a peer that sends faster than it reads its answers is slowed to its reading pace instead of
    /// growing the queue to the limit. A quarter of the limit.
    package var inputPauseBytes: Int { max(1, maxPendingWriteBytes / 4) }
    /// Close after this long without any frame from the peer; nil when a higher layer checks
    /// liveness itself (Engine.IO pings).
    package var idleTimeout: Duration?
    /// How long to wait for the peer's close frame after sending ours.
    package var closeTimeout = Duration.seconds(2)

    package init() {}
}

/// A server-side RFC 6455 connection over an upgraded `Transport`: frames in through the pure
/// `WebSocketParser`, automatic pongs, the closing handshake, an optional idle timeout, a cap on
/// queued output, and backpressure: while the output queue holds `inputPauseBytes` or more, no
/// more input is read or handled (frames already read wait in the parser) until it drains.
@LoopActor
package final class WebSocketConnection: TransportDelegate {
    private enum State {
        case open
        /// We sent a close frame and wait for the peer's.
        case closeSent
        case closed
    }

    package var delegate: (any WebSocketConnectionDelegate)?
    private let tcp: any Transport
    private let clock: any LoopClock
    private var parser: WebSocketParser
    private let configuration: WebSocketConfiguration
    private var state = State.open
    private var timer: TimerHandle?
    private var lastActivity: UInt64
    private var release: (@LoopActor () -> Void)?
    private var closeCode: UInt16 = 1006
    /// Input is held until the output queue drains (backpressure).
    private var inputHeld = false
    /// `drain` is running (a drain notice during it must not start another).
    private var draining = false

    /// Takes over an upgraded connection. `leftover` are bytes that followed the upgrade request;
    /// `release` is called once when the connection closes.
    package init(transport: any Transport, configuration: WebSocketConfiguration, clock: any LoopClock = SystemClock.shared,
                 release: @escaping @LoopActor () -> Void) {
        tcp = transport
        self.clock = clock
        self.configuration = configuration
        self.release = release
        parser = WebSocketParser(role: .server, limits: configuration.limits)
        lastActivity = clock.now()
        tcp.limits.maxPendingWriteBytes = configuration.maxPendingWriteBytes
    }

    /// Starts reading; call after setting `delegate`.
    package func start(leftover: [UInt8]) {
        tcp.delegate = self
        if let idle = configuration.idleTimeout { armIdleTimer(after: idle) }
        if !leftover.isEmpty {
            parser.append(leftover)
            drain()
        }
    }

    /// The peer's IP address.
    package var peerAddress: String { tcp.peer.host }
    /// Whether messages can still be sent.
    package var isOpen: Bool { state == .open }
    /// Bytes queued for the peer and not yet written.
    package var pendingWriteBytes: Int { tcp.pendingWriteBytes }

    // MARK: Sending

    /// Sends a text message. Returns false if the connection is closing or was closed because its
    /// output queue passed the limit.
    @discardableResult
    package func send(text: String) -> Bool {
        sendFrame(WebSocketFrameEncoder.text(text))
    }

    /// Sends an already-encoded frame (the same bytes can go to many connections).
    @discardableResult
    package func sendFrame(_ frame: [UInt8]) -> Bool {
        guard state == .open else { return false }
        return tcp.write(frame)
    }

    /// Starts the closing handshake; the TCP connection closes when the peer answers or after the
    /// close timeout.
    package func close(code: UInt16, reason: String = "") {
        guard state == .open else { return }
        state = .closeSent
        closeCode = code
        tcp.write(WebSocketFrameEncoder.close(code: code, reason: reason))
        cancelTimer()
        timer = clock.schedule(after: configuration.closeTimeout) { [weak self] in
            self?.tcp.closeNow()
        }
    }

    // MARK: TransportDelegate

    package func connection(_ connection: any Transport, didRead bytes: UnsafeRawBufferPointer) {
        lastActivity = clock.now()
        parser.append(bytes)
        drain()
    }

    private func drain() {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        while state != .closed {
            if tcp.pendingWriteBytes >= configuration.inputPauseBytes {
                holdInput()
                return
            }
            switch parser.next() {
            case .needMoreData:
                return
            case .message(let message):
                guard state == .open else { continue }
                delegate?.webSocket(self, didReceive: message)
            case .ping(let payload):
                if state == .open { tcp.write(WebSocketFrameEncoder.pong(payload)) }
            case .pong:
                continue
            case .close(let code, _):
                if state == .open {
                    // Echo the peer's code (RFC 6455 §5.5.1); an empty close is answered with an empty close.
                    closeCode = code ?? 1005
                    tcp.write(code.map { WebSocketFrameEncoder.close(code: $0) } ?? WebSocketFrameEncoder.frame(.close, payload: []))
                }
                finish()
                tcp.closeAfterFlush()
                return
            case .failure(let code, let reason):
                if state == .open { tcp.write(WebSocketFrameEncoder.close(code: code, reason: reason)) }
                closeCode = code
                finish()
                tcp.closeAfterFlush()
                return
            }
        }
    }

    package func connectionDidReadEOF(_ connection: any Transport) {
        // The peer went away without a closing handshake.
        tcp.closeNow()
    }

    package func connectionDidDrain(_ connection: any Transport) {
        guard inputHeld else { return }
        inputHeld = false
        tcp.resumeReading()
        drain()
    }

    /// Stops reading and handling input until the output queue drains.
    private func holdInput() {
        guard !inputHeld else { return }
        inputHeld = true
        tcp.pauseReading()
    }

    /// Whether input is held for the output queue to drain.
    package var isInputHeld: Bool { inputHeld }

    package func connectionDidClose(_ connection: any Transport, error: SystemError?) {
        finish()
        release?()
        release = nil
    }

    /// Marks the connection closed and tells the delegate once.
    private func finish() {
        guard state != .closed else { return }
        state = .closed
        cancelTimer()
        let delegate = self.delegate
        self.delegate = nil
        delegate?.webSocketDidClose(self, code: closeCode)
    }

    // MARK: Idle timeout

    private func armIdleTimer(after delay: Duration) {
        timer = clock.schedule(after: delay) { [weak self] in
            self?.idleTimerFired()
        }
    }

    private func idleTimerFired() {
        timer = nil
        guard state == .open, let idle = configuration.idleTimeout else { return }
        // Activity only stamps a time; the timer re-arms lazily for the remainder.
        let idleFor = Duration.between(lastActivity, clock.now())
        if idleFor >= idle {
            close(code: WebSocketCloseCode.goingAway, reason: "idle timeout")
        } else {
            armIdleTimer(after: idle - idleFor)
        }
    }

    private func cancelTimer() {
        if let timer { clock.cancel(timer) }
        timer = nil
    }
}
