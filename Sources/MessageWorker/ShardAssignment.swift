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
        let hashes = live.map(idHash)
        let base = shards / live.count
        var extras = shards % live.count
        var load = [Int](repeating: 0, count: live.count)
        var owners: [String] = []
        owners.reserveCapacity(shards)
        for shard in 0..<shards {
            let shardHash = CommandShards.mix(UInt64(shard))
            // Workers by score, highest first (ties, which need a 64-bit collision, by id).
            let ranked = live.indices.map { (worker: $0, score: CommandShards.mix(hashes[$0] ^ shardHash)) }
                .sorted { $0.score != $1.score ? $0.score > $1.score : $0.worker < $1.worker }
            guard let chosen = ranked.first(where: { load[$0.worker] < base || (load[$0.worker] == base && extras > 0) }) else { continue }
            if load[chosen.worker] == base { extras -= 1 }
            load[chosen.worker] += 1
            owners.append(live[chosen.worker])
        }
        return owners
    }

    /// The shards `worker` owns among `workers`.
    static func shards(of worker: String, shards: Int, workers: [String]) -> [Int] {
        owners(shards: shards, workers: workers).enumerated().compactMap { $0.element == worker ? $0.offset : nil }
    }

    /// FNV-1a of a worker id; a worker's score for a shard is `mix(idHash ^ mix(shard))`.
    private static func idHash(_ worker: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in worker.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }
}
