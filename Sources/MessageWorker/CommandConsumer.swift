import Shared

/// Reads the command stream as one consumer of the workers' group and carries each batch through
/// decode → apply (one transaction) → publish (one pipeline) → acknowledge (one `XACK`).
///
/// Processing is at-least-once: an entry is acknowledged only after its effects are committed and
/// published. A batch that fails for a transient reason (database or Redis down) is retried in
/// place, with backoff, for as long as the worker runs; meanwhile its entries are re-claimed to
/// this consumer (`XCLAIM ... JUSTID`, which leaves delivery counts alone) so no other worker
/// takes them over as abandoned. Entries of dead consumers are taken over after
/// `claimIdle` (`XAUTOCLAIM`); one delivered more than `maxDeliveries` times is moved
/// to the dead-letter stream, answered `processing_failed`, and acknowledged. What to do next is
/// decided by `WorkerCycle`; this class performs it.
@LoopActor
final class CommandConsumer {
    private let reader: RedisClient
    private let commands: RedisClient
    private let processor: BatchProcessor
    private let messageLimit: MessageRateLimit?
    private let configuration: WorkerConfiguration
    private let logger: Logger
    private var running = false
    private var loopActive = false
    private var whenStopped: [@LoopActor () -> Void] = []

    /// Commands acknowledged (applied, refused, or dead-lettered).
    private(set) var processed = 0
    /// Entries moved to the dead-letter stream.
    private(set) var deadLettered = 0
    /// Entries taken over from other consumers.
    private(set) var claimed = 0
    /// The id the stream was last trimmed to.
    private(set) var lastTrimID: String?

    /// `reader` is a connection of its own: a blocking XREADGROUP would hold up other commands.
    init(reader: RedisClient, commands: RedisClient, processor: BatchProcessor, messageLimit: MessageRateLimit? = nil,
         configuration: WorkerConfiguration, logger: Logger) {
        self.reader = reader
        self.commands = commands
        self.processor = processor
        self.messageLimit = messageLimit
        self.configuration = configuration
        self.logger = logger
    }

    /// Starts the loop. Idempotent.
    func start() {
        guard !running else { return }
        running = true
        guard !loopActive else { return }
        loopActive = true
        Task { @LoopActor in await self.run() }
    }

    /// Stops after the batch in hand (a blocking read returns within `WORKER_BLOCK_MS`); `then`
    /// runs once the loop has ended. Entries not acknowledged stay pending for another worker.
    func stop(then: (@LoopActor () -> Void)? = nil) {
        running = false
        if let then {
            if loopActive { whenStopped.append(then) } else { then() }
        }
    }

    // MARK: The loop

    private func run() async {
        defer {
            loopActive = false
            let callbacks = whenStopped
            whenStopped = []
            for callback in callbacks { callback() }
        }
        // The clients connect in the background; waiting here avoids a spurious failure at start-up.
        _ = await reader.waitUntilConnected(timeout: .seconds(5))
        _ = await commands.waitUntilConnected(timeout: .seconds(5))
        var cycle = WorkerCycle(claimInterval: configuration.claimInterval,
                                trimInterval: configuration.trimInterval, now: MonotonicClock.now())
        while running {
            let action = cycle.next(now: MonotonicClock.now())
            do {
                switch action {
                case .createGroup:
                    try await ensureGroup()
                    cycle.groupCreated()
                case .readOwnPending(let after):
                    let entries = try await readGroup(from: after)
                    if !entries.isEmpty {
                        await handle(entries, deliveries: try await deliveryCounts(entries))
                    }
                    cycle.ownPendingRead(lastID: entries.last?.id)
                case .readNew:
                    let entries = try await readGroup(from: ">")
                    // New entries were delivered exactly once: to this read.
                    if !entries.isEmpty { await handle(entries, deliveries: [:]) }
                    cycle.newRead()
                case .claim(let cursor):
                    let next = try await claimIdle(cursor: cursor)
                    cycle.claimed(nextCursor: next, now: MonotonicClock.now())
                case .trim:
                    try await trim()
                    cycle.trimmed(now: MonotonicClock.now())
                case .pause(let delay):
                    await EventLoop.shared.sleep(for: delay)
                }
            } catch {
                var groupMissing = false
                if (error as? RedisError)?.serverCode == .noGroup { groupMissing = true }
                cycle.failed(action, groupMissing: groupMissing, now: MonotonicClock.now())
                if running {
                    logger.warn("command stream operation failed", ["action": .string(String(describing: action)), "error": .string(String(describing: error))])
                }
            }
        }
    }

