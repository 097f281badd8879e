import Glibc
import Testing
@testable import MessageWorker
@testable import Shared

/// The fence of the sharded streams (issue 12) against a real PostgreSQL (`TEST_DATABASE_URL`), in a
/// schema of its own.
@Suite(.serialized) struct ShardFenceTests {
    init() { EventLoop.shared.startInBackground() }

    @Test @LoopActor func eachNewOwnerAdvancesTheEpochAndAStaleEpochIsRefused() async throws {
        let schema = try await ShardTestServices.Schema(poolSize: 3)
        let pool = schema.pool
        #expect(try await ShardFence.advance(shard: 3, owner: "w1", on: pool) == 1)
        #expect(try await ShardFence.advance(shard: 3, owner: "w2", on: pool) == 2)
        #expect(try await ShardFence.advance(shard: 4, owner: "w1", on: pool) == 1)
        try await pool.transaction { connection in try await ShardFence.check(shard: 3, epoch: 2, on: connection) }
        await #expect(throws: ShardFence.Fenced(shard: 3, held: 1, current: 2)) {
            try await pool.transaction { connection in try await ShardFence.check(shard: 3, epoch: 1, on: connection) }
        }
        await #expect(throws: ShardFence.Fenced(shard: 9, held: 1, current: nil)) {
            try await pool.transaction { connection in try await ShardFence.check(shard: 9, epoch: 1, on: connection) }
        }
        try await schema.drop()
    }

    @Test @LoopActor func aNewOwnerWaitsForTheOldOwnersBatchInFlightAndFencesTheNextOne() async throws {
        let schema = try await ShardTestServices.Schema(poolSize: 3)
        let pool = schema.pool
        let epoch = try await ShardFence.advance(shard: 0, owner: "old", on: pool)
        let start = MonotonicClock.now()
        // The old owner's batch: checked, then still writing for 300 ms when the new owner takes over.
        let inFlight = Task { @LoopActor in
            try await pool.transaction { connection in
                try await ShardFence.check(shard: 0, epoch: epoch, on: connection)
                await EventLoop.shared.sleep(for: .milliseconds(300))
                try await connection.query("SELECT 1")
            }
        }
        await EventLoop.shared.sleep(for: .milliseconds(50))
        let newEpoch = try await ShardFence.advance(shard: 0, owner: "new", on: pool)
        let waited = Duration.between(start, MonotonicClock.now())
        try await inFlight.value
        #expect(newEpoch == epoch + 1)
        #expect(waited >= .milliseconds(290), "the advance must wait for the batch holding the old epoch (\(waited))")
        // The old owner's next batch is refused.
        await #expect(throws: ShardFence.Fenced(shard: 0, held: epoch, current: newEpoch)) {
            try await pool.transaction { connection in try await ShardFence.check(shard: 0, epoch: epoch, on: connection) }
        }
        try await schema.drop()
    }
}
