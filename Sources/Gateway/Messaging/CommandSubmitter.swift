import Shared

/// Appends commands to the command stream and routes the workers' replies back to whoever waits:
/// a REST request (suspended in `submit`) or a socket (through `answerSocket`, the one path a
/// socket's answer takes, a worker's reply or a timeout alike).
///
/// Replies arrive on this gateway's channel `chat:gw:{gatewayId}` (subscribed by `UserChannels`).
/// A REST request, and a socket command that asked for an ack, waits at most `replyTimeout`; after
/// that it is answered `worker_unavailable` and a late reply is dropped (an ack is answered once).
@LoopActor
final class CommandSubmitter {
    /// A socket command waiting for its ack: the socket's Engine.IO session id and the ack id.
    struct SocketAck: Hashable, Sendable {
        var engineSession: String
        var ack: Int64
    }

    private enum Waiting {
        case reply(ChatReply.Outcome)
        case timedOut
        case notSent
    }

    private let redis: RedisClient
    let gatewayID: String
    private let shards: CommandShards
    private let replyTimeout: Duration
    private let clock: any LoopClock
    /// Commands waiting for a reply beyond which new ones are refused (`overloaded`).
    private let maxPending: Int
    /// How fast the workers answer now, for the `retryAfterMs` of a refusal.
    private var replyRate = ReplyRate()
    /// REST requests waiting for their reply, by request id.
    private var requests: [String: (continuation: CheckedContinuation<Waiting, Never>, timer: TimerHandle)] = [:]
    /// Socket acks waiting for their reply (the timer answers `worker_unavailable`).
    private var socketAcks: [SocketAck: TimerHandle] = [:]
    /// Request ids are this prefix (random per process, so a restarted gateway with the same id
    /// never matches an old reply) and a counter.
    private let requestPrefix = SecureRandom.token(byteCount: 6)
    private var requestCounter: UInt64 = 0

    /// Whether replies can reach this gateway now (its channel is subscribed); when not, commands
    /// are refused with `redis_unavailable` rather than left to time out.
    var canReceiveReplies: @LoopActor () -> Bool = { true }
    /// Answers a socket: a worker's reply for it, or the `worker_unavailable` of an ack that timed out.
    var answerSocket: (@LoopActor (ChatReply) -> Void)?

    init(redis: RedisClient, gatewayID: String, shards: CommandShards, maxPending: Int = 10_000, replyTimeout: Duration,
         clock: any LoopClock = SystemClock.shared) {
        self.redis = redis
        self.maxPending = maxPending
        self.gatewayID = gatewayID
        self.shards = shards
        self.replyTimeout = replyTimeout
        self.clock = clock
    }

    /// Commands waiting for a reply (REST requests and socket acks).
    var waitingCount: Int { requests.count + socketAcks.count }

    // MARK: Submitting

    /// Appends `command` for `userID` and waits for the worker's result (REST). Throws the worker's
    /// error as an `APIError`, `redis_unavailable` when it could not be appended, and
    /// `worker_unavailable` after the reply timeout.
    func submit(_ command: ChatCommand, userID: Int64) async throws(APIError) -> JSONValue {
        guard canReceiveReplies() else { throw APIError.redisUnavailable }
        try admit()
        requestCounter += 1
        let requestID = requestPrefix + "-" + String(requestCounter)
        let envelope = CommandEnvelope(command: command, userID: userID,
                                       reply: ReplyAddress(gateway: gatewayID, request: requestID))
        // The waiter is registered before XADD is sent: the reply may arrive before XADD's own answer.
        let waiting = await withCheckedContinuation { (continuation: CheckedContinuation<Waiting, Never>) in
            let timer = clock.schedule(after: replyTimeout) { [weak self] in
                self?.finishRequest(requestID, .timedOut)
            }
            requests[requestID] = (continuation, timer)
            Task.onLoop {
                do throws(RedisError) {
                    try await self.append(envelope)
                } catch .unavailable {
                    self.finishRequest(requestID, .notSent)
                } catch {
                    // Timeout or lost connection: the entry may have been appended, so the reply may still come.
                }
            }
        }
        switch waiting {
        case .reply(.ok(let result)):
            return result
        case .reply(.failed(let code, let message, let details)):
            throw ChatErrors.apiError(code: code, message: message, details: details)
        case .timedOut:
            throw ChatErrors.workerUnavailable
        case .notSent:
            throw APIError.redisUnavailable
        }
    }