    private func ensureGroup() async throws {
        do {
            _ = try await commands.send(.xgroupCreate(configuration.stream, group: configuration.group, startID: "0", makeStream: true))
            logger.info("consumer group created", ["stream": .string(configuration.stream), "group": .string(configuration.group)])
        } catch {
            // Another worker created it first: that is the normal case in a cluster.
            guard error.serverCode == .busyGroup else { throw error }
        }
    }

    private func readGroup(from start: String) async throws -> [StreamEntry] {
        let reply = try await reader.send(.xreadgroup(
            group: configuration.group, consumer: configuration.workerID, count: configuration.batchSize,
            block: configuration.blockTime, stream: configuration.stream, id: start))
        return StreamEntry.parse(readReply: reply)
    }

    /// Delivery counts of entries that were delivered before (own pending, claimed): one
    /// `XPENDING key group id id 1` per entry, in one pipeline.
    private func deliveryCounts(_ entries: [StreamEntry]) async throws -> [String: Int] {
        let replies = try await commands.pipeline(entries.map {
            .xpending(configuration.stream, group: configuration.group, start: $0.id, end: $0.id, count: 1)
        })
        var counts: [String: Int] = [:]
        for reply in replies { counts.merge(PendingDetails.deliveryCounts(reply)) { $1 } }
        return counts
    }

    /// One `XAUTOCLAIM` page: takes over entries idle longer than the threshold and handles them.
    private func claimIdle(cursor: String) async throws -> String {
        let reply = try await commands.send(.xautoclaim(
            configuration.stream, group: configuration.group, consumer: configuration.workerID,
            minIdle: configuration.claimIdle, start: cursor, count: configuration.batchSize))
        guard let page = AutoclaimReply(reply) else { throw RedisError.protocolError("unexpected XAUTOCLAIM reply") }
        if !page.deletedIDs.isEmpty {
            logger.warn("pending commands were trimmed from the stream before being processed", ["ids": .array(page.deletedIDs.prefix(20).map { .string($0) })])
        }
        if !page.entries.isEmpty {
            claimed += page.entries.count
            logger.info("claimed idle commands", ["count": .int(Int64(page.entries.count)), "first": .string(page.entries[0].id)])
            await handle(page.entries, deliveries: try await deliveryCounts(page.entries))
        }
        return page.nextCursor
    }

    /// Trims entries every group has acknowledged: `XTRIM key MINID <oldest pending or last delivered>`.
    private func trim() async throws {
        let groups = GroupInfo.parse(try await commands.send(.xinfoGroups(configuration.stream)))
        if let own = groups.first(where: { $0.name == configuration.group }) { WorkerMetrics.streamPending.set(Double(own.pending)) }
        var bounds: [(lastDelivered: StreamID, oldestPending: StreamID?)] = []
        for group in groups {
            var oldest: StreamID?
            if group.pending > 0 {
                oldest = PendingDetails.oldestPending(try await commands.send(.xpending(configuration.stream, group: group.name)))
            }
            bounds.append((lastDelivered: group.lastDeliveredID, oldestPending: oldest))
        }
        guard let point = TrimPoint.minimumID(bounds) else { return }
        let removed = try await commands.send(.xtrim(configuration.stream, minID: point.description))
        lastTrimID = point.description
        // Only a gauge: a failed XLEN must not fail the trim.
        if let length = (try? await commands.send(.xlen(configuration.stream)))?.int { WorkerMetrics.streamLength.set(Double(length)) }
        if let count = removed.int, count > 0 {
            logger.debug("command stream trimmed", ["minID": .string(point.description), "removed": .int(count)])
        }
    }

    // MARK: One batch

