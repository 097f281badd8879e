import Shared

/// The fence of one shard's writes (issue 12): its epoch in Postgres. A worker that acquires a
/// shard's lease advances the epoch (`advance`); every batch transaction on the shard first checks,
/// under a share lock, that the epoch is still the one it holds (`check`). The advance takes the
/// row lock, so it waits for a batch in flight under the old epoch to commit, and every batch that
/// starts after it sees the new epoch and is refused: two owners can never interleave a shard's
/// writes, even when the old one was paused past its lease and does not know it yet.
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

    /// Inside a batch transaction, before any write: throws `Fenced` unless `shard` is at `epoch`.
    static func check(shard: Int, epoch: Int64, on connection: PostgresConnection) async throws {
        let rows = try await connection.query("SELECT epoch FROM shard_epochs WHERE shard = $1 FOR SHARE", [.int(shard)])
        let current = try rows.first.map { try $0.int64("epoch") }
        guard current == epoch else { throw Fenced(shard: shard, held: epoch, current: current) }
    }
}
