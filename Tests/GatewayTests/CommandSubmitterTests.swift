import Testing
@testable import Gateway
@testable import Shared

/// Reply routing and the failure paths of `CommandSubmitter`, with a Redis client that never
/// connects (the happy path, with a worker, is in the e2e suite).
@Suite struct CommandSubmitterTests {
    init() { EventLoop.shared.startInBackground() }

    @LoopActor
    private func submitter() -> CommandSubmitter {
        let redis = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: 1))
        return CommandSubmitter(redis: redis, gatewayID: "gw-test", shards: CommandShards(count: 8), replyTimeout: .milliseconds(200))
    }

    private static func payload(_ reply: ChatReply) -> [UInt8] { reply.payload() }

    @Test @LoopActor func commandsAreRefusedWhileRepliesCannotArrive() async {
        let submitter = submitter()
        submitter.canReceiveReplies = { false }
        await #expect(throws: APIError.redisUnavailable) { try await submitter.submit(.read(messageID: 1), userID: 2) }
        var notSent: [APIError] = []
        #expect(throws: APIError.redisUnavailable) {
            try submitter.submit(.read(messageID: 1), userID: 2, engineSession: "sid", ackID: 1) { notSent.append($0) }
        }
        #expect(submitter.waitingCount == 0)
        #expect(notSent.isEmpty, "refused at once, not answered again later")
    }

    @Test @LoopActor func aCommandThatCannotBeAppendedFailsAtOnce() async {
        let submitter = submitter()
        await #expect(throws: APIError.redisUnavailable) { try await submitter.submit(.readAll(senderID: 3), userID: 2) }
        // A socket's command is admitted at once; the failed append is answered through `notSent`.
        var notSent: [APIError] = []
        try? submitter.submit(.readAll(senderID: 3), userID: 2, engineSession: "sid", ackID: 7) { notSent.append($0) }
        #expect(submitter.waitingCount == 1)
        let deadline = MonotonicClock.deadline(after: .seconds(5), from: MonotonicClock.now())
        while notSent.isEmpty && MonotonicClock.now() < deadline { await EventLoop.shared.sleep(for: .milliseconds(1)) }
        #expect(notSent == [APIError.redisUnavailable])
        #expect(submitter.waitingCount == 0, "no waiter may stay behind")
    }

    /// Past `maxPending` a socket's command is refused during the call (no task, no timer), with
    /// when to come back; what was admitted still waits for its reply.
    @Test @LoopActor func aSocketCommandPastTheBoundIsRefusedAtOnceWithRetryAfter() {
        let redis = RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: 1))
        let submitter = CommandSubmitter(redis: redis, gatewayID: "gw-test", shards: CommandShards(count: 8), maxPending: 2,
                                         replyTimeout: .seconds(5))
        for ack in 1...2 {
            #expect(throws: Never.self) { try submitter.submit(.read(messageID: 1), userID: 2, engineSession: "sid", ackID: Int64(ack)) { _ in } }
        }
        #expect(submitter.waitingCount == 2)
        do {
            try submitter.submit(.read(messageID: 1), userID: 2, engineSession: "sid", ackID: 3) { _ in }
            Issue.record("a third command was admitted past maxPending 2")
        } catch {
            #expect(error.code == .overloaded)
            #expect(error.details["retryAfterMs"] != nil)
        }
        #expect(submitter.waitingCount == 2, "a refusal leaves no waiter behind")
        submitter.close()
    }

    @Test @LoopActor func socketRepliesAreRoutedOnceAndOnlyWhenExpected() {
        let submitter = submitter()
        var delivered: [ChatReply] = []
        submitter.answerSocket = { delivered.append($0) }
        #expect(submitter.receive(replyPayload: Array("not json".utf8)) == false)
        #expect(submitter.receive(replyPayload: Array(#"{"reply":{"gateway":"gw-test"}}"#.utf8)) == false)

        // An error for a socket that asked for no ack: delivered (it becomes an `error` event).
        let failure = ChatReply(reply: ReplyAddress(gateway: "gw-test", engineSession: "sid"), error: ChatErrors.userNotFound)
        #expect(submitter.receive(replyPayload: Self.payload(failure)))
        #expect(delivered == [failure])

        // An ack nobody waits for (already answered by the timeout): dropped.
        let late = ChatReply(reply: ReplyAddress(gateway: "gw-test", engineSession: "sid", ack: 4), outcome: .ok(["id": 1]))
        #expect(submitter.receive(replyPayload: Self.payload(late)))
        #expect(delivered.count == 1)

        // A REST reply nobody waits for: dropped quietly.
        let rest = ChatReply(reply: ReplyAddress(gateway: "gw-test", request: "x-1"), outcome: .ok(["count": 1]))
        #expect(submitter.receive(replyPayload: Self.payload(rest)))
        #expect(delivered.count == 1)
    }

    @Test func ackArgumentsCarryTheResultOrTheError() {
        #expect(ChatReply.Outcome.ok(["id": 5]).ackArgument == ["id": 5])
        #expect(ChatReply.Outcome.failed(code: "not_a_recipient", message: "m").ackArgument
                == ["error": ["code": "not_a_recipient", "message": "m"]])
    }
}
