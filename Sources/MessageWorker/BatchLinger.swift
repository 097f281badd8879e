import Shared

/// When the worker waits before reading its next batch: batches adapt to load.
///
/// Idle, a command is read the moment it arrives and committed alone (a lone message's latency).
/// Busy, reading again at once would commit many small batches, and Postgres pays a batch's fixed
/// cost (ten statements, each parsed and planned) for each; a short pause lets the next batch
/// gather what arrives meanwhile. A batch of at least `minimum` commands says the stream is busy; a
/// full one (`batchSize`) says more is already waiting, so the next read goes at once. The
/// defaults (2 ms from 32 commands) leave moderate load alone (a pause from 8 commands raised p50
/// at 4,000 messages/s from 10 to 15 ms) and save 7-10 % of the workers' and Postgres's CPU per
/// message near saturation (docs/BENCHMARKS.md, "What each cut bought").
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
