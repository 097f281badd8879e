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

    /// Entries in the command stream (`XLEN`), as of the last trim.
    static let streamLength = MetricsRegistry.shared.gauge(
        "chat_command_stream_length", help: "Entries in the command stream at the last trim.")

    /// Entries delivered to the group and not yet acknowledged, as of the last trim.
    static let streamPending = MetricsRegistry.shared.gauge(
        "chat_command_stream_pending", help: "Command stream entries pending in this worker's group at the last trim.")

    /// Registers the worker's own families (after `ChatMetrics.registerCommon()`).
    static func register() {
        _ = commandsProcessed
        _ = batchSize
        _ = batchDuration
        _ = deadLettered
        _ = streamLength
        _ = streamPending
    }
}
