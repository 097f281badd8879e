import CLinux
import Glibc

/// Limits of one connection's buffers.
package struct TCPConnectionLimits: Sendable {
    /// Output queued beyond this closes the connection: a slow consumer must not grow our memory.
    package var maxPendingWriteBytes: Int = 4 << 20
    /// How long a closing connection keeps discarding input so the peer reads our last response
    /// instead of a reset.
    package var linger = Duration.seconds(2)

    package init() {}
}

/// A non-blocking TCP socket on the loop, with a bounded write queue and no per-connection read buffer:
/// reads land in one loop-wide buffer and are handed to the delegate.
@LoopActor
package final class TCPConnection: IOHandler, Transport {
    private enum State {
        case open
        /// Close once the write queue is empty.
        case closingAfterFlush
        /// Our side is shut down; discarding input until the peer closes or the linger timer fires.
        case lingering
        case closed
    }

    /// The peer's address.
    package let peer: SocketAddress
    /// Where events go. Held strongly (the delegate usually owns nothing else keeping it alive) and
    /// cleared on close, which breaks the delegate <-> connection cycle.
    package var delegate: (any TransportDelegate)?
    private let fd: CInt
    private var registration: IORegistration?
    private var state = State.open
    private var readingPaused = false
    private var readEOF = false
    private var pending: [[UInt8]] = []
    private var pendingOffset = 0
    /// Bytes queued but not yet written to the kernel.
    package private(set) var pendingWriteBytes = 0
    /// Buffer limits; a protocol upgrade may change them (WebSockets allow less queued output).
    package var limits: TCPConnectionLimits
    private var lingerTimer: TimerHandle?

    /// Size of the loop-wide read buffer; also the most one `read` can return.
    private static let readBufferSize = 64 * 1024
    /// Most reads per readiness event, for fairness between connections.
    private static let readsPerEvent = 4
    private static let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: readBufferSize, alignment: 16)

    /// Takes ownership of an accepted non-blocking socket and registers it.
    package init(fd: CInt, peer: SocketAddress, limits: TCPConnectionLimits) throws(SystemError) {
        self.fd = fd
        self.peer = peer
        self.limits = limits
        do {
            registration = try EventLoop.shared.register(fd: fd, interest: .read, handler: self)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    /// Whether the connection can still write.
    package var isWritable: Bool { state == .open }
    /// Whether the connection is fully closed.
    package var isClosed: Bool { state == .closed }

    // MARK: Reading

    package func handleIO(_ events: IOEvents) {
        if events.writable { flush() }
        if state != .closed && (events.readable || events.hangup) && !readingPaused { readAvailable() }
    }

    private func readAvailable() {
        for _ in 0..<Self.readsPerEvent {
            guard state != .closed, !readingPaused else { return }
            let count = recv(fd, Self.readBuffer.baseAddress, Self.readBuffer.count, 0)
            if count > 0 {
                if state == .lingering { continue }
                delegate?.connection(self, didRead: UnsafeRawBufferPointer(rebasing: Self.readBuffer[0..<count]))
                if count < Self.readBuffer.count { return }
                continue
            }
            if count == 0 {
                readEOF = true
                if state == .lingering { closeNow(error: nil); return }
                updateInterest()
                delegate?.connectionDidReadEOF(self)
                return
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return
            default: closeNow(error: SystemError("recv")); return
            }
        }
    }

    /// Stops reading (backpressure) until `resumeReading`.
    package func pauseReading() {
        guard !readingPaused else { return }
        readingPaused = true
        updateInterest()
    }

    /// Resumes reading after `pauseReading`.
    package func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        updateInterest()
    }

    private func updateInterest() {
        guard let registration else { return }
        var interest: IOInterest = []
        if !readingPaused && !readEOF { interest.insert(.read) }
        if pendingWriteBytes > 0 { interest.insert(.write) }
        EventLoop.shared.modify(registration, interest: interest)
    }

    // MARK: Writing

    /// Queues `bytes` and writes what the kernel takes now. Returns false (and closes the connection)
    /// when the queue would pass `maxPendingWriteBytes`, or when the connection no longer writes.
    @discardableResult
    package func write(_ bytes: [UInt8]) -> Bool {
        guard state == .open else { return false }
        guard !bytes.isEmpty else { return true }
        if pendingWriteBytes + bytes.count > limits.maxPendingWriteBytes {
            closeNow(error: SystemError("write queue over limit", errno: ENOBUFS))
            return false
        }
        pending.append(bytes)
        pendingWriteBytes += bytes.count
        if pendingWriteBytes == bytes.count { flush() }
        return state != .closed
    }

    private func flush() {
        while let first = pending.first {
            let written = first.withUnsafeBytes { raw in
                send(fd, raw.baseAddress.map { $0 + pendingOffset }, raw.count - pendingOffset, CInt(MSG_NOSIGNAL))
            }
            if written < 0 {
                switch errno {
                case EINTR: continue
                case EAGAIN, EWOULDBLOCK: updateInterest(); return
                default: closeNow(error: SystemError("send")); return
                }
            }
            pendingOffset += written
            pendingWriteBytes -= written
            if pendingOffset == first.count {
                pending.removeFirst()
                pendingOffset = 0
            }
        }
        pending = []
        updateInterest()
        switch state {
        case .closingAfterFlush: startLingering()
        case .open: delegate?.connectionDidDrain(self)
        case .lingering, .closed: break
        }
    }

    // MARK: Closing

    /// Closes after every queued byte is written, then lingers briefly so the peer reads it.
    package func closeAfterFlush() {
        guard state == .open else { return }
        state = .closingAfterFlush
        if pendingWriteBytes == 0 { startLingering() }
    }

    private func startLingering() {
        if readEOF { closeNow(error: nil); return }
        shutdown(fd, CInt(SHUT_WR))
        state = .lingering
        readingPaused = false
        updateInterest()
        lingerTimer = EventLoop.shared.schedule(after: limits.linger) { [weak self] in
            self?.closeNow(error: nil)
        }
    }

    /// Closes at once, dropping queued output.
    package func closeNow(error: SystemError?) {
        guard state != .closed else { return }
        state = .closed
        if let lingerTimer { EventLoop.shared.cancel(lingerTimer) }
        if let registration { EventLoop.shared.deregister(registration) }
        registration = nil
        Glibc.close(fd)
        pending = []
        pendingWriteBytes = 0
        let delegate = self.delegate
        self.delegate = nil
        delegate?.connectionDidClose(self, error: error)
    }
}
