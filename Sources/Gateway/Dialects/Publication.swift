import Shared

/// One published event on its way to local sockets: its native frame, encoded once for every
/// native socket, and the frames of each dialect, encoded once for every socket of that dialect,
/// each the first time a socket needs it (issue 16). Used on the loop only (the caches are not
/// locked; `UserChannels.published` builds one off the loop, before any frame is asked for).
final class Publication: @unchecked Sendable {
    let event: String
    let data: JSONValue
    /// The ack id the frames ask for (a room message's delivery ack), if any.
    let ackID: Int64?
    /// What the event says of the durable store (recovery offsets), if anything.
    let mark: DeliveryMark?
    private var nativeFrame: [UInt8]?
    /// The frames of the first dialect that asked (most publications reach one dialect at most),
    /// then of the others.
    private var firstDialect: (dialect: Dialect, frames: [[UInt8]])?
    private var otherDialects: [Dialect: [[UInt8]]] = [:]

    init(event: String, data: JSONValue, ackID: Int64? = nil, mark: DeliveryMark? = nil) {
        self.event = event
        self.data = data
        self.ackID = ackID
        self.mark = mark
    }

    /// The native frame, encoded the first time a native socket needs it (a publication only
    /// dialect sockets get is never encoded natively).
    var frame: [UInt8] {
        if let nativeFrame { return nativeFrame }
        let encoded = SocketSession.frame(for: .event(event, [data], ackID: ackID))
        nativeFrame = encoded
        return encoded
    }

    /// The frames a `dialect` socket gets (none when the dialect has no such event).
    @LoopActor
    func frames(for dialect: Dialect) -> [[UInt8]] {
        if dialect == .native || !DialectEvents.translates(dialect, event) { return [frame] }
        if let first = firstDialect, first.dialect == dialect { return first.frames }
        if let cached = otherDialects[dialect] { return cached }
        let frames = DialectEvents.outbound(dialect, event: event, data: data).enumerated().map { index, translated in
            SocketSession.frame(for: .event(translated.0, [translated.1], ackID: index == 0 ? ackID : nil))
        }
        if firstDialect == nil { firstDialect = (dialect, frames) } else { otherDialects[dialect] = frames }
        return frames
    }
}
