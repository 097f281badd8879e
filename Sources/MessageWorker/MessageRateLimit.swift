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
        var sendsBySender: [Int64: [Int]] = [:]
        var order: [Int64] = []
        for (index, command) in commands.enumerated() {
            guard case .send = command.envelope.command else { continue }
            let sender = command.envelope.userID
            if sendsBySender[sender] == nil { order.append(sender) }
            sendsBySender[sender, default: []].append(index)
        }
        guard !order.isEmpty else { return commands }
        // Every sender's script is sent at once (hiredis pipelines them); each is atomic on its own.
        var pending: [(indices: [Int], decisions: Task<[RateLimitDecision], Never>)] = []
        for sender in order {
            guard let indices = sendsBySender[sender] else { continue }
            for chunk in stride(from: 0, to: indices.count, by: RateLimiter.maxMembersPerCall) {
                let slice = Array(indices[chunk..<min(indices.count, chunk + RateLimiter.maxMembersPerCall)])
                let members = slice.map { index -> String in
                    if case .send(let message) = commands[index].envelope.command { return message.clientMsgID }
                    return commands[index].entryID
                }
                let limiter = self.limiter
                pending.append((slice, Task { @LoopActor in await limiter.check(String(sender), members: members) }))
            }
        }
        var result = commands
        for (indices, task) in pending {
            let decisions = await task.value
            for (index, decision) in zip(indices, decisions) where !decision.allowed {
                result[index].rateLimited = decision.source == .failClosed
                    ? APIError.rateLimiterUnavailable
                    : APIError.rateLimited(limiter.policy, decision, message: "too many messages (\(limiter.policy.summary)); retry in \(decision.retryAfterSeconds) s")
            }
        }
        return result
    }
}
