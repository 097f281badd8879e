import Shared

/// Consumes the command shards this worker holds (issue 12) and carries each batch through
/// decode → apply (one transaction, fenced) → publish (one pipeline) → acknowledge (`XACK`s in one
/// pipeline).
///
/// Which shards: `ShardCoordinator` says (`shardStarted`, `shardStopped`); what to do next:
/// `WorkerCycle`. A shard's entries are handled strictly in stream order: one batch at a time, and
/// any entry left unacknowledged (a batch abandoned while a dependency is down, a dead-letter
/// write that failed) sends the shard back to claiming its pending entries before it reads new
/// ones. Processing is at-least-once and idempotent: an entry is acknowledged only after its
/// effects are committed and published; an entry delivered more than `maxDeliveries` times (it
/// keeps failing, or kept being taken over) is moved to the dead-letter stream, answered
/// `processing_failed`, and acknowledged.
@LoopActor
final class CommandConsumer {
    /// An entry and the shard stream it came from. Entry ids are per stream, so two shards may
    /// share one: `key` is unique in a batch.
    struct ShardEntry: Sendable {
        let shard: Int
        let entry: StreamEntry
        var key: String { "\(shard)/\(entry.id)" }
    }

    private let reader: RedisClient
    private let commands: RedisClient
    private let processor: BatchProcessor
    private let messageLimit: MessageRateLimit?
    private let configuration: WorkerConfiguration
    private let layout: CommandShards
    private let logger: Logger
    private var cycle: WorkerCycle
    private var running = false
    private var loopActive = false
    private var whenStopped: [@LoopActor () -> Void] = []
    /// Wakes the loop when it waits for a first shard.
    private var shardWaiter: CheckedContinuation<Void, Never>?
    /// Batches in flight per shard, and who waits for a shard to have none.
    private var inFlight: [Int: Int] = [:]
    private var drainWaiters: [Int: [CheckedContinuation<Void, Never>]] = [:]
    /// Room read and delivery receipts, at most one per member per room per second.
    private let receipts = ReceiptCoalescer()
    /// The reader connection's `CLIENT ID`, to cut its blocking wait short when a shard starts.
    private var readerClientID: Int64?
    /// Whether the reader is in a blocking wait.
    private var waiting = false

    /// The epoch a batch on a shard may be read under now (nil: not now). The coordinator's answer.
    var epochForBatch: @LoopActor (Int) -> Int64? = { _ in nil }
    /// A shard's lease turned out to be lost (another holder in Redis, or the fence refused a batch).
    var onLost: @LoopActor (Int) -> Void = { _ in }

    /// Commands acknowledged (applied, refused, or dead-lettered).
    private(set) var processed = 0
    /// Entries moved to the dead-letter stream.
    private(set) var deadLettered = 0
    /// Pending entries taken over when a shard started.
    private(set) var claimed = 0
    /// Batches the fence refused.
    private(set) var fenced = 0

    /// `reader` is a connection of its own: the blocking `XREAD` would hold up other commands.
    init(reader: RedisClient, commands: RedisClient, processor: BatchProcessor, messageLimit: MessageRateLimit? = nil,
         configuration: WorkerConfiguration, logger: Logger) {
        self.reader = reader
        self.commands = commands
        self.processor = processor
        self.messageLimit = messageLimit
        self.configuration = configuration
        layout = configuration.shards
        self.logger = logger
        cycle = WorkerCycle(trimInterval: configuration.trimInterval, now: MonotonicClock.now())
        receipts.publish = { [unowned commands] events in
            Task.onLoop { _ = try? await commands.pipeline(events.map(\.publishCommand)) }
        }
        reader.onConnected = { [weak self, unowned reader] in
            Task.onLoop { self?.readerClientID = try? await reader.send(["CLIENT", "ID"]).int }
        }
    }

    /// Starts the loop. Idempotent.
    func start() {
        guard !running else { return }
        running = true
        guard !loopActive else { return }
        loopActive = true
        Task.onLoop { await self.run() }
    }

