import Testing
@testable import MessageWorker
import Shared

/// The consumer loop's decisions over the shards it holds, driven with a hand-made clock.
@Suite struct WorkerCycleTests {
    private static let ms: UInt64 = 1_000_000

    /// A cycle with `shards` started and live (groups created, nothing pending).
    private static func live(_ shards: [Int], trimInterval: Duration = .seconds(60)) -> WorkerCycle {
        var cycle = WorkerCycle(trimInterval: trimInterval, now: 0)
        for shard in shards {
            cycle.started(shard)
            cycle.groupCreated(shard)
            cycle.claimed(shard, nextCursor: "0-0")
        }
        return cycle
    }

    @Test func withoutShardsItIdles() {
        var cycle = WorkerCycle(trimInterval: .seconds(10), now: 0)
        #expect(cycle.next(now: 0) == .idle)
        #expect(cycle.next(now: 20_000 * Self.ms) == .idle)
    }

    @Test func aStartedShardCreatesItsGroupThenClaimsEverythingPendingBeforeReadingNew() {
        var cycle = WorkerCycle(trimInterval: .seconds(10), now: 0)
        cycle.started(3)
        #expect(cycle.next(now: 0) == .createGroup(shard: 3))
        cycle.groupCreated(3)
        #expect(cycle.next(now: 0) == .claim(shard: 3, cursor: "0-0"))
        cycle.claimed(3, nextCursor: "17-2")
        #expect(cycle.next(now: 0) == .claim(shard: 3, cursor: "17-2"))
        cycle.claimed(3, nextCursor: "0-0")
        #expect(cycle.next(now: 0) == .read(shards: [3]))
    }

