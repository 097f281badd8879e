import Shared

/// The server side of one Engine.IO v4 HTTP long-polling transport, without I/O: the packets
/// waiting for the client's next `GET`, the one `GET` that may be held open, the `POST`ed packets,
/// the upgrade to WebSocket (`noop` answers while the client pauses polling, then the hand-over of
/// what is still queued), and the close. `PollingLink` performs what it decides.
///
/// As the reference server (engine.io): a second `GET` while one is held is an error that closes
/// the session (answered 400; the held one gets the close packet); packets never exceed the
/// configured queue (a client that stops polling is a slow consumer and is closed).
struct PollingMachine: Sendable {
    struct Configuration: Sendable {
        /// Bytes of packets that may wait for the client's next poll; beyond, the session closes.
        var maxQueuedBytes: Int
        /// Most packets one `POST` may carry.
        var maxPacketsPerPost = 1_000
    }

    enum State: Sendable, Equatable {
        case open
        /// A WebSocket answered the probe: polls are answered at once (with `noop` when nothing
        /// waits) so the client can pause polling and send the upgrade packet.
        case upgrading
        /// The session moved to WebSocket: the polling transport is gone.
        case upgraded
        /// The close packet is queued for the client's last poll.
        case closing
        case closed
    }

    /// What to do with a `GET`.
    enum PollDecision: Sendable, Equatable {
        /// Answer it now with this body.
        case answer([UInt8])
        /// Hold it until a packet is queued (`enqueue` returns `.answerHeld`).
        case hold
        /// A poll is already held: answer this one 400 and the held one with `heldBody`; the
        /// session is over.
        case overlap(heldBody: [UInt8])
        /// The transport is no longer polling (upgraded or closed): 400.
        case gone
    }

    /// What to do with a packet the session sends.
    enum EnqueueDecision: Sendable, Equatable {
        /// Queued, and a poll is held: answer it (`flushHeld`) once the packets sent in the same
        /// turn are queued too, so an event and what follows it (its recovery offset) travel in
        /// one answer.
        case pollWaiting
        /// Queued for the next poll.
        case queued
        /// The queue passed its limit: the session closes (slow consumer).
        case overflow
        /// The transport is gone; the packet is dropped.
        case dropped
    }

    private let configuration: Configuration
    private(set) var state = State.open
    private var queue: [[UInt8]] = []
    private var queuedBytes = 0
    /// Whether a `GET` is held open.
    private(set) var holdingPoll = false

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Bytes waiting for the client's next poll.
    var pendingBytes: Int { queuedBytes }

    // MARK: Client requests

    /// A `GET` arrived.
    mutating func poll() -> PollDecision {
        switch state {
        case .upgraded, .closed:
            return .gone
        case .open, .upgrading, .closing:
            if holdingPoll {
                holdingPoll = false
                queue.append(Self.closePacket)
                state = .closed
                return .overlap(heldBody: takeQueue())
            }
            if !queue.isEmpty {
                let body = takeQueue()
                if state == .closing { state = .closed }
                return .answer(body)
            }
            if state == .upgrading { return .answer(Self.noopPacket) }
            holdingPoll = true
            return .hold
        }
    }

    /// The packets of a `POST` body, or why it is refused (the session then closes).
    func post(_ body: [UInt8]) -> Result<[String], EngineIOPayload.DecodeError> {
        Result { () throws(EngineIOPayload.DecodeError) in
            try EngineIOPayload.decode(body, maxPackets: configuration.maxPacketsPerPost)
        }
    }

    // MARK: Server output

    /// The session sends one encoded packet.
    mutating func enqueue(_ packet: some Collection<UInt8>) -> EnqueueDecision {
        switch state {
        case .upgraded, .closing, .closed:
            return .dropped
        case .open, .upgrading:
            queue.append(Array(packet))
            queuedBytes = queuedBytes.addingSaturated(packet.count + 1)
            guard queuedBytes <= configuration.maxQueuedBytes else {
                queue = []
                queuedBytes = 0
                return .overflow
            }
            return holdingPoll ? .pollWaiting : .queued
        }
    }

    /// The held poll's answer: every packet queued, if any and a poll is held.
    mutating func flushHeld() -> [UInt8]? {
        guard holdingPoll, !queue.isEmpty else { return nil }
        holdingPoll = false
        return takeQueue()
    }

    /// The session ends: the close packet goes to the held poll now, or to the next one. Returns the
    /// held poll's body if one was held.
    mutating func close() -> [UInt8]? {
        switch state {
        case .closing, .closed, .upgraded:
            return nil
        case .open, .upgrading:
            queue.append(Self.closePacket)
            queuedBytes = queuedBytes.addingSaturated(2)
            state = .closing
            guard holdingPoll else { return nil }
            holdingPoll = false
            state = .closed
            return takeQueue()
        }
    }

    /// The session is dropped without a close packet (server shutdown, a failed transport): whether
    /// a poll was held (the shell answers it with an error so the client reconnects elsewhere).
    mutating func abandon() -> Bool {
        let held = holdingPoll
        holdingPoll = false
        queue = []
        queuedBytes = 0
        state = .closed
        return held
    }

    // MARK: Upgrade

    /// A WebSocket of this session answered the probe. Returns the body for a held poll (`noop`,
    /// so the client can pause polling), if one is held.
    mutating func upgradeProbed() -> [UInt8]? {
        guard state == .open else { return nil }
        state = .upgrading
        return releaseHeldPoll()
    }

    /// The probing WebSocket went away before the upgrade packet: polling goes on.
    mutating func upgradeAbandoned() {
        if state == .upgrading { state = .open }
    }

    /// The client sent the upgrade packet on the WebSocket: the packets still queued, in order, for
    /// the WebSocket, and the body for a held poll (`noop`), if one is held.
    mutating func upgraded() -> (queued: [[UInt8]], heldBody: [UInt8]?)? {
        guard state == .open || state == .upgrading else { return nil }
        let held = holdingPoll ? Self.noopPacket : nil
        holdingPoll = false
        let queued = queue
        queue = []
        queuedBytes = 0
        state = .upgraded
        return (queued, held)
    }

    /// While upgrading, a held poll is answered (every 100 ms, as the reference server does): with
    /// what is queued, or `noop`.
    mutating func releaseHeldPoll() -> [UInt8]? {
        guard holdingPoll else { return nil }
        holdingPoll = false
        return queue.isEmpty ? Self.noopPacket : takeQueue()
    }

    private mutating func takeQueue() -> [UInt8] {
        let body = EngineIOPayload.encode(queue)
        queue = []
        queuedBytes = 0
        return body
    }

    static let noopPacket = Array(EngineIOPacket.noop.encoded.utf8)
    static let closePacket = Array(EngineIOPacket.close.encoded.utf8)
}