    /// Stops after the batch in hand (a blocking wait returns within `WORKER_BLOCK_MS`); `then`
    /// runs once the loop has ended. Entries not acknowledged stay pending for the shard's next owner.
    func stop(then: (@LoopActor () -> Void)? = nil) {
        running = false
        wakeForShard()
        if let then {
            if loopActive { whenStopped.append(then) } else { then() }
        }
    }

    // MARK: Shards

    /// Consumes the shards `coordinator` gives this worker, asks it before each batch, tells it
    /// when a lease turns out lost, and holds its lease releases until the batch in hand is done.
    func follow(_ coordinator: ShardCoordinator) {
        epochForBatch = { [unowned coordinator] shard in coordinator.epochForBatch(shard) }
        onLost = { [unowned coordinator] shard in coordinator.lost(shard) }
        coordinator.onStart = { [unowned self] shard, epoch in self.shardStarted(shard, epoch: epoch) }
        coordinator.onStop = { [unowned self] shard in self.shardStopped(shard) }
        coordinator.drained = { [unowned self] shard in await self.drained(shard) }
    }

    /// The shards being consumed.
    var shards: [Int] { cycle.shards }

    /// This worker may process `shard` from now on (its pending entries first).
    func shardStarted(_ shard: Int, epoch: Int64) {
        cycle.started(shard)
        WorkerMetrics.held(shard, epoch: epoch)
        WorkerMetrics.shardTakeovers.increment()
        WorkerMetrics.shardsHeld.set(Double(cycle.shards.count))
        wakeForShard()
        // A takeover must not wait for the blocking wait on the other shards to time out.
        if waiting, let id = readerClientID {
            Task.onLoop { _ = try? await self.commands.send(["CLIENT", "UNBLOCK", String(id)]) }
        }
    }

    /// This worker must not start another batch on `shard`.
    func shardStopped(_ shard: Int) {
        cycle.stopped(shard)
        WorkerMetrics.held(shard, epoch: nil)
        WorkerMetrics.shardsHeld.set(Double(cycle.shards.count))
    }

    /// Returns once no batch in flight involves `shard` (at once when none does): a graceful
    /// handover gives the lease back only after the batch in hand is acknowledged.
    func drained(_ shard: Int) async {
        guard inFlight[shard, default: 0] > 0 else { return }
        await withCheckedContinuation { drainWaiters[shard, default: []].append($0) }
    }

