import Shared

/// One published event on its way to local sockets: its native frame, encoded once for every
/// native socket, and the frames of each dialect, encoded once for every socket of that dialect
/// the first time one needs them (issue 16). Used on the loop only (the cache is not locked).
final class Publication: @unchecked Sendable {
    let event: String
    let data: JSONValue
    /// The ack id the frames ask for (a room message's delivery ack), if any.
    let ackID: Int64?
    /// What the event says of the durable store (recovery offsets), if anything.
    let mark: DeliveryMark?
    /// The native frame.
    let frame: [UInt8]
    private var dialectFrames: [Dialect: [[UInt8]]] = [:]

    init(event: String, data: JSONValue, ackID: Int64? = nil, mark: DeliveryMark? = nil) {
        self.event = event
        self.data = data
        self.ackID = ackID
        self.mark = mark
        frame = SocketSession.frame(for: .event(event, [data], ackID: ackID))
    }

    /// A frame that is not an event of the protocol's vocabulary (already encoded).
    init(frame: [UInt8], event: String) {
        self.event = event
        data = .null
        ackID = nil
        mark = nil
        self.frame = frame
    }

    /// The frames a `dialect` socket gets (none when the dialect has no such event).
    @LoopActor
    func frames(for dialect: Dialect) -> [[UInt8]] {
        if dialect == .native { return [frame] }
        if let cached = dialectFrames[dialect] { return cached }
        let frames = DialectEvents.outbound(dialect, event: event, data: data).enumerated().map { index, translated in
            translated.0 == event && translated.1 == data && index == 0
                ? frame
                : SocketSession.frame(for: .event(translated.0, [translated.1], ackID: index == 0 ? ackID : nil))
        }
        dialectFrames[dialect] = frames
        return frames
    }
}
