import Glibc

/// A `Transport` with no socket under it, for tests (the role of swift-nio's `EmbeddedChannel`): the
/// test plays the peer. `receive(_:)` delivers bytes as if they arrived, `takeOutput()` returns what
/// the server wrote, `peerStopsReading()` makes writes queue up as against a slow consumer.
/// Everything happens synchronously on the loop; combine it with a `ManualClock` for timeouts.
@LoopActor
package final class InMemoryConnection: Transport {
    private enum State {
        case open
        /// Close once the queue is empty.
        case closingAfterFlush
        case closed
    }

    package let peer: SocketAddress
    package var delegate: (any TransportDelegate)?
    package var limits: TCPConnectionLimits
    private var state = State.open
    private var readingPaused = false
    /// Input that arrived while reading was paused, delivered on resume.
    private var inbound: [[UInt8]] = []
    private var eofPending = false
    private var readEOF = false
    /// Written and taken by the peer.
    private var delivered: [UInt8] = []
    /// Written but not taken (the peer stopped reading).
    private var queued: [UInt8] = []
    private var peerReading = true
    /// Why the connection closed (nil for an orderly close), once closed.
    package private(set) var closeError: SystemError?

    package init(peer: SocketAddress = SocketAddress(host: "127.0.0.1", port: 40_000)!, limits: TCPConnectionLimits = TCPConnectionLimits()) {
        self.peer = peer
        self.limits = limits
    }

    // MARK: Transport

    package var isWritable: Bool { state == .open }
    package var isClosed: Bool { state == .closed }
    package var pendingWriteBytes: Int { queued.count }
    @discardableResult
    package func write(_ bytes: [UInt8]) -> Bool {
        guard state == .open else { return false }
        guard !bytes.isEmpty else { return true }
        if peerReading {
            delivered += bytes
            return true
        }
        if queued.count + bytes.count > limits.maxPendingWriteBytes {
            closeNow(error: SystemError("write queue over limit", errno: ENOBUFS))
            return false
        }
        queued += bytes
        return true
    }

    package func pauseReading() { readingPaused = true }

    package func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        while !readingPaused, state != .closed, !inbound.isEmpty {
            deliver(inbound.removeFirst())
        }
        if !readingPaused, inbound.isEmpty, eofPending {
            eofPending = false
            deliverEOF()
        }
    }

    package func closeAfterFlush() {
        guard state == .open else { return }
        state = .closingAfterFlush
        if queued.isEmpty { closeNow(error: nil) }
    }

    package func closeNow(error: SystemError?) {
        guard state != .closed else { return }
        state = .closed
        closeError = error
        queued = []
        inbound = []
        let delegate = self.delegate
        self.delegate = nil
        delegate?.connectionDidClose(self, error: error)
    }

    // MARK: The peer's side

    /// The peer sends `bytes`, delivered in pieces of at most `chunkSize` bytes (the whole at once by default).
    package func receive(_ bytes: [UInt8], chunkSize: Int = .max) {
        guard state != .closed, !readEOF, !eofPending else { return }
        var start = 0
        while start < bytes.count {
            let end = bytes.count - start > chunkSize ? start + chunkSize : bytes.count
            let chunk = Array(bytes[start..<end])
            start = end
            if readingPaused || !inbound.isEmpty { inbound.append(chunk) } else { deliver(chunk) }
            if state == .closed { return }
        }
    }

    /// The peer sends a string's UTF-8 bytes.
    package func receive(_ text: String) { receive(Array(text.utf8)) }

    /// The peer shuts down its sending side (EOF), seen after any input still queued.
    package func peerClosesInput() {
        guard state != .closed, !readEOF, !eofPending else { return }
        if readingPaused || !inbound.isEmpty { eofPending = true } else { deliverEOF() }
    }

    /// The peer stops reading: writes queue up to `limits.maxPendingWriteBytes`.
    package func peerStopsReading() { peerReading = false }

    /// The peer reads again: what queued is delivered and the delegate hears the drain.
    package func peerResumesReading() {
        peerReading = true
        guard state != .closed else { return }
        delivered += queued
        queued = []
        if state == .closingAfterFlush { return closeNow(error: nil) }
        delegate?.connectionDidDrain(self)
    }

    /// What the server wrote since the last call.
    package func takeOutput() -> [UInt8] {
        defer { delivered = [] }
        return delivered
    }

    private func deliver(_ chunk: [UInt8]) {
        // Closed: nothing to tell. Closing after flush: the input is discarded, as a lingering socket does.
        guard state == .open else { return }
        chunk.withUnsafeBytes { delegate?.connection(self, didRead: $0) }
    }

    private func deliverEOF() {
        readEOF = true
        if state == .closingAfterFlush { return closeNow(error: nil) }
        delegate?.connectionDidReadEOF(self)
    }
}
