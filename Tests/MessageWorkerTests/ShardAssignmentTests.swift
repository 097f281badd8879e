import Testing
@testable import MessageWorker
@testable import Shared

/// Shard keys and the assignment of shards to workers (issue 12), pure.
@Suite struct ShardAssignmentTests {
    @Test func aDirectConversationHasOneShardWhicheverUserSends() {
        let shards = CommandShards(count: 64)
        for (a, b) in [(Int64(1), Int64(2)), (42, 7), (1_000_000, 3), (Int64.max, 1)] {
            #expect(shards.shard(directBetween: a, b) == shards.shard(directBetween: b, a))
            #expect((0..<64).contains(shards.shard(directBetween: a, b)))
        }
        #expect(shards.stream(5) == "chat:cmd:{s5}")
        #expect(shards.streams.count == 64)
    }

    @Test func aDevicesSendsAndReadAllsInAConversationShareItsShard() {
        let shards = CommandShards(count: 64)
        let send = ChatCommand.send(SendMessage(receiverID: 9, content: "hi", clientMsgID: "c1"))
        #expect(shards.shard(of: send, userID: 4) == shards.shard(directBetween: 4, 9))
        #expect(shards.shard(of: .readAll(senderID: 9), userID: 4) == shards.shard(of: send, userID: 4))
        // The other member's sends land on the same shard.
        #expect(shards.shard(of: .send(SendMessage(receiverID: 4, content: "yo", clientMsgID: "c2")), userID: 9)
                == shards.shard(of: send, userID: 4))
        // Reads by id go to the reader's own shard.
        #expect(shards.shard(of: .read(messageID: 77), userID: 4) == shards.shard(directBetween: 4, 4))
        #expect(shards.shard(of: .readMany([1, 2]), userID: 4) == shards.shard(directBetween: 4, 4))
    }

    @Test func shardKeysAreFixedAcrossVersions() {
        // The key -> shard function is a protocol between gateways and workers: these values must never change.
        let shards = CommandShards(count: 16)
        #expect([shards.shard(directBetween: 1, 2), shards.shard(directBetween: 3, 4), shards.shard(room: 1), shards.shard(room: 99)]
                == [Self.pinned.0, Self.pinned.1, Self.pinned.2, Self.pinned.3])
        #expect(CommandShards.mix(0) == 0xE220_A839_7B1D_CDAF)
    }

    private static let pinned = (15, 6, 14, 3)

    @Test func conversationsSpreadEvenlyOverShards() {
        let shards = CommandShards(count: 16)
        var counts = [Int](repeating: 0, count: 16)
        for a in Int64(1)...200 { for b in (a + 1)...(a + 20) { counts[shards.shard(directBetween: a, b)] += 1 } }
        let expected = 4_000 / 16
        #expect(counts.allSatisfy { abs($0 - expected) < expected / 5 }, "\(counts)")
    }

    @Test func everyWorkerGetsTheFloorOrTheCeilingOfItsShare() {
        for workers in 1...7 {
            let ids = (1...workers).map { "worker-\($0)" }
            let owners = ShardAssignment.owners(shards: 64, workers: ids)
            #expect(owners.count == 64)
            let loads = ids.map { id in owners.filter { $0 == id }.count }
            #expect(loads.allSatisfy { $0 == 64 / workers || $0 == (64 + workers - 1) / workers }, "\(workers): \(loads)")
            #expect(loads.reduce(0, +) == 64)
        }
        #expect(ShardAssignment.owners(shards: 8, workers: []).isEmpty)
    }

    @Test func everyWorkerComputesTheSameAssignment() {
        let one = ShardAssignment.owners(shards: 32, workers: ["c", "a", "b", "a"])
        let two = ShardAssignment.owners(shards: 32, workers: ["b", "c", "a"])
        #expect(one == two)
        #expect(ShardAssignment.shards(of: "a", shards: 32, workers: ["a", "b", "c"])
                == one.enumerated().compactMap { $0.element == "a" ? $0.offset : nil })
    }

    @Test func aJoiningWorkerTakesAboutItsShareAndLittleElseMoves() {
        let before = ShardAssignment.owners(shards: 64, workers: ["w1", "w2", "w3"])
        let after = ShardAssignment.owners(shards: 64, workers: ["w1", "w2", "w3", "w4"])
        let moved = zip(before, after).filter { $0 != $1 }.count
        let taken = after.filter { $0 == "w4" }.count
        #expect(taken == 16)
        // The new worker's 16, and at most a few shards that shift between the others to keep loads even
        // (17 with these ids).
        #expect(moved <= taken + 4, "\(moved) shards moved")
        // A leaving worker's shards are all that must move, plus a few for balance.
        let left = ShardAssignment.owners(shards: 64, workers: ["w1", "w2", "w4"])
        let movedOnLeave = zip(after, left).filter { $0 != $1 }.count
        #expect(movedOnLeave <= 16 + 4, "\(movedOnLeave) shards moved")  // 19 with these ids
    }
}
