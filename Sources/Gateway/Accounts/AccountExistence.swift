import Shared

/// Whether accounts exist, for CONNECT (a valid token of a deleted account is refused). Checks that
/// arrive while a query is running are answered together by the next one
/// (`SELECT id FROM users WHERE id = ANY(...)`), so a reconnect storm of thousands of sockets costs
/// a handful of queries instead of one per socket. The gateway gives it a pool of one connection
/// of its own, so a check never waits behind the main pool's reads.
@LoopActor
final class AccountExistence {
    private let database: PostgresPool
    private var waiting: [Int64: [CheckedContinuation<Result<Bool, PostgresError>, Never>]] = [:]
    private var querying = false

    /// Most ids one query names; more wait for the next.
    static let maxBatch = 1_000

    init(database: PostgresPool) {
        self.database = database
    }

    /// Whether the account `userID` exists; throws what the database threw.
    func exists(_ userID: Int64) async throws(PostgresError) -> Bool {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Bool, PostgresError>, Never>) in
            waiting[userID, default: []].append(continuation)
            if !querying { queryNext() }
        }
        return try result.get()
    }

    private func queryNext() {
        guard !waiting.isEmpty else {
            querying = false
            return
        }
        querying = true
        var batch: [Int64: [CheckedContinuation<Result<Bool, PostgresError>, Never>]] = [:]
        for userID in waiting.keys.prefix(Self.maxBatch) { batch[userID] = waiting.removeValue(forKey: userID) }
        Task.onLoop {
            let outcome: Result<Set<Int64>, PostgresError>
            do throws(PostgresError) {
                let rows = try await self.database.query("SELECT id FROM users WHERE id = ANY($1::bigint[])",
                                                         [.string(PostgresArrayLiteral.integers(Array(batch.keys)))])
                var found = Set<Int64>()
                for row in rows { found.insert(try row.int64("id")) }
                outcome = .success(found)
            } catch {
                outcome = .failure(error)
            }
            for (userID, continuations) in batch {
                let answer = outcome.map { $0.contains(userID) }
                for continuation in continuations { continuation.resume(returning: answer) }
            }
            self.queryNext()
        }
    }
}
