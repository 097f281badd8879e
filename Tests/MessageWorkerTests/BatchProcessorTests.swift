import Testing
@testable import MessageWorker
@testable import Shared

/// Failure isolation: one bad command cannot sink its batch.
@Suite struct BatchProcessorTests {
    init() { EventLoop.shared.startInBackground() }

    /// Fails every batch containing a poisoned entry with `error`, succeeds otherwise; records batches.
    @LoopActor
    final class FakeApplier: BatchApplier {
        var poisoned: Set<String>
        var error: any Error
        var failuresLeft: Int
        var batches: [[String]] = []

        init(poisoned: Set<String>, error: any Error, failuresLeft: Int = .max) {
            self.poisoned = poisoned
            self.error = error
            self.failuresLeft = failuresLeft
        }

        func apply(_ commands: [BatchCommand], fence: [Int: Int64]) async throws -> [CommandOutcome] {
            batches.append(commands.map(\.entryID))
            if failuresLeft > 0, commands.contains(where: { poisoned.contains($0.entryID) }) {
                failuresLeft -= 1
                throw error
            }
            return commands.map { CommandOutcome(entryID: $0.entryID, reply: nil, events: []) }
        }
    }

    private static func commands(_ count: Int) -> [BatchCommand] {
        (0..<count).map { BatchCommand(entryID: "\($0)-0", envelope: CommandEnvelope(
            command: .read(messageID: Int64($0 + 1)), userID: 1, reply: ReplyAddress(gateway: "g", request: "r\($0)"))) }
    }

    private static let logger = Logger(service: "test", minimumLevel: .error)
    private static let checkViolation = PostgresError.server(PostgresServerError(sqlState: "23514", message: "check"))

    @Test @LoopActor func aPermanentFailureIsIsolatedToTheFaultyCommand() async throws {
        let applier = FakeApplier(poisoned: ["5-0"], error: Self.checkViolation)
        let outcomes = try await BatchProcessor(applier: applier, logger: Self.logger).process(Self.commands(8), fence: [0: 1])
        #expect(outcomes.map(\.entryID) == (0..<8).map { "\($0)-0" })
        let failed = outcomes.filter { $0.deadLetterReason != nil }
        #expect(failed.map(\.entryID) == ["5-0"])
        if case .failed(let code, _, _)? = failed.first?.reply?.outcome { #expect(code == "processing_failed") } else { Issue.record("no error reply") }
        // 8 → 4+4 → (4: 2+2 → 1+1): a logarithmic number of transactions.
        #expect(applier.batches.count <= 8)
        #expect(applier.batches.contains(["0-0", "1-0", "2-0", "3-0"]))
    }

    @Test @LoopActor func transientFailuresAreThrownForALaterRetry() async {
        let applier = FakeApplier(poisoned: ["1-0"], error: PostgresError.unavailable("down"))
        await #expect(throws: PostgresError.self) { try await BatchProcessor(applier: applier, logger: Self.logger).process(Self.commands(4), fence: [0: 1]) }
        #expect(applier.batches.count == 1)
    }

    @Test @LoopActor func conflictsAreRetriedWholeFirst() async throws {
        let deadlock = PostgresError.server(PostgresServerError(sqlState: "40P01", message: "deadlock detected"))
        let applier = FakeApplier(poisoned: ["1-0"], error: deadlock, failuresLeft: 2)
        let outcomes = try await BatchProcessor(applier: applier, logger: Self.logger).process(Self.commands(4), fence: [0: 1])
        #expect(outcomes.allSatisfy { $0.deadLetterReason == nil })
        #expect(applier.batches.count == 3)
        #expect(applier.batches.allSatisfy { $0.count == 4 })
    }

    @Test @LoopActor func aFencedBatchIsPassedOnNotBisected() async {
        let fenced = ShardFence.Fenced(shard: 0, held: 1, current: 2)
        let applier = FakeApplier(poisoned: ["1-0"], error: fenced)
        await #expect(throws: fenced) { try await BatchProcessor(applier: applier, logger: Self.logger).process(Self.commands(4), fence: [0: 1]) }
        #expect(applier.batches.count == 1)
    }

    @Test func classification() {
        func server(_ state: String) -> PostgresError { .server(PostgresServerError(sqlState: state, message: "x")) }
        #expect(BatchFailure.classify(PostgresError.unavailable("x")) == .transient)
        #expect(BatchFailure.classify(PostgresError.connectionLost("x")) == .transient)
        #expect(BatchFailure.classify(PostgresError.timeout) == .transient)
        #expect(BatchFailure.classify(PostgresError.poolExhausted) == .transient)
        #expect(BatchFailure.classify(server("57P01")) == .transient)
        #expect(BatchFailure.classify(server("53300")) == .transient)
        #expect(BatchFailure.classify(server("08006")) == .transient)
        #expect(BatchFailure.classify(server("40001")) == .conflict)
        #expect(BatchFailure.classify(server("40P01")) == .conflict)
        #expect(BatchFailure.classify(server("23505")) == .conflict)
        #expect(BatchFailure.classify(server("23514")) == .permanent)
        #expect(BatchFailure.classify(server("22P02")) == .permanent)
        #expect(BatchFailure.classify(PostgresError.decoding(column: "x", reason: "y")) == .permanent)
        #expect(BatchFailure.classify(MessageBatch.MissingInsert(conversationID: 1, seq: 1)) == .permanent)
    }
}
