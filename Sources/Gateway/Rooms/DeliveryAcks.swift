import Shared

/// Delivery confirmed by the Socket.IO ack of a room message (issue 13).
///
/// A room's `receiveMessage` goes out with an ack id that names the message
/// (`SocketSessionMachine.deliveryAckID`), the same in every socket's frame, so the frame is still
/// encoded once per gateway. A client that acknowledges it (python-socketio always does; the
/// JavaScript client when its handler calls the callback) confirms receipt like
/// `messageDelivered {roomId, seq}` does. The book remembers which room and `seq` recent messages
/// had, and keeps the highest confirmed `seq` per member and room; a timer turns them into one
/// `delivered` command per member and room per interval, whatever the message rate.
struct DeliveryAckBook {
    struct Delivery: Equatable {
        var room: Int64
        var seq: Int64
    }

    struct Member: Hashable {
        var user: Int64
        var room: Int64
    }

    /// Messages remembered; an ack of an older one is ignored (a later ack covers it).
    let capacity: Int
    private var recent: [Int64: Delivery] = [:]
    private var order: [Int64] = []
    private var oldest = 0
    /// The highest `seq` each member confirmed since the last drain.
    private(set) var pending: [Member: Int64] = [:]

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// A room message went out with its delivery ack id.
    mutating func remember(messageID: Int64, room: Int64, seq: Int64) {
        guard recent.updateValue(Delivery(room: room, seq: seq), forKey: messageID) == nil else { return }
        if order.count < capacity {
            order.append(messageID)
        } else {
            recent[order[oldest]] = nil
            order[oldest] = messageID
            oldest = (oldest + 1) % capacity
        }
    }

    /// The room and `seq` of a remembered message.
    func delivery(of messageID: Int64) -> Delivery? { recent[messageID] }

    /// `user` acknowledged `messageID`: true when it counts (a remembered message of a room the
    /// user is a member of here, per `isMember`).
    mutating func acknowledged(_ messageID: Int64, by user: Int64, isMember: (Int64) -> Bool) -> Bool {
        guard let delivery = recent[messageID], isMember(delivery.room) else { return false }
        let member = Member(user: user, room: delivery.room)
        pending[member] = max(pending[member] ?? 0, delivery.seq)
        return true
    }

    /// The confirmations gathered since the last drain, one per member and room.
    mutating func drain() -> [(member: Member, seq: Int64)] {
        defer { pending = [:] }
        return pending.map { (member: $0.key, seq: $0.value) }
    }
}

/// The gateway's `DeliveryAckBook` and its flush timer.
@LoopActor
final class DeliveryAcks {
    private var book: DeliveryAckBook
    private let interval: Duration
    private let clock: any LoopClock
    private let submitter: CommandSubmitter
    private let isMember: @LoopActor (_ user: Int64, _ room: Int64) -> Bool
    private var timer: TimerHandle?

    init(capacity: Int = 65_536, interval: Duration = .seconds(1), clock: any LoopClock, submitter: CommandSubmitter,
         isMember: @escaping @LoopActor (_ user: Int64, _ room: Int64) -> Bool) {
        book = DeliveryAckBook(capacity: capacity)
        self.interval = interval
        self.clock = clock
        self.submitter = submitter
        self.isMember = isMember
    }

    /// The ack id a room message's frame carries; nil when its id cannot be one.
    func ackID(messageID: Int64, room: Int64, seq: Int64) -> Int64? {
        guard let ackID = SocketSessionMachine.deliveryAckID(messageID: messageID) else { return nil }
        book.remember(messageID: messageID, room: room, seq: seq)
        return ackID
    }

    /// A socket of `user` acknowledged the delivery of `messageID`.
    func acknowledged(_ messageID: Int64, by user: Int64) {
        guard book.acknowledged(messageID, by: user, isMember: { isMember(user, $0) }) else { return }
        GatewayMetrics.deliveryAcks.increment()
        guard timer == nil else { return }
        timer = clock.schedule(after: interval) { [weak self] in self?.flush() }
    }

    /// Submits the gathered confirmations (nobody waits for their outcome: the worker checks the
    /// membership and moves the pointer forward only).
    func flush() {
        timer = nil
        for (member, seq) in book.drain() {
            let command = ChatCommand.delivered(roomID: member.room, seq: seq)
            Task.onLoop { try? await self.submitter.submitUnanswered(command, userID: member.user) }
        }
    }

    func close() {
        if let timer { clock.cancel(timer) }
        timer = nil
    }
}
