/// Which receivers one socket is typing to, and when each indicator lapses. A pure state machine:
/// the caller passes the monotonic time and performs what the methods return (publish `typing` /
/// `stopTyping`, arm a timer for `nextDeadline`).
///
/// - `typing` to a new receiver is relayed at once; repeats within `repeatInterval` only push the
///   deadline back, so a client that emits `typing` on every keystroke costs one publish a second.
/// - Without a new `typing` for `timeout`, the receiver gets an automatic `stopTyping`.
/// - An explicit `stopTyping` is relayed only if this socket was typing to that receiver.
struct TypingState: Sendable, Equatable {
    /// Timing and bounds, in nanoseconds of the monotonic clock.
    struct Limits: Sendable, Equatable {
        var timeout: UInt64
        var repeatInterval: UInt64
        var maxReceivers: Int
    }

    /// What to do about a `typing` event.
    enum TypingAction: Sendable, Equatable {
        /// Publish `typing` to the receiver.
        case publish
        /// Already relayed recently: the deadline moved, nothing to publish.
        case rearmed
        /// Typing to too many receivers at once; nothing changed.
        case refused
    }

    private struct Entry: Sendable, Equatable {
        var deadline: UInt64
        var lastPublished: UInt64
    }

    let limits: Limits
    private var receivers: [Int64: Entry] = [:]

    init(limits: Limits) {
        self.limits = limits
    }

    /// Receivers with a live indicator, ascending.
    var activeReceivers: [Int64] { receivers.keys.sorted() }

    /// The earliest deadline, for the caller's timer; nil when nobody is being typed to.
    var nextDeadline: UInt64? { receivers.values.map(\.deadline).min() }

    /// A `typing` event to `receiver` at `now`.
    mutating func typing(to receiver: Int64, now: UInt64) -> TypingAction {
        let deadline = now + limits.timeout
        if var entry = receivers[receiver] {
            entry.deadline = deadline
            if now >= entry.lastPublished + limits.repeatInterval {
                entry.lastPublished = now
                receivers[receiver] = entry
                return .publish
            }
            receivers[receiver] = entry
            return .rearmed
        }
        guard receivers.count < limits.maxReceivers else { return .refused }
        receivers[receiver] = Entry(deadline: deadline, lastPublished: now)
        return .publish
    }

    /// A `stopTyping` event: true if `stopTyping` must be published (the indicator was live).
    mutating func stopTyping(to receiver: Int64) -> Bool {
        receivers.removeValue(forKey: receiver) != nil
    }

    /// Receivers whose deadline is at or before `now`, removed, ascending: publish `stopTyping` to each.
    mutating func expire(now: UInt64) -> [Int64] {
        let due = receivers.filter { $0.value.deadline <= now }.keys.sorted()
        for receiver in due { receivers.removeValue(forKey: receiver) }
        return due
    }

    /// The socket is going away: every live indicator ends (ascending).
    mutating func stopAll() -> [Int64] {
        let all = activeReceivers
        receivers.removeAll()
        return all
    }
}
