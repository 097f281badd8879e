import Shared

/// The message limit (default 5 sends per 10 s per user), for the whole cluster: before a batch's
/// transaction, one script call per sender decides that sender's sends in stream order, keyed by
/// client message id, so a redelivered or retried command keeps the slot it already had. Refused
/// sends are marked, answered `rate_limited` with `retryAfterMs`, and never stored.
@LoopActor
final class MessageRateLimit {
    private let limiter: RateLimiter

    init(limiter: RateLimiter) {
        self.limiter = limiter
    }

    var policy: RateLimitPolicy { limiter.policy }

    /// `commands` with `rateLimited` set on the sends the limit refuses.
    func apply(to commands: [BatchCommand]) async -> [BatchCommand] {
        // Per sender, in stream order: (command index, client message id).
        var sendsBySender: [Int64: [(index: Int, member: String)]] = [:]
        var order: [Int64] = []
        for (index, command) in commands.enumerated() {
            guard case .send(let message) = command.envelope.command else { continue }
            let sender = command.envelope.userID
            if sendsBySender[sender] == nil { order.append(sender) }
            sendsBySender[sender, default: []].append((index, message.clientMsgID))
        }
        // Every sender's script is sent at once (hiredis pipelines them); each is atomic on its own.
        let limiter = self.limiter
        var pending: [(indices: [Int], decisions: Task<[RateLimitDecision], Never>)] = []
        for sender in order {
            let sends = sendsBySender[sender] ?? []
            for start in stride(from: 0, to: sends.count, by: RateLimiter.maxMembersPerCall) {
                let chunk = sends[start..<min(sends.count, start + RateLimiter.maxMembersPerCall)]
                let members = chunk.map(\.member)
                pending.append((chunk.map(\.index), Task.onLoop { await limiter.check(String(sender), members: members) }))
            }
        }
        var result = commands
        for (indices, task) in pending {
            for (index, decision) in zip(indices, await task.value) {
                result[index].rateLimited = decision.refusal(limiter.policy, what: "too many messages")
            }
        }
        return result
    }
}