    /// Carries entries through to acknowledgement. Returns early (without acknowledging) only when
    /// the worker stops while a dependency is down.
    private func handle(_ entries: [StreamEntry], deliveries: [String: Int]) async {
        let started = MonotonicClock.now()
        if !entries.isEmpty { WorkerMetrics.batchSize.observe(Double(entries.count)) }
        var decoded = decode(entries, deliveries: deliveries)
        // Decided once per batch, before any retry: a retried transaction must not count the sends again
        // (the script would admit them anyway, being keyed by client message id).
        if let messageLimit, !decoded.commands.isEmpty { decoded.commands = await messageLimit.apply(to: decoded.commands) }

        let ids = entries.map(\.id)
        var lastHold = MonotonicClock.now()
        let batch = decoded.commands
        if !batch.isEmpty {
            let applied = await retrying("batch not applied; retrying", details: ["commands": .int(Int64(batch.count))],
                                         holding: ids, lastHold: &lastHold) {
                try await processor.process(batch)
            }
            guard let applied else { return }
            for outcome in applied { decoded.outcomes[outcome.entryID] = outcome }
        }

        let ordered = entries.compactMap { decoded.outcomes[$0.id] }
        let fields = Dictionary(entries.map { ($0.id, $0.fields) }) { first, _ in first }
        let published = await retrying("publishing a batch failed; retrying", holding: ids, lastHold: &lastHold) {
            try await publish(ordered, fields: fields, deliveries: deliveries)
        }
        guard let acknowledgeable = published, !acknowledgeable.isEmpty else { return }

        let acknowledge = RedisCommand.xack(configuration.stream, group: configuration.group, ids: acknowledgeable)
        let acknowledged = await retrying("acknowledging a batch failed; retrying", holding: ids, lastHold: &lastHold) {
            try await commands.send(acknowledge)
        }
        guard acknowledged != nil else { return }
        processed += acknowledgeable.count
        for id in acknowledgeable { WorkerMetrics.commandsProcessed.increment(decoded.types[id] ?? WorkerMetrics.invalidType) }
        WorkerMetrics.batchDuration.observeSince(started)
    }

    /// A batch's entries sorted out before the transaction.
    private struct DecodedEntries {
        /// The commands to apply.
        var commands: [BatchCommand] = []
        /// Outcomes decided without the database (refused, undecodable, delivered too often), by entry id.
        var outcomes: [String: CommandOutcome] = [:]
        /// Metric label per entry: the command type, or `invalid`.
        var types: [String: String] = [:]
    }

    /// Decodes each entry into a command to apply, or an outcome already decided.
    private func decode(_ entries: [StreamEntry], deliveries: [String: Int]) -> DecodedEntries {
        var decoded = DecodedEntries()
        for entry in entries {
            let count = deliveries[entry.id] ?? 1
            let result = Result { () throws(ChatCommandError) in
                try CommandEnvelope.decode(fields: entry.fields, maxContentLength: configuration.maxContentLength)
            }
            decoded.types[entry.id] = (try? result.get())?.command.typeName ?? WorkerMetrics.invalidType
            if count > configuration.maxDeliveries {
                decoded.outcomes[entry.id] = deliveredTooOften(entry, count: count, decoded: result)
                continue
            }
            switch result {
            case .success(let envelope):
                decoded.commands.append(BatchCommand(entryID: entry.id, envelope: envelope))
            case .failure(.malformed(let reason)):
                logger.warn("undecodable command; moving it to the dead-letter stream", ["entry": .string(entry.id), "reason": .string(reason)])
                decoded.outcomes[entry.id] = CommandOutcome(entryID: entry.id, reply: nil, events: [], deadLetterReason: reason)
            case .failure(.rejected(let error, let userID, let reply)):
                logger.debug("command refused", ["entry": .string(entry.id), "user": .int(userID), "code": .string(error.code.name)])
                decoded.outcomes[entry.id] = CommandOutcome(entryID: entry.id, reply: reply.map { ChatReply(reply: $0, error: error) }, events: [])
            }
        }
        return decoded
    }

