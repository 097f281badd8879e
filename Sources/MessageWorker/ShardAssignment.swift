import Shared

/// Which worker owns which shard, computed by every worker from the same inputs (the live workers'
/// ids and the shard count), so all agree without talking to each other. Pure.
///
/// Balanced rendezvous hashing: each shard, in order, goes to the worker with the highest score for
/// it (a hash of worker and shard) among those that still have room, where room is ⌊S/N⌋ shards
/// for every worker and one more for S mod N of them. Every worker ends up with ⌊S/N⌋ or ⌈S/N⌉
/// shards, and because a shard prefers the same worker whatever else is live, a worker joining or
/// leaving moves few shards besides its own share.
enum ShardAssignment {
    /// The owner of every shard (index = shard) for `workers` (any order, duplicates ignored);
    /// empty when there is no worker.
    static func owners(shards: Int, workers: [String]) -> [String] {
        let live = Array(Set(workers)).sorted()
        guard !live.isEmpty, shards > 0 else { return [] }
        let base = shards / live.count
        var extras = shards % live.count
        var load = [String: Int](minimumCapacity: live.count)
        var owners: [String] = []
        owners.reserveCapacity(shards)
        for shard in 0..<shards {
            let ranked = live.sorted { lhs, rhs in
                let (left, right) = (score(worker: lhs, shard: shard), score(worker: rhs, shard: shard))
                return left != right ? left > right : lhs < rhs
            }
            for worker in ranked {
                let taken = load[worker, default: 0]
                if taken < base {
                    load[worker] = taken + 1
                    owners.append(worker)
                    break
                }
                if taken == base && extras > 0 {
                    extras -= 1
                    load[worker] = taken + 1
                    owners.append(worker)
                    break
                }
            }
        }
        return owners
    }

    /// The shards `worker` owns among `workers`.
    static func shards(of worker: String, shards: Int, workers: [String]) -> [Int] {
        owners(shards: shards, workers: workers).enumerated().compactMap { $0.element == worker ? $0.offset : nil }
    }

    /// The rendezvous score of `worker` for `shard`: FNV-1a of the id, mixed with the shard.
    static func score(worker: String, shard: Int) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in worker.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return CommandShards.mix(hash ^ CommandShards.mix(UInt64(shard)))
    }
}