    /// Admits a socket's command and starts appending it; the outcome reaches the socket later
    /// through `answerSocket` (with `ackID`: always, a timeout included; without: only errors).
    /// Admission is decided here, without suspending: a refusal (`overloaded`, or no reply channel)
    /// is thrown at once, so the socket's answer is written while its input is being read (and
    /// the socket's output queue holds back its input, `WebSocketConnection`); under a flood no
    /// task or timer is made for a command that is refused. `notSent` hears an append that Redis
    /// refused later (`redis_unavailable`). Appends start in call order (the loop runs tasks in
    /// the order they were made), so one socket's commands reach the stream in its order.
    func submit(_ command: ChatCommand, userID: Int64, engineSession: String, ackID: Int64?,
                notSent: @escaping @LoopActor (APIError) -> Void) throws(APIError) {
        guard canReceiveReplies() else { throw APIError.redisUnavailable }
        try admit()
        let envelope = CommandEnvelope(command: command, userID: userID,
                                       reply: ReplyAddress(gateway: gatewayID, engineSession: engineSession, ack: ackID))
        let address = ackID.map { SocketAck(engineSession: engineSession, ack: $0) }
        if let address {
            if let previous = socketAcks[address] { clock.cancel(previous) }
            socketAcks[address] = clock.schedule(after: replyTimeout) { [weak self] in
                self?.socketAckTimedOut(address)
            }
        }
        Task.onLoop {
            do throws(RedisError) {
                try await self.append(envelope)
            } catch .unavailable {
                if let address, let timer = self.socketAcks.removeValue(forKey: address) { self.clock.cancel(timer) }
                notSent(APIError.redisUnavailable)
            } catch {
                // May have been appended: the reply (or the ack timeout) answers.
            }
        }
    }

    /// Refuses a new command while `maxPending` wait for replies: the workers are behind, and
    /// more would only lengthen the stream and every sender's wait. The refusal says when to come
    /// back: the time the workers need, at their current reply rate, to answer what waits.
    private func admit() throws(APIError) {
        let waiting = waitingCount
        guard waiting >= maxPending else { return }
        let retryAfter = replyRate.retryAfter(waiting: waiting, at: clock.now(), cap: replyTimeout)
        GatewayMetrics.commandsRefused.increment()
        throw APIError.overloaded(retryAfter: retryAfter,
                                  message: "the message workers are behind (\(waiting) writes waiting on this gateway); retry later")
    }

    /// Appends a command nobody waits for (no reply address: the worker answers no one). Throws
    /// when it was not appended.
    func submitUnanswered(_ command: ChatCommand, userID: Int64) async throws(RedisError) {
        try await append(CommandEnvelope(command: command, userID: userID))
    }

    /// Appends to the command's shard: the conversation's, so one device's commands in a
    /// conversation reach one worker in the order this gateway received them (issue 12).
    private func append(_ envelope: CommandEnvelope) async throws(RedisError) {
        // No MAXLEN here: the workers trim the stream without dropping unacknowledged entries.
        let shard = shards.shard(of: envelope.command, userID: envelope.userID)
        _ = try await redis.send(.xadd(shards.stream(shard), fields: envelope.streamFields()))
    }

    // MARK: Replies

    /// A payload published on this gateway's reply channel. Returns false when it is not a reply.
    @discardableResult
    func receive(replyPayload payload: [UInt8]) -> Bool {
        guard let reply = ChatReply.parse(payload) else { return false }
        replyRate.replied(at: clock.now())
        if let requestID = reply.reply.request {
            finishRequest(requestID, .reply(reply.outcome))
        } else if let engineSession = reply.reply.engineSession {
            if let ack = reply.reply.ack {
                // Answered already (timed out) or never asked for: an ack id is answered once.
                guard let timer = socketAcks.removeValue(forKey: SocketAck(engineSession: engineSession, ack: ack)) else { return true }
                clock.cancel(timer)
            }
            answerSocket?(reply)
        }
        return true
    }

    /// A socket closed: its pending acks can no longer be answered.
    func forget(engineSession: String) {
        for (address, timer) in socketAcks where address.engineSession == engineSession {
            clock.cancel(timer)
            socketAcks.removeValue(forKey: address)
        }
    }

    private func finishRequest(_ requestID: String, _ waiting: Waiting) {
        guard let entry = requests.removeValue(forKey: requestID) else { return }
        clock.cancel(entry.timer)
        entry.continuation.resume(returning: waiting)
    }

    private func socketAckTimedOut(_ address: SocketAck) {
        guard socketAcks.removeValue(forKey: address) != nil else { return }
        answerSocket?(ChatReply(reply: ReplyAddress(gateway: gatewayID, engineSession: address.engineSession, ack: address.ack),
                                 error: ChatErrors.workerUnavailable))
    }

    /// Shutdown: every waiting REST request is answered `worker_unavailable` now.
    func close() {
        for requestID in Array(requests.keys) { finishRequest(requestID, .timedOut) }
        for timer in socketAcks.values { clock.cancel(timer) }
        socketAcks.removeAll()
    }
}