    /// An entry delivered more than `maxDeliveries` times: dead-lettered, and answered
    /// `processing_failed` when it has a reply address.
    private func deliveredTooOften(_ entry: StreamEntry, count: Int, decoded: Result<CommandEnvelope, ChatCommandError>) -> CommandOutcome {
        var reply: ReplyAddress?
        switch decoded {
        case .success(let envelope): reply = envelope.reply
        case .failure(.rejected(_, _, let address)): reply = address
        case .failure(.malformed): break
        }
        logger.error("command keeps failing; moving it to the dead-letter stream", [
            "entry": .string(entry.id), "deliveries": .int(Int64(count)), "limit": .int(Int64(configuration.maxDeliveries)),
        ])
        return CommandOutcome(entryID: entry.id, reply: reply.map { ChatReply(reply: $0, error: ChatErrors.processingFailed) },
                              events: [], deadLetterReason: "delivered \(count) times (limit \(configuration.maxDeliveries))")
    }

    /// Runs one step of a batch until it succeeds: after each failure logs `failure` (with the
    /// error, the attempt and `details`), waits `WorkerCycle.retryDelay(attempt:)` and holds the
    /// batch's entries (`hold`). Nil when the worker stops while the step keeps failing.
    private func retrying<T>(
        _ failure: String, details: JSONObject = [:], holding ids: [String], lastHold: inout UInt64,
        _ step: @LoopActor () async throws -> T
    ) async -> T? {
        var attempt = 0
        while true {
            do {
                return try await step()
            } catch {
                guard running else { return nil }
                attempt += 1
                var fields: JSONObject = ["error": .string(String(describing: error)), "attempt": .int(Int64(attempt))]
                for (key, value) in details { fields[key] = value }
                logger.warn(failure, fields)
                await hold(ids, delay: WorkerCycle.retryDelay(attempt: attempt), lastHold: &lastHold)
            }
        }
    }

    /// Waits `delay`, and keeps the entries this worker's (resetting their idle time) often enough
    /// that no other worker claims them while we retry.
    private func hold(_ ids: [String], delay: Duration, lastHold: inout UInt64) async {
        await EventLoop.shared.sleep(for: delay)
        let refreshEvery = max(1, (configuration.claimIdle / 3).nanosecondsSaturated)
        let now = MonotonicClock.now()
        guard now - lastHold >= refreshEvery else { return }
        lastHold = now
        _ = try? await commands.send(.xclaimJustID(configuration.stream, group: configuration.group, consumer: configuration.workerID,
                                                   minIdle: .zero, ids: ids))
    }

    /// Dead letters, events and replies in one pipeline. Returns the entries that may be
    /// acknowledged: all but those whose dead-letter copy was not written.
    private func publish(_ outcomes: [CommandOutcome], fields: [String: [(String, [UInt8])]], deliveries: [String: Int]) async throws -> [String] {
        var pipeline: [RedisCommand] = []
        var deadLetterSlots: [(index: Int, entryID: String)] = []
        for outcome in outcomes {
            if let reason = outcome.deadLetterReason {
                var command = RedisCommand.xadd(configuration.deadLetterStream, maxLength: .approximately(configuration.deadLetterMaxLength), fields: [
                    "origin", outcome.entryID, "reason", reason, "deliveries", String(deliveries[outcome.entryID] ?? 1),
                    "consumer", configuration.workerID,
                ])
                for (name, value) in fields[outcome.entryID] ?? [] { command.appendField(name, value: value) }
                deadLetterSlots.append((index: pipeline.count, entryID: outcome.entryID))
                pipeline.append(command)
            }
            pipeline += outcome.events.map(\.publishCommand)
            if let reply = outcome.reply { pipeline.append(reply.publishCommand) }
        }
        var notWritten = Set<String>()
        if !pipeline.isEmpty {
            let replies = try await commands.pipeline(pipeline)
            for slot in deadLetterSlots {
                if case .error(let message) = replies[slot.index] {
                    logger.error("dead-letter write failed; the entry stays pending", ["entry": .string(slot.entryID), "error": .string(message)])
                    notWritten.insert(slot.entryID)
                } else {
                    deadLettered += 1
                    WorkerMetrics.deadLettered.increment()
                }
            }
        }
        return outcomes.map(\.entryID).filter { !notWritten.contains($0) }
    }
}