    @Test func aShardStillClaimingIsNotReadWithTheLiveOnes() {
        var cycle = Self.live([1, 2])
        cycle.started(5)
        cycle.groupCreated(5)
        #expect(cycle.next(now: 0) == .claim(shard: 5, cursor: "0-0"))
        cycle.claimed(5, nextCursor: "0-0")
        if case .read(let shards) = cycle.next(now: 0) { #expect(Set(shards) == [1, 2, 5]) } else { Issue.record("expected a read") }
    }

    @Test func readsRotateSoNoShardAlwaysComesLast() {
        var cycle = Self.live([0, 1, 2])
        var firsts: [Int] = []
        for _ in 0..<3 {
            guard case .read(let shards) = cycle.next(now: 0) else { Issue.record("expected a read"); return }
            #expect(shards.count == 3)
            firsts.append(shards[0])
            cycle.read([0: .entries, 1: .entries, 2: .entries])
        }
        #expect(Set(firsts) == [0, 1, 2])
    }

    @Test func itWaitsOnlyWhenEveryLiveShardWasFoundIdle() {
        var cycle = Self.live([0, 1])
        _ = cycle.next(now: 0)
        cycle.read([0: .idle(lastID: "5-0"), 1: .entries])
        guard case .read = cycle.next(now: 0) else { Issue.record("a shard had entries: read again"); return }
        cycle.read([0: .idle(lastID: "5-0"), 1: .idle(lastID: "0-0")])
        #expect(cycle.next(now: 0) == .wait(after: [.init(shard: 0, lastID: "5-0"), .init(shard: 1, lastID: "0-0")], gated: false))
        cycle.waited()
        guard case .read = cycle.next(now: 0) else { Issue.record("after a wait: read"); return }
    }

    @Test func aShardWaitingForItsParentMakesTheWaitShortUntilItMovesOn() {
        var cycle = Self.live([0, 5])
        _ = cycle.next(now: 0)
        cycle.read([0: .idle(lastID: "1-0"), 5: .gated(lastID: "9-0")])
        #expect(cycle.next(now: 0) == .wait(after: [.init(shard: 0, lastID: "1-0"), .init(shard: 5, lastID: "9-0")], gated: true))
        cycle.waited()
        _ = cycle.next(now: 0)
        cycle.read([0: .idle(lastID: "1-0"), 5: .entries])
        _ = cycle.next(now: 0)
        cycle.read([0: .idle(lastID: "1-0"), 5: .idle(lastID: "9-0")])
        #expect(cycle.next(now: 0) == .wait(after: [.init(shard: 0, lastID: "1-0"), .init(shard: 5, lastID: "9-0")], gated: false))
    }

    @Test func aSkippedShardIsReadAgain() {
        var cycle = Self.live([0, 1])
        _ = cycle.next(now: 0)
        cycle.read([0: .idle(lastID: "1-0"), 1: .skipped])
        guard case .read = cycle.next(now: 0) else { Issue.record("a skipped shard must be read before waiting"); return }
    }

    @Test func aLostShardIsDroppedAndAMissingGroupCreatedAgain() {
        var cycle = Self.live([0, 1, 2])
        _ = cycle.next(now: 0)
        cycle.read([0: .lost, 1: .noGroup, 2: .idle(lastID: "0-0")])
        #expect(cycle.shards == [1, 2])
        #expect(cycle.next(now: 0) == .createGroup(shard: 1))
        cycle.groupCreated(1)
        #expect(cycle.next(now: 0) == .claim(shard: 1, cursor: "0-0"))
    }

    @Test func entriesLeftUnacknowledgedAreClaimedAgainBeforeAnythingNewer() {
        var cycle = Self.live([0, 1])
        cycle.reclaim(1)
        #expect(cycle.next(now: 0) == .claim(shard: 1, cursor: "0-0"))
        cycle.reclaim(7)  // not held: nothing to do
        #expect(cycle.shards == [0, 1])
    }

    @Test func aStoppedShardIsForgotten() {
        var cycle = Self.live([0, 1])
        cycle.stopped(0)
        cycle.stopped(1)
        #expect(cycle.next(now: 0) == .idle)
        cycle.groupCreated(1)
        cycle.claimed(1, nextCursor: "0-0")
        cycle.read([1: .entries])
        #expect(cycle.shards.isEmpty)
    }

    @Test func theHeldShardsAreTrimmedEveryInterval() {
        var cycle = Self.live([4, 2], trimInterval: .milliseconds(10_000))
        guard case .read = cycle.next(now: 9_999 * Self.ms) else { Issue.record("not yet"); return }
        #expect(cycle.next(now: 10_000 * Self.ms) == .trim(shards: [2, 4]))
        cycle.trimmed(now: 10_000 * Self.ms)
        guard case .read = cycle.next(now: 10_001 * Self.ms) else { Issue.record("trimmed"); return }
        #expect(cycle.next(now: 20_000 * Self.ms) == .trim(shards: [2, 4]))
    }

    @Test func failuresPauseWithDoublingBackoffAndResetOnSuccess() {
        var cycle = WorkerCycle(trimInterval: .seconds(60), now: 0)
        cycle.started(0)
        cycle.failed(.createGroup(shard: 0), groupMissing: false, now: 0)
        #expect(cycle.next(now: 0) == .pause(.milliseconds(100)))
        #expect(cycle.next(now: 0) == .createGroup(shard: 0))
        var pauses: [Int64] = []
        for _ in 0..<8 {
            cycle.failed(.createGroup(shard: 0), groupMissing: false, now: 0)
            if case .pause(let delay) = cycle.next(now: 0) { pauses.append(delay.wholeMilliseconds) }
        }
        #expect(pauses == [200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000])
        cycle.groupCreated(0)
        cycle.failed(.claim(shard: 0, cursor: "0-0"), groupMissing: false, now: 0)
        #expect(cycle.next(now: 0) == .pause(.milliseconds(100)))
    }

    @Test func aClaimThatFindsNoGroupCreatesItAgain() {
        var cycle = WorkerCycle(trimInterval: .seconds(60), now: 0)
        cycle.started(0)
        cycle.groupCreated(0)
        cycle.failed(.claim(shard: 0, cursor: "0-0"), groupMissing: true, now: 0)
        _ = cycle.next(now: 0)  // the pause
        #expect(cycle.next(now: 0) == .createGroup(shard: 0))
    }

    @Test func aFailedTrimWaitsForItsNextInterval() {
        var cycle = Self.live([0], trimInterval: .milliseconds(1_000))
        #expect(cycle.next(now: 1_000 * Self.ms) == .trim(shards: [0]))
        cycle.failed(.trim(shards: [0]), groupMissing: false, now: 1_000 * Self.ms)
        _ = cycle.next(now: 1_000 * Self.ms)  // the pause
        guard case .read = cycle.next(now: 1_500 * Self.ms) else { Issue.record("no trim before the next interval"); return }
        #expect(cycle.next(now: 2_000 * Self.ms) == .trim(shards: [0]))
    }

    @Test func retryDelaysDoubleUpToTheMaximum() {
        #expect((1...8).map { WorkerCycle.retryDelay(attempt: $0).wholeMilliseconds } == [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000])
        #expect(WorkerCycle.retryDelay(attempt: 1_000) == .seconds(5))
    }
}
