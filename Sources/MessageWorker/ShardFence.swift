import Shared

/// The fence of one shard's writes (issue 12): its epoch in Postgres. A worker that acquires a
/// shard's lease advances the epoch (`advance`); every batch transaction checks, as its last
/// statement before `COMMIT` and under a share lock, that the epochs of its shards are still the
/// ones it read the batch under (`check`). A check that ran before the advance holds the share
/// lock until its commit, so the advance waits for that batch; a check that runs after it sees the
/// new epoch and the batch rolls back: two owners can never interleave a shard's writes, even when
/// the old one was paused past its lease and does not know it yet. Checking last (not first)
/// widens the window the fence covers to the whole batch, from the read on: a worker paused
/// anywhere in it is refused when it resumes.
enum ShardFence {
    /// The shard is owned under a newer epoch: the batch must not commit (its entries stay pending
    /// for the new owner).
    struct Fenced: Error, Equatable, CustomStringConvertible {
        let shard: Int
        let held: Int64
        let current: Int64?
        var description: String { "shard \(shard) is fenced: this worker holds epoch \(held), the shard is at \(current.map(String.init) ?? "none")" }
    }

    /// Advances `shard`'s epoch for `owner` and returns it (1 for a shard never owned).
    static func advance(shard: Int, owner: String, on database: PostgresPool) async throws -> Int64 {
        let rows = try await database.query("""
            INSERT INTO shard_epochs (shard, epoch, owner) VALUES ($1, 1, $2)
            ON CONFLICT (shard) DO UPDATE SET epoch = shard_epochs.epoch + 1, owner = EXCLUDED.owner, taken_at = now()
            RETURNING epoch
            """, [.int(shard), .string(owner)])
        return try rows[0].int64("epoch")
    }

    /// Inside a batch transaction, before `COMMIT`: throws `Fenced` unless `shard` is at `epoch`.
    static func check(shard: Int, epoch: Int64, on connection: PostgresConnection) async throws {
        try await check([shard: epoch], on: connection)
    }

    /// Inside a batch transaction, before `COMMIT`: throws `Fenced` (for the lowest shard that
    /// moved on) unless every shard is at its epoch. One statement whatever the number of shards.
    static func check(_ epochs: [Int: Int64], on connection: PostgresConnection) async throws {
        guard !epochs.isEmpty else { return }
        let shards = epochs.keys.sorted()
        let rows = try await connection.query(
            "SELECT shard, epoch FROM shard_epochs WHERE shard = ANY(\(integers: shards.map { Int64($0) })) ORDER BY shard FOR SHARE")
        var current: [Int: Int64] = [:]
        for row in rows { current[Int(try row.int64("shard"))] = try row.int64("epoch") }
        for shard in shards where current[shard] != epochs[shard] {
            throw Fenced(shard: shard, held: epochs[shard] ?? 0, current: current[shard])
        }
    }
}
