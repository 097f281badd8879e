import Testing
@testable import MessageWorker
import Shared

/// The consumer loop's decisions, driven with a hand-made clock.
@Suite struct WorkerCycleTests {
    private static let ms: UInt64 = 1_000_000

    @Test func startsWithTheGroupThenOwnPendingThenClaimsThenNew() {
        var cycle = WorkerCycle(claimInterval: .milliseconds(5_000), trimInterval: .milliseconds(10_000), now: 0)
        #expect(cycle.next(now: 0) == .createGroup)
        cycle.groupCreated()
        #expect(cycle.next(now: 0) == .readOwnPending(after: "0"))
        cycle.ownPendingRead(lastID: "5-1")
        #expect(cycle.next(now: 1) == .readOwnPending(after: "5-1"))
        cycle.ownPendingRead(lastID: nil)
        #expect(cycle.next(now: 2) == .claim(cursor: "0-0"))
        cycle.claimed(nextCursor: "0-0", now: 2)
        #expect(cycle.next(now: 3) == .readNew)
        cycle.newRead()
        #expect(cycle.next(now: 4_999 * Self.ms) == .readNew)
    }

    @Test func claimsRecurEveryIntervalAndContinueAPartialScanAtOnce() {
        var cycle = WorkerCycle(claimInterval: .milliseconds(5_000), trimInterval: .milliseconds(60_000), now: 0)
        cycle.groupCreated()
        cycle.ownPendingRead(lastID: nil)
        #expect(cycle.next(now: 0) == .claim(cursor: "0-0"))
        cycle.claimed(nextCursor: "17-3", now: 10)
        #expect(cycle.next(now: 11) == .claim(cursor: "17-3"))
        cycle.claimed(nextCursor: "0-0", now: 20)
        #expect(cycle.next(now: 21) == .readNew)
        #expect(cycle.next(now: 20 + 5_000 * Self.ms) == .claim(cursor: "0-0"))
    }

    @Test func trimsEveryInterval() {
        var cycle = WorkerCycle(claimInterval: .milliseconds(60_000), trimInterval: .milliseconds(10_000), now: 0)
        cycle.groupCreated()
        cycle.ownPendingRead(lastID: nil)
        cycle.claimed(nextCursor: "0-0", now: 0)
        #expect(cycle.next(now: 9_999 * Self.ms) == .readNew)
        #expect(cycle.next(now: 10_000 * Self.ms) == .trim)
        cycle.trimmed(now: 10_000 * Self.ms)
        #expect(cycle.next(now: 10_001 * Self.ms) == .readNew)
        #expect(cycle.next(now: 20_000 * Self.ms) == .trim)
    }

    @Test func failuresPauseWithDoublingBackoffAndResetOnSuccess() {
        var cycle = WorkerCycle(claimInterval: .milliseconds(60_000), trimInterval: .milliseconds(60_000), now: 0)
        cycle.failed(.createGroup, groupMissing: false, now: 0)
        #expect(cycle.next(now: 0) == .pause(.milliseconds(100)))
        #expect(cycle.next(now: 0) == .createGroup)
        var pauses: [Int64] = []
        for _ in 0..<8 {
            cycle.failed(.createGroup, groupMissing: false, now: 0)
            if case .pause(let delay) = cycle.next(now: 0) { pauses.append(delay.wholeMilliseconds) }
        }
        #expect(pauses == [200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000])
        cycle.groupCreated()
        cycle.failed(.readOwnPending(after: "0"), groupMissing: false, now: 0)
        #expect(cycle.next(now: 0) == .pause(.milliseconds(100)))
    }

    @Test func aMissingGroupIsCreatedAgainAndOwnPendingReread() {
        var cycle = WorkerCycle(claimInterval: .milliseconds(60_000), trimInterval: .milliseconds(60_000), now: 0)
        cycle.groupCreated()
        cycle.ownPendingRead(lastID: nil)
        cycle.claimed(nextCursor: "0-0", now: 0)
        cycle.failed(.readNew, groupMissing: true, now: 0)
        #expect(cycle.next(now: 1) == .pause(.milliseconds(100)))
        #expect(cycle.next(now: 1) == .createGroup)
        cycle.groupCreated()
        #expect(cycle.next(now: 1) == .readOwnPending(after: "0"))
    }

    @Test func aFailedClaimOrTrimWaitsForItsNextInterval() {
        var cycle = WorkerCycle(claimInterval: .milliseconds(1_000), trimInterval: .milliseconds(1_000), now: 0)
        cycle.groupCreated()
        cycle.ownPendingRead(lastID: nil)
        cycle.claimed(nextCursor: "9-9", now: 0)
        cycle.failed(.claim(cursor: "9-9"), groupMissing: false, now: 0)
        _ = cycle.next(now: 0)  // the pause
        #expect(cycle.next(now: 999 * Self.ms) == .readNew)
        #expect(cycle.next(now: 1_000 * Self.ms) == .trim)
        cycle.failed(.trim, groupMissing: false, now: 1_000 * Self.ms)
        _ = cycle.next(now: 1_000 * Self.ms)
        #expect(cycle.next(now: 1_000 * Self.ms) == .claim(cursor: "0-0"))
    }

    @Test func retryDelaysDoubleUpToTheMaximum() {
        #expect((1...8).map { WorkerCycle.retryDelay(attempt: $0).wholeMilliseconds } == [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000])
        #expect(WorkerCycle.retryDelay(attempt: 1_000) == .seconds(5))
    }
}