    private func wakeForShard() {
        shardWaiter?.resume()
        shardWaiter = nil
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
        while running {
            let action = cycle.next(now: MonotonicClock.now())
            do {
                switch action {
                case .createGroup(let shard):
                    try await ensureGroup(shard)
                    cycle.groupCreated(shard)
                case .claim(let shard, let cursor):
                    guard let epoch = epochForBatch(shard) else {
                        await EventLoop.shared.sleep(for: Self.notNowDelay)
                        continue
                    }
                    cycle.claimed(shard, nextCursor: try await claimPending(shard, cursor: cursor, epoch: epoch))
                case .read(let shards):
                    var epochs: [Int: Int64] = [:]
                    for shard in shards { if let epoch = epochForBatch(shard) { epochs[shard] = epoch } }
                    guard !epochs.isEmpty else {
                        await EventLoop.shared.sleep(for: Self.notNowDelay)
                        continue
                    }
                    try await readNew(shards.filter { epochs[$0] != nil }, epochs: epochs)
                case .wait(let positions, let gated):
                    waiting = true
                    defer { waiting = false }
                    let block = gated ? min(configuration.blockTime, Self.gateRecheck) : configuration.blockTime
                    try await ShardReads.wait(positions, layout: layout, block: block, on: reader)
                    cycle.waited()
                case .trim(let shards):
                    try await trim(shards)
                    cycle.trimmed(now: MonotonicClock.now())
                case .idle:
                    await waitForShard()
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

    /// How long to wait when no held shard may start a batch right now (a renewal is late).
    private static let notNowDelay = Duration.milliseconds(20)
    /// How often a shard whose entries wait for their parent (while the shard count grows) looks again.
    private static let gateRecheck = Duration.milliseconds(20)

    /// Waits until a shard starts, the worker stops, or `WORKER_BLOCK_MS` passes.
    private func waitForShard() async {
        let timer = EventLoop.shared.schedule(after: configuration.blockTime) { [weak self] in self?.wakeForShard() }
        await withCheckedContinuation { continuation in
            if !running || !cycle.shards.isEmpty { continuation.resume() } else { shardWaiter = continuation }
        }
        EventLoop.shared.cancel(timer)
    }

    private func ensureGroup(_ shard: Int) async throws {
        do {
            _ = try await commands.send(.xgroupCreate(layout.stream(shard), group: configuration.group, startID: "0", makeStream: true))
            logger.debug("consumer group created", ["stream": .string(layout.stream(shard)), "group": .string(configuration.group)])
        } catch {
            // Another worker created it first: that is the normal case in a cluster.
            guard error.serverCode == .busyGroup else { throw error }
        }
    }

    /// One page of `shard`'s pending entries, whoever they were delivered to, taken over and
    /// handled. Returns the next cursor (`0-0`: done).
    private func claimPending(_ shard: Int, cursor: String, epoch: Int64) async throws -> String {
        let result = try await ShardReads.claim(shard, cursor: cursor, layout: layout, group: configuration.group,
                                                worker: configuration.workerID, count: configuration.batchSize, on: reader)
        guard case .claimed(let page) = result else {
            leaseLost(shard)
            return "0-0"
        }
        if !page.deletedIDs.isEmpty {
            logger.warn("pending commands were trimmed from the stream before being processed",
                        ["shard": .int(Int64(shard)), "ids": .array(page.deletedIDs.prefix(20).map { .string($0) })])
        }
        if !page.entries.isEmpty {
            claimed += page.entries.count
            logger.info("took over pending commands", ["shard": .int(Int64(shard)), "count": .int(Int64(page.entries.count)),
                                                        "first": .string(page.entries[0].id)])
            let entries = page.entries.map { ShardEntry(shard: shard, entry: $0) }
            await handle(entries, deliveries: try await deliveryCounts(entries), epochs: [shard: epoch])
        }
        return page.nextCursor
    }

    /// New entries of the live shards that may start a batch now, in one lease-checked read.
    private func readNew(_ shards: [Int], epochs: [Int: Int64]) async throws {
        let results = try await ShardReads.read(shards, layout: layout, parent: configuration.parent, group: configuration.group,
                                                worker: configuration.workerID, count: configuration.batchSize, on: reader)
        var report: [Int: WorkerCycle.ReadResult] = [:]
        var entries: [ShardEntry] = []
        for result in results {
            report[result.shard] = result.result
            entries += result.entries.map { ShardEntry(shard: result.shard, entry: $0) }
        }
        cycle.read(report)
        for result in results where result.result == .lost { leaseLost(result.shard) }
        // New entries were delivered exactly once: to this read.
        if !entries.isEmpty { await handle(entries, deliveries: [:], epochs: epochs) }
        if let pause = configuration.batchLinger.pause(afterBatchOf: entries.count) { await EventLoop.shared.sleep(for: pause) }
    }

    /// Delivery counts of entries that were delivered before (claimed): one
    /// `XPENDING key group id id 1` per entry, in one pipeline.
    private func deliveryCounts(_ entries: [ShardEntry]) async throws -> [String: Int] {
        let replies = try await commands.pipeline(entries.map {
            .xpending(layout.stream($0.shard), group: configuration.group, start: $0.entry.id, end: $0.entry.id, count: 1)
        })
        var counts: [String: Int] = [:]
        for (entry, reply) in zip(entries, replies) {
            if let count = PendingDetails.deliveryCounts(reply)[entry.entry.id] { counts[entry.key] = count }
        }
        return counts
    }

    /// A shard's lease is not this worker's any more: stop it here and tell the coordinator.
    private func leaseLost(_ shard: Int) {
        guard cycle.shards.contains(shard) else { return }
        logger.warn("shard lease lost", ["shard": .int(Int64(shard))])
        shardStopped(shard)
        onLost(shard)
    }

    // MARK: Trimming

    /// Trims each shard below what every group still needs, and records its metrics.
    private func trim(_ shards: [Int]) async throws {
        var totalLength = 0
        var totalPending = 0
        var oldestOwnPending: StreamID?
        for shard in shards {
            let stream = layout.stream(shard)
            let groups = GroupInfo.parse(try await commands.send(.xinfoGroups(stream)))
            let label = String(shard)
            if let own = groups.first(where: { $0.name == configuration.group }) {
                totalPending += own.pending
                WorkerMetrics.shardPending.set(label, Double(own.pending))
                if let lag = own.lag { WorkerMetrics.shardLag.set(label, Double(lag)) }
            }
            var bounds: [(lastDelivered: StreamID, oldestPending: StreamID?)] = []
            for group in groups {
                var oldest: StreamID?
                if group.pending > 0 {
                    oldest = PendingDetails.oldestPending(try await commands.send(.xpending(stream, group: group.name)))
                    if group.name == configuration.group, let oldest, oldestOwnPending.map({ oldest < $0 }) ?? true {
                        oldestOwnPending = oldest
                    }
                }
                bounds.append((lastDelivered: group.lastDeliveredID, oldestPending: oldest))
            }
            if let point = TrimPoint.minimumID(bounds) {
                let removed = try await commands.send(.xtrim(stream, minID: point.description))
                if let count = removed.int, count > 0 {
                    logger.debug("command shard trimmed", ["shard": .int(Int64(shard)), "minID": .string(point.description), "removed": .int(count)])
                }
            }
            // Only a gauge: a failed XLEN must not fail the trim.
            if let length = (try? await commands.send(.xlen(stream)))?.int {
                totalLength += Int(length)
                WorkerMetrics.shardLength.set(label, Double(length))
            }
        }
        WorkerMetrics.streamLength.set(Double(totalLength))
        WorkerMetrics.streamPending.set(Double(totalPending))
        // A stream id starts with the Redis server's clock in milliseconds; ours may differ a
        // little, never below zero.
        let nowMilliseconds = UInt64(max(0, WallClock.milliseconds()))
        let age = oldestOwnPending.map { nowMilliseconds > $0.milliseconds ? Double(nowMilliseconds - $0.milliseconds) / 1000 : 0 }
        WorkerMetrics.oldestPendingAge.set(age ?? 0)
    }

    // MARK: One batch

    /// Carries entries through to acknowledgement. Entries of a shard that is lost or fenced on
    /// the way are left pending for its next owner; entries of a shard still held but not
    /// acknowledged (the worker stops, or a dependency stays down until the lease is lost) send
    /// that shard back to claiming, so nothing newer is read before them.
    private func handle(_ entries: [ShardEntry], deliveries: [String: Int], epochs: [Int: Int64]) async {
        let started = MonotonicClock.now()
        let shards = Set(entries.map(\.shard))
        for shard in shards { inFlight[shard, default: 0] += 1 }
        var acknowledged = Set<Int>()
        defer {
            for shard in shards {
                if !acknowledged.contains(shard) { cycle.reclaim(shard) }
                inFlight[shard, default: 1] -= 1
                if inFlight[shard] == 0 {
                    inFlight[shard] = nil
                    for waiter in drainWaiters.removeValue(forKey: shard) ?? [] { waiter.resume() }
                }
            }
        }
        WorkerMetrics.batchSize.observe(Double(entries.count))
        var decoded = decode(entries, deliveries: deliveries)
        // Decided once per batch, before any retry: a retried transaction must not count the sends again
        // (the script would admit them anyway, being keyed by client message id).
        if let messageLimit, !decoded.commands.isEmpty { decoded.commands = await messageLimit.apply(to: decoded.commands) }

        var fence = epochs.filter { shards.contains($0.key) }
        if !decoded.commands.isEmpty {
            guard let applied = await apply(decoded.commands, fence: &fence) else { return }
            for outcome in applied { decoded.outcomes[outcome.entryID] = outcome }
        }
        let kept = entries.filter { fence[$0.shard] != nil }
        let keptShards = Set(fence.keys)
        let stillHeld: @LoopActor () -> Bool = { [unowned self] in keptShards.contains { self.cycle.shards.contains($0) } }

        let ordered = kept.compactMap { decoded.outcomes[$0.key] }
        let streams = Dictionary(kept.map { ($0.key, $0) }) { first, _ in first }
        let published = await retrying("publishing a batch failed; retrying", while: stillHeld) {
            try await publish(ordered, entries: streams, deliveries: deliveries)
        }
        guard let acknowledgeable = published, !acknowledgeable.isEmpty else { return }

        var idsByShard: [Int: [String]] = [:]
        for key in acknowledgeable { if let entry = streams[key] { idsByShard[entry.shard, default: []].append(entry.entry.id) } }
        let acknowledgements = idsByShard.keys.sorted().map { shard in
            RedisCommand.xack(layout.stream(shard), group: configuration.group, ids: idsByShard[shard] ?? [])
        }
        let done: Bool? = await retrying("acknowledging a batch failed; retrying", while: stillHeld) {
            for reply in try await commands.pipeline(acknowledgements) {
                if case .error(let message) = reply { throw RedisError.server(message) }
            }
            return true
        }
        guard done != nil else { return }
        // A shard is done when all its entries were acknowledged (a dead-letter write that failed
        // leaves one pending: the shard claims it again).
        for shard in keptShards where idsByShard[shard]?.count == kept.filter({ $0.shard == shard }).count {
            acknowledged.insert(shard)
        }
        processed += acknowledgeable.count
        for key in acknowledgeable { WorkerMetrics.commandsProcessed.increment(decoded.types[key] ?? WorkerMetrics.invalidType) }
        WorkerMetrics.batchDuration.observeSince(started)
    }

    /// Applies the batch's commands, retrying in place while the database is down. A shard the
    /// fence refuses, or whose lease lapses meanwhile, leaves the batch (and `fence`); nil when no
    /// shard is left or the worker stops.
    private func apply(_ all: [BatchCommand], fence: inout [Int: Int64]) async -> [CommandOutcome]? {
        var attempt = 0
        while true {
            let commands = all.filter { fence[$0.shard] != nil }
            guard !commands.isEmpty else { return nil }
            do {
                return try await processor.process(commands, fence: fence)
            } catch let refused as ShardFence.Fenced {
                fenced += 1
                WorkerMetrics.fencedBatches.increment()
                logger.warn("batch refused by the shard's fence; its entries are the new owner's",
                            ["shard": .int(Int64(refused.shard)), "epoch": .int(refused.held), "current": .int(refused.current ?? 0)])
                fence[refused.shard] = nil
                leaseLost(refused.shard)
            } catch {
                guard running else { return nil }
                attempt += 1
                logger.warn("batch not applied; retrying", ["error": .string(String(describing: error)), "attempt": .int(Int64(attempt)),
                                                            "commands": .int(Int64(commands.count))])
                await EventLoop.shared.sleep(for: WorkerCycle.retryDelay(attempt: attempt))
                // A shard whose lease lapsed meanwhile is left to its next owner.
                fence = fence.filter { epochForBatch($0.key) == $0.value }
            }
        }
    }

    /// A batch's entries sorted out before the transaction.
    private struct DecodedEntries {
        /// The commands to apply.
        var commands: [BatchCommand] = []
        /// Outcomes decided without the database (refused, undecodable, delivered too often), by entry key.
        var outcomes: [String: CommandOutcome] = [:]
        /// Metric label per entry key: the command type, or `invalid`.
        var types: [String: String] = [:]
    }

    /// Decodes each entry into a command to apply, or an outcome already decided.
    private func decode(_ entries: [ShardEntry], deliveries: [String: Int]) -> DecodedEntries {
        var decoded = DecodedEntries()
        for item in entries {
            let key = item.key
            let count = deliveries[key] ?? 1
            let result = Result { () throws(ChatCommandError) in
                try CommandEnvelope.decode(fields: item.entry.fields, maxContentLength: configuration.maxContentLength)
            }
            decoded.types[key] = (try? result.get())?.command.typeName ?? WorkerMetrics.invalidType
            if count > configuration.maxDeliveries {
                decoded.outcomes[key] = deliveredTooOften(item, count: count, decoded: result)
                continue
            }
            switch result {
            case .success(let envelope):
                decoded.commands.append(BatchCommand(entryID: key, envelope: envelope, shard: item.shard))
            case .failure(.malformed(let reason)):
                logger.warn("undecodable command; moving it to the dead-letter stream", ["entry": .string(key), "reason": .string(reason)])
                decoded.outcomes[key] = CommandOutcome(entryID: key, reply: nil, events: [], deadLetterReason: reason)
            case .failure(.rejected(let error, let userID, let reply)):
                logger.debug("command refused", ["entry": .string(key), "user": .int(userID), "code": .string(error.code.name)])
                decoded.outcomes[key] = CommandOutcome(entryID: key, reply: reply.map { ChatReply(reply: $0, error: error) }, events: [])
            }
        }
        return decoded
    }

    /// An entry delivered more than `maxDeliveries` times: dead-lettered, and answered
    /// `processing_failed` when it has a reply address.
    private func deliveredTooOften(_ item: ShardEntry, count: Int, decoded: Result<CommandEnvelope, ChatCommandError>) -> CommandOutcome {
        var reply: ReplyAddress?
        switch decoded {
        case .success(let envelope): reply = envelope.reply
        case .failure(.rejected(_, _, let address)): reply = address
        case .failure(.malformed): break
        }
        logger.error("command keeps failing; moving it to the dead-letter stream", [
            "entry": .string(item.key), "deliveries": .int(Int64(count)), "limit": .int(Int64(configuration.maxDeliveries)),
        ])
        return CommandOutcome(entryID: item.key, reply: reply.map { ChatReply(reply: $0, error: ChatErrors.processingFailed) },
                              events: [], deadLetterReason: "delivered \(count) times (limit \(configuration.maxDeliveries))")
    }

    /// Runs one step of a batch until it succeeds: after each failure logs `failure` (with the
    /// error and the attempt) and waits `WorkerCycle.retryDelay(attempt:)`. Nil when the worker
    /// stops, or `condition` turns false, while the step keeps failing.
    private func retrying<T>(_ failure: String, while condition: @LoopActor () -> Bool, _ step: @LoopActor () async throws -> T) async -> T? {
        var attempt = 0
        while true {
            do {
                return try await step()
            } catch {
                guard running, condition() else { return nil }
                attempt += 1
                logger.warn(failure, ["error": .string(String(describing: error)), "attempt": .int(Int64(attempt))])
                await EventLoop.shared.sleep(for: WorkerCycle.retryDelay(attempt: attempt))
            }
        }
    }

    /// Dead letters, events and replies in one pipeline. Returns the entries that may be
    /// acknowledged: all but those whose dead-letter copy was not written.
    private func publish(_ outcomes: [CommandOutcome], entries: [String: ShardEntry], deliveries: [String: Int]) async throws -> [String] {
        var pipeline: [RedisCommand] = []
        var deadLetterSlots: [(index: Int, entryID: String)] = []
        for outcome in outcomes {
            if let reason = outcome.deadLetterReason {
                var command = RedisCommand.xadd(configuration.deadLetterStream, maxLength: .approximately(configuration.deadLetterMaxLength), fields: [
                    "origin", entries[outcome.entryID]?.entry.id ?? outcome.entryID,
                    "stream", entries[outcome.entryID].map { layout.stream($0.shard) } ?? "", "reason", reason, "deliveries", String(deliveries[outcome.entryID] ?? 1),
                    "consumer", configuration.workerID,
                ])
                for (name, value) in entries[outcome.entryID]?.entry.fields ?? [] { command.appendField(name, value: value) }
                deadLetterSlots.append((index: pipeline.count, entryID: outcome.entryID))
                pipeline.append(command)
            }
            pipeline += outcome.events.map(\.publishCommand)
            pipeline += receipts.admit(outcome.roomEvents).map(\.publishCommand)
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
