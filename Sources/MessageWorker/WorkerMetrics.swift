import Shared

/// The worker's own metric families (the shared ones are in `ChatMetrics`).
@LoopActor
enum WorkerMetrics {
    /// Batch size buckets: powers of two up to well past the default batch limit.
    nonisolated static let batchSizeBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

    /// Label for commands that could not be decoded or were refused before the batch.
    nonisolated static let invalidType = "invalid"

    /// Commands acknowledged, by command type.
    static let commandsProcessed = MetricsRegistry.shared.counter(
        "chat_commands_processed_total", help: "Commands acknowledged (applied, refused or dead-lettered), by type.",
        labelName: "type", initialLabels: ["send", "read", "readAll", "readMany", invalidType])

    /// Entries read per batch.
    static let batchSize = MetricsRegistry.shared.histogram(
        "chat_batch_size", help: "Stream entries handled per batch.", buckets: batchSizeBuckets)

    /// Time from reading a batch to acknowledging it.
    static let batchDuration = MetricsRegistry.shared.histogram(
        "chat_batch_duration_seconds", help: "Time from reading a batch to acknowledging it, in seconds.")

    /// Entries moved to the dead-letter stream.
    static let deadLettered = MetricsRegistry.shared.counter(
        "chat_dead_lettered_total", help: "Command stream entries moved to the dead-letter stream.")

    /// Entries in the shard streams this worker holds (`XLEN`), as of the last trim.
    static let streamLength = MetricsRegistry.shared.gauge(
        "chat_command_stream_length", help: "Entries in the command shard streams this worker holds, at the last trim.")

    /// Entries delivered and not yet acknowledged in the shards this worker holds, as of the last trim.
    static let streamPending = MetricsRegistry.shared.gauge(
        "chat_command_stream_pending", help: "Command entries pending in the group, over the shards this worker holds, at the last trim.")

    /// How long the oldest entry delivered to this worker's group and not yet acknowledged has
    /// waited (its stream id's time), over the held shards, at the last trim; 0 when none is.
    static let oldestPendingAge = MetricsRegistry.shared.gauge(
        "chat_command_oldest_pending_seconds",
        help: "Age of the oldest command pending (delivered, not acknowledged) in the held shards, at the last trim.")

    /// Per held shard: entries in its stream at the last trim.
    static let shardLength = MetricsRegistry.shared.labeledGauge(
        "chat_command_shard_length", help: "Entries in a held shard's stream at the last trim.", labelName: "shard")

    /// Per held shard: entries delivered and not acknowledged at the last trim.
    static let shardPending = MetricsRegistry.shared.labeledGauge(
        "chat_command_shard_pending", help: "Entries pending in a held shard's group at the last trim.", labelName: "shard")

    /// Per held shard: entries not yet delivered to the group (`XINFO GROUPS` lag) at the last trim.
    static let shardLag = MetricsRegistry.shared.labeledGauge(
        "chat_command_shard_lag", help: "Entries of a held shard not yet read by the workers, at the last trim.", labelName: "shard")

    /// Per held shard: the fencing epoch this worker holds it under (a series exists only while held).
    static let shardEpoch = MetricsRegistry.shared.labeledGauge(
        "chat_command_shard_epoch", help: "Fencing epoch of each shard this worker holds (absent: not held).", labelName: "shard")

    /// Shards this worker holds.
    static let shardsHeld = MetricsRegistry.shared.gauge("chat_command_shards_held", help: "Command shards this worker holds.")

    /// Batches the fence refused (the shard had a new owner).
    static let fencedBatches = MetricsRegistry.shared.counter(
        "chat_shard_fenced_batches_total", help: "Batches refused by a shard's fence (its epoch had moved to a new owner).")

    /// Shards taken over by this worker.
    static let shardTakeovers = MetricsRegistry.shared.counter(
        "chat_shard_takeovers_total", help: "Shard leases this worker acquired (each advances the shard's epoch).")

    /// Records that this worker holds `shard` under `epoch` (nil: not any more).
    static func held(_ shard: Int, epoch: Int64?) {
        let label = String(shard)
        if let epoch {
            shardEpoch.set(label, Double(epoch))
        } else {
            for family in [shardEpoch, shardLength, shardPending, shardLag] { family.remove(label) }
        }
    }

    /// Registers the worker's own families (after `ChatMetrics.registerCommon()`).
    static func register() {
        _ = commandsProcessed
        _ = batchSize
        _ = batchDuration
        _ = deadLettered
        _ = streamLength
        _ = streamPending
        _ = oldestPendingAge
        _ = shardLength
        _ = shardPending
        _ = shardLag
        _ = shardEpoch
        _ = shardsHeld
        _ = fencedBatches
        _ = shardTakeovers
    }
}
