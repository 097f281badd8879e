import Shared

/// When the worker waits before reading its next batch: batches adapt to load.
///
/// Idle, a command is read the moment it arrives and committed alone (a lone message's latency).
/// Busy, reading again at once would commit many small batches, and Postgres pays a batch's fixed
/// cost (eleven statements, each parsed and planned) for each; a short pause lets the next batch
/// gather what arrives meanwhile. A batch of at least `minimum` commands says the stream is busy; a
/// full one (`batchSize`) says more is already waiting, so the next read goes at once.
/// docs/BENCHMARKS.md ("What each cut bought"): at 4,000 messages/s Postgres CPU per message −24 %
/// and the workers' −16 % with a 2 ms pause, ack p99 no worse.
struct BatchLinger: Sendable, Equatable {
    /// The pause; zero never pauses.
    var delay: Duration
    /// The smallest batch that says the stream is busy.
    var minimum: Int
    /// A full batch.
    var batchSize: Int

    /// The pause before the next read after a batch of `count` commands; nil: read at once.
    func pause(afterBatchOf count: Int) -> Duration? {
        guard delay > .zero, count >= minimum, count < batchSize else { return nil }
        return delay
    }
}
