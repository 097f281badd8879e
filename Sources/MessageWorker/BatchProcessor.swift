import Shared

/// What a failed batch transaction means for its commands.
enum BatchFailure: Sendable, Equatable {
    /// The database is down, busy or restarting: retry the same batch later, nothing is wrong with it.
    case transient
    /// Lost a race with another transaction (deadlock, serialization failure, the same idempotency
    /// key committed concurrently): retry at once, the retry sees the winner's rows.
    case conflict
    /// The commands themselves make the transaction fail (a bug or data the checks missed):
    /// isolate the culprit.
    case permanent

    /// Classifies an error thrown by `BatchApplier.apply` (not `ShardFence.Fenced`, which the
    /// processor passes on).
    static func classify(_ error: any Error) -> BatchFailure {
        guard let error = error as? PostgresError else { return .permanent }
        switch error {
        case .unavailable, .connectionLost, .timeout, .poolExhausted:
            return .transient
        case .server(let server):
            if server.sqlState == PostgresSQLState.deadlockDetected || server.sqlState == PostgresSQLState.serializationFailure
                || server.isUniqueViolation {
                return .conflict
            }
            // Classes 08 connection, 53 insufficient resources, 57 operator intervention (shutdown,
            // statement timeout), 58 system error, 55P03 lock timeout: the server, not the batch.
            let sqlClass = server.sqlState.prefix(2)
            if ["08", "53", "57", "58"].contains(sqlClass) || server.sqlState == "55P03" { return .transient }
            return .permanent
        case .decoding, .protocol, .invalidParameter, .misuse:
            return .permanent
        }
    }
}

/// Applies batches so that one bad command cannot sink the others.
///
/// A transaction that fails for a reason in the data is split in halves, each retried as its own
/// transaction, down to the single command at fault, which is answered `processing_failed` and
/// marked for the dead-letter stream. Bisection (rather than a SAVEPOINT per command) keeps the
/// common case at a fixed number of set-based statements per batch; the price, about 2·log2(n)
/// extra transactions, is paid only when a batch actually fails, which the checks made before
/// the transaction keep rare. Halves commit in stream order, so per-conversation order holds.
@LoopActor
final class BatchProcessor {
    /// Immediate retries of a batch that lost a race before it is treated as faulty.
    static let maxConflictRetries = 3

    private let applier: any BatchApplier
    private let logger: Logger

    /// A processor writing through `applier`.
    init(applier: any BatchApplier, logger: Logger) {
        self.applier = applier
        self.logger = logger
    }

    /// Outcomes of every command, in order. Throws transient errors (the caller retries the batch
    /// later; commands already committed by a half are idempotent to re-apply) and
    /// `ShardFence.Fenced` (a shard of the batch has a new owner: the caller drops its commands).
    func process(_ commands: [BatchCommand], fence: [Int: Int64]) async throws -> [CommandOutcome] {
        guard !commands.isEmpty else { return [] }
        var conflicts = 0
        while true {
            do {
                return try await applier.apply(commands, fence: fence)
            } catch let fenced as ShardFence.Fenced {
                throw fenced
            } catch {
                switch BatchFailure.classify(error) {
                case .transient:
                    throw error
                case .conflict where conflicts < Self.maxConflictRetries:
                    conflicts += 1
                    logger.debug("batch lost a race, retrying", ["error": .string(String(describing: error)), "commands": .int(Int64(commands.count))])
                    continue
                case .conflict, .permanent:
                    guard commands.count > 1 else { return [failedOutcome(commands[0], error: error)] }
                    logger.warn("batch failed, isolating the faulty command", [
                        "error": .string(String(describing: error)), "commands": .int(Int64(commands.count)),
                    ])
                    let middle = commands.count / 2
                    let first = try await process(Array(commands[..<middle]), fence: fence)
                    let second = try await process(Array(commands[middle...]), fence: fence)
                    return first + second
                }
            }
        }
    }

    private func failedOutcome(_ command: BatchCommand, error: any Error) -> CommandOutcome {
        logger.error("command failed on its own; moving it to the dead-letter stream", [
            "entry": .string(command.entryID), "user": .int(command.envelope.userID),
            "type": .string(command.envelope.command.typeName), "error": .string(String(describing: error)),
        ])
        return CommandOutcome(
            entryID: command.entryID, reply: command.envelope.reply.map { ChatReply(reply: $0, error: ChatErrors.processingFailed) },
            events: [], deadLetterReason: "transaction failed: \(String(describing: error).prefix(400))")
    }
}
