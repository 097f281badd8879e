import Testing
@testable import MessageWorker
@testable import Shared

/// The lease of one shard (issue 12), driven with a hand-made clock (nanoseconds).
@Suite struct ShardLeaseTests {
    private static let second: UInt64 = 1_000_000_000
    private let timing = ShardLease.Timing(ttl: .seconds(9), retryEvery: .seconds(1))

    @Test func anAssignedShardIsAcquiredFencedAndStarted() {
        var lease = ShardLease(timing: timing)
        #expect(lease.assign(now: 0) == [.acquire])
        #expect(lease.assign(now: 0) == [])
        #expect(lease.acquireAnswered(granted: true, now: 1_000) == [.advanceEpoch])
        #expect(lease.epochForBatch(now: 1_000) == nil)
        #expect(lease.epochAdvanced(7, now: 2_000) == [.start(epoch: 7), .wake(at: 3 * Self.second)])
        #expect(lease.epochForBatch(now: 2_000) == 7)
        // Validity counts from when SET was sent (0), not from its answer.
        #expect(lease.state == .held(epoch: 7, validUntil: 9 * Self.second))
    }

    @Test func renewalsExtendFromWhenTheyWereSent() {
        var lease = held()
        #expect(lease.timerFired(now: 3 * Self.second) == [.renew])
        #expect(lease.timerFired(now: 3 * Self.second + 5) == [])  // one renewal in flight
        #expect(lease.renewAnswered(kept: true, sentAt: 3 * Self.second, now: 4 * Self.second) == [.wake(at: 6 * Self.second)])
        #expect(lease.state == .held(epoch: 7, validUntil: 12 * Self.second))
    }

    @Test func noBatchStartsInTheLastThirdOfTheValidity() {
        let lease = held()
        #expect(lease.epochForBatch(now: 5 * Self.second) == 7)
        #expect(lease.epochForBatch(now: 6 * Self.second) == nil)
    }

    @Test func aLeaseTakenOverByAnotherWorkerStopsTheShard() {
        var lease = held()
        _ = lease.timerFired(now: 3 * Self.second)
        #expect(lease.renewAnswered(kept: false, sentAt: 3 * Self.second, now: 3 * Self.second + 10)
                == [.stop, .wake(at: 4 * Self.second + 10)])
        #expect(lease.state == .idle)
        #expect(lease.epochForBatch(now: 3 * Self.second + 10) == nil)
        #expect(lease.timerFired(now: 4 * Self.second + 10) == [.acquire])
    }

    @Test func failedRenewalsKeepTheLeaseUntilItsValidityEnds() {
        var lease = held()
        _ = lease.timerFired(now: 3 * Self.second)
        #expect(lease.failed(now: 4 * Self.second) == [.wake(at: 5 * Self.second)])
        #expect(lease.epochForBatch(now: 5 * Self.second) == 7)
        _ = lease.timerFired(now: 5 * Self.second)
        #expect(lease.failed(now: 8 * Self.second + Self.second / 2) == [.wake(at: 9 * Self.second)])
        #expect(lease.epochForBatch(now: 8 * Self.second + Self.second / 2) == nil)
        // A pause past the validity (SIGSTOP): the lease is treated as lost, whatever Redis says later.
        #expect(lease.timerFired(now: 9 * Self.second) == [.stop, .wake(at: 10 * Self.second)])
    }

    @Test func aRefusedAcquisitionIsRetried() {
        var lease = ShardLease(timing: timing)
        _ = lease.assign(now: 0)
        #expect(lease.acquireAnswered(granted: false, now: 10) == [.wake(at: Self.second + 10)])
        #expect(lease.timerFired(now: Self.second + 10) == [.acquire])
    }

    @Test func anEpochThatArrivesAfterTheValidityIsNotUsed() {
        var lease = ShardLease(timing: timing)
        _ = lease.assign(now: 0)
        _ = lease.acquireAnswered(granted: true, now: 1)
        #expect(lease.epochAdvanced(8, now: 9 * Self.second) == [.stop, .wake(at: 10 * Self.second)])
        #expect(lease.epochForBatch(now: 9 * Self.second) == nil)
    }

    @Test func anUnassignedShardIsStoppedAndReleasedAndAnAcquisitionInFlightIsGivenBack() {
        var lease = held()
        #expect(lease.unassign() == [.stop, .release])
        #expect(lease.released(now: 4 * Self.second) == [])
        #expect(lease.state == .idle)
        var acquiring = ShardLease(timing: timing)
        _ = acquiring.assign(now: 0)
        #expect(acquiring.unassign() == [])
        #expect(acquiring.acquireAnswered(granted: true, now: 5) == [.release])
    }

    private func held() -> ShardLease {
        var lease = ShardLease(timing: timing)
        _ = lease.assign(now: 0)
        _ = lease.acquireAnswered(granted: true, now: 1_000)
        _ = lease.epochAdvanced(7, now: 2_000)
        return lease
    }
}
