/// Receives a transport's events. All calls happen on the loop.
@LoopActor
package protocol TransportDelegate: AnyObject {
    /// Bytes arrived. They are only valid during the call: copy what you keep.
    func connection(_ connection: any Transport, didRead bytes: UnsafeRawBufferPointer)
    /// The peer closed its sending side; the connection may still write.
    func connectionDidReadEOF(_ connection: any Transport)
    /// Every pending byte has been handed to the peer (the kernel, for TCP).
    func connectionDidDrain(_ connection: any Transport)
    /// The connection is closed (once). `error` is nil for an orderly close.
    func connectionDidClose(_ connection: any Transport, error: SystemError?)
}

/// A byte stream to one peer, as the protocols above it (HTTP, WebSocket) use it: a `TCPConnection`
/// in production, an `InMemoryConnection` in tests.
@LoopActor
package protocol Transport: AnyObject {
    /// The peer's address.
    var peer: SocketAddress { get }
    /// Where events go; held strongly and cleared on close.
    var delegate: (any TransportDelegate)? { get set }
    /// Buffer limits; a protocol upgrade may change them.
    var limits: TCPConnectionLimits { get set }
    /// Whether the connection can still write.
    var isWritable: Bool { get }
    /// Whether the connection is fully closed.
    var isClosed: Bool { get }
    /// Bytes queued and not yet taken by the peer.
    var pendingWriteBytes: Int { get }
    /// Queues `bytes`. Returns false (and closes the connection) when the queue would pass
    /// `limits.maxPendingWriteBytes`, or when the connection no longer writes.
    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool
    /// Stops delivering input (backpressure) until `resumeReading`.
    func pauseReading()
    /// Resumes delivering input after `pauseReading`.
    func resumeReading()
    /// Closes after every queued byte is written.
    func closeAfterFlush()
    /// Closes at once, dropping queued output.
    func closeNow(error: SystemError?)
}

extension Transport {
    /// Closes at once, dropping queued output.
    package func closeNow() { closeNow(error: nil) }
}
