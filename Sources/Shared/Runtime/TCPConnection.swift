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
    /// Whether the last queued buffer is this connection's own (a copy it made, which small
    /// frames may join), rather than a caller's (maybe shared with other connections).
    private var tailIsOwn = false
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
        if pendingWriteBytes == 0 && WriteCoalescing.isActive {
            // Held until the coalescing scope ends: the other frames it writes here join this one.
            pending.append(bytes)
            tailIsOwn = false
            pendingWriteBytes = bytes.count
            WriteCoalescing.hold(self)
            return true
        }
        if pendingWriteBytes == 0 {
            // Nothing queued: the kernel usually takes it all now, and nothing is queued or
            // re-registered (the common case of a socket that keeps up: one `send`, no allocation).
            let written = sendNow(bytes)
            guard written >= 0 else { return false }
            if written == bytes.count { return true }
            pendingOffset = written
            pending.append(bytes)
            tailIsOwn = false
            pendingWriteBytes = bytes.count - written
            updateInterest()
            return true
        }
        enqueue(bytes)
        return state != .closed
    }

    /// Queues `bytes` behind a non-empty queue. A small frame joins the last buffer when that one
    /// is this connection's own and has room, or starts one; so a backlog of small frames costs
    /// about its bytes (what `maxPendingWriteBytes` counts), not an allocation each, which would
    /// double it. A large frame is queued as it is (it may be shared with other connections).
    private func enqueue(_ bytes: [UInt8]) {
        pendingWriteBytes += bytes.count
        guard bytes.count <= Self.joinBytes else {
            pending.append(bytes)
            tailIsOwn = false
            return
        }
        if tailIsOwn, let last = pending.indices.last, pending[last].count + bytes.count <= Self.mergeBytes {
            pending[last].append(contentsOf: bytes)
            return
        }
        var own: [UInt8] = []  // a copy: the caller's array may be shared
        own.append(contentsOf: bytes)
        pending.append(own)
        tailIsOwn = true
    }

    /// Frames up to this size join the queue's last buffer (`enqueue`).
    private static let joinBytes = 4 * 1024

    /// Sends what the kernel takes of `bytes` at once: the count, or -1 after closing on an error.
    private func sendNow(_ bytes: [UInt8]) -> Int {
        while true {
            let written = bytes.withUnsafeBytes { raw in send(fd, raw.baseAddress, raw.count, CInt(MSG_NOSIGNAL)) }
            if written >= 0 { return written }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return 0
            default:
                closeNow(error: SystemError("send"))
                return -1
            }
        }
    }

    /// The end of a `WriteCoalescing` scope: sends what it held (a connection is held only when
    /// nothing else was queued, so nothing else flushes it meanwhile), unless it closed.
    fileprivate func releaseHeld() {
        guard state == .open || state == .closingAfterFlush, pendingWriteBytes > 0 else { return }
        flush()
    }

    /// Joins the leading queued buffers (up to `mergeBytes`) into one, so one `send` takes them.
    private func mergeLeading() {
        guard pending.count > 1 else { return }
        var taken = 1
        var total = pending[0].count - pendingOffset
        while taken < pending.count && total + pending[taken].count <= Self.mergeBytes {
            total += pending[taken].count
            taken += 1
        }
        guard taken > 1 else { return }
        var merged: [UInt8] = []
        merged.reserveCapacity(total)
        merged.append(contentsOf: pending[0][pendingOffset...])
        for index in 1..<taken { merged.append(contentsOf: pending[index]) }
        if taken == pending.count { tailIsOwn = true }
        pending.replaceSubrange(0..<taken, with: CollectionOfOne(merged))
        pendingOffset = 0
    }

    /// Most bytes `flush` joins into one `send`.
    private static let mergeBytes = 64 * 1024

    private func flush() {
        mergeLeading()
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
                mergeLeading()
            }
        }
        pending = []
        tailIsOwn = false
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
        tailIsOwn = false
        pendingWriteBytes = 0
        let delegate = self.delegate
        self.delegate = nil
        delegate?.connectionDidClose(self, error: error)
    }
}

/// Write coalescing for fan-out: the writes made inside `perform` to connections with nothing
/// queued are held, and each such connection's are sent together, with one `send`, when the
/// outermost `perform` returns. A gateway routes every message of one Redis read inside one scope,
/// so a socket that several of them reach gets one system call instead of one per message; when
/// the gateway keeps up (one message per read) nothing changes but a list append.
@LoopActor
package enum WriteCoalescing {
    private static var depth = 0
    private static var held: [TCPConnection] = []

    /// Whether writes are being held.
    static var isActive: Bool { depth > 0 }

    /// Runs `body`, holding its writes until it returns.
    package static func perform<T>(_ body: () throws -> T) rethrows -> T {
        depth += 1
        defer {
            depth -= 1
            if depth == 0 && !held.isEmpty { release() }
        }
        return try body()
    }

    fileprivate static func hold(_ connection: TCPConnection) { held.append(connection) }

    private static func release() {
        let connections = held
        held.removeAll(keepingCapacity: true)
        for connection in connections { connection.releaseHeld() }
    }
}
