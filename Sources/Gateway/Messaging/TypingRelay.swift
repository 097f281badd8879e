import Shared

/// One socket's typing indicators: relays `typing` / `stopTyping` `{senderId, receiverId}` to the
/// receiver's user channel, or `{senderId, roomId}` to a room's channel for its other members
/// (every device, any gateway; never the stream or the database), and sends `stopTyping` by itself
/// when the typist falls silent or the socket goes away. The decisions are `TypingState`'s (a room
/// is a target like a receiver, keyed by its negated id); this class owns the timer and publishes.
@LoopActor
final class TypingRelay {
    private let senderID: Int64
    private var state: TypingState
    private let publish: @LoopActor (_ event: SocketEvent, _ payload: JSONValue, _ target: MessageTarget) -> Void
    private var timer: TimerHandle?
    private var timerDeadline: UInt64?
    private let clock: any LoopClock

    init(senderID: Int64, limits: TypingState.Limits, clock: any LoopClock,
         publish: @escaping @LoopActor (_ event: SocketEvent, _ payload: JSONValue, _ target: MessageTarget) -> Void) {
        self.senderID = senderID
        state = TypingState(limits: limits)
        self.publish = publish
        self.clock = clock
    }

    /// `typing {receiverId}` or `{roomId}`; false when refused (too many targets at once).
    func typing(to target: MessageTarget) -> Bool {
        let receiverID = Self.key(target)
        switch state.typing(to: receiverID, now: clock.now()) {
        case .publish:
            relay(.typing, to: receiverID)
        case .rearmed:
            break
        case .refused:
            return false
        }
        armTimer()
        return true
    }

    /// `stopTyping {receiverId}` or `{roomId}`: relayed only when this socket was typing there.
    func stopTyping(to target: MessageTarget) {
        let receiverID = Self.key(target)
        if state.stopTyping(to: receiverID) { relay(.stopTyping, to: receiverID) }
        armTimer()
    }

    /// `TypingState`'s key of a target: a user's id, a room's id negated (ids are positive).
    private static func key(_ target: MessageTarget) -> Int64 {
        switch target {
        case .user(let id): id
        case .room(let id): -id
        }
    }

    /// The socket closed: every live indicator stops now.
    func stopAll() {
        for receiverID in state.stopAll() { relay(.stopTyping, to: receiverID) }
        cancelTimer()
    }

    private func relay(_ event: SocketEvent, to key: Int64) {
        if key < 0 {
            publish(event, ["senderId": .int(senderID), "roomId": .int(-key)], .room(-key))
        } else {
            publish(event, ["senderId": .int(senderID), "receiverId": .int(key)], .user(key))
        }
    }

    /// Keeps one timer at the earliest deadline. Deadlines only move later, so an armed timer
    /// that fires early just finds nothing due and re-arms.
    private func armTimer() {
        guard let deadline = state.nextDeadline else { return cancelTimer() }
        if let timerDeadline, timerDeadline <= deadline, timer != nil { return }
        cancelTimer()
        let now = clock.now()
        timerDeadline = deadline
        timer = clock.schedule(after: MonotonicClock.duration(until: deadline, from: now)) { [weak self] in
            guard let self else { return }
            self.timer = nil
            self.timerDeadline = nil
            for receiverID in self.state.expire(now: self.clock.now()) { self.relay(.stopTyping, to: receiverID) }
            self.armTimer()
        }
    }

    private func cancelTimer() {
        if let timer { clock.cancel(timer) }
        timer = nil
        timerDeadline = nil
    }
}
