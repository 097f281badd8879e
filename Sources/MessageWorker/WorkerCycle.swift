import Shared

/// The consumer's loop as a pure state machine: it says what to do next, the `CommandConsumer`
/// does it and reports back. Time comes in as a parameter (monotonic nanoseconds), so tests drive
/// the claim and trim timers without sleeping.
///
/// Order of work: create the group; re-read this consumer's own pending entries (left by a crash
/// under the same name) until none are left; then block for new entries, interrupted every
/// `claimInterval` by an `XAUTOCLAIM` pass over entries other consumers left idle (continued at once
/// while the cursor is not back at `0-0`) and every `trimInterval` by a trim.
struct WorkerCycle: Sendable {
    enum Action: Sendable, Equatable {
        case createGroup
        /// `XREADGROUP ... STREAMS key <after>`: own pending entries after this id.
        case readOwnPending(after: String)
        /// `XREADGROUP ... STREAMS key >`.
        case readNew
        /// `XAUTOCLAIM key group consumer <idle> <cursor>`.
        case claim(cursor: String)
        case trim
        /// Wait after a failure before trying again.
        case pause(Duration)
    }

    static let minimumBackoff = Duration.milliseconds(100)
    static let maximumBackoff = Duration.seconds(5)

    private let claimIntervalNanoseconds: UInt64
    private let trimIntervalNanoseconds: UInt64
    private var groupReady = false
    private var ownPendingCursor: String? = "0"
    private var claimCursor = "0-0"
    private var nextClaimAt: UInt64
    private var nextTrimAt: UInt64
    private var backoff = Duration.zero
    private var pauseRequested: Duration?

    /// A cycle starting at `now`: the first claim pass runs right after the own pending entries,
    /// the first trim one interval later.
    init(claimInterval: Duration, trimInterval: Duration, now: UInt64) {
        claimIntervalNanoseconds = max(1, claimInterval.nanosecondsSaturated)
        trimIntervalNanoseconds = max(1, trimInterval.nanosecondsSaturated)
        nextClaimAt = now
        nextTrimAt = now &+ trimIntervalNanoseconds
    }

    /// The next thing to do.
    mutating func next(now: UInt64) -> Action {
        if let pause = pauseRequested {
            pauseRequested = nil
            return .pause(pause)
        }
        guard groupReady else { return .createGroup }
        if let cursor = ownPendingCursor { return .readOwnPending(after: cursor) }
        if now >= nextTrimAt { return .trim }
        if now >= nextClaimAt { return .claim(cursor: claimCursor) }
        return .readNew
    }

    /// The group exists (created, or another worker had created it).
    mutating func groupCreated() {
        groupReady = true
        backoff = .zero
    }

    /// A page of own pending entries was handled; `lastID` nil means there were none left.
    mutating func ownPendingRead(lastID: String?) {
        ownPendingCursor = lastID
        backoff = .zero
    }

    /// A blocking read of new entries returned.
    mutating func newRead() {
        backoff = .zero
    }

    /// A claim pass returned `nextCursor`; `0-0` ends the pass until the next interval.
    mutating func claimed(nextCursor: String, now: UInt64) {
        backoff = .zero
        if nextCursor == "0-0" || nextCursor.isEmpty {
            claimCursor = "0-0"
            nextClaimAt = now &+ claimIntervalNanoseconds
        } else {
            claimCursor = nextCursor
            nextClaimAt = now
        }
    }

    /// The stream was trimmed (or did not need it).
    mutating func trimmed(now: UInt64) {
        backoff = .zero
        nextTrimAt = now &+ trimIntervalNanoseconds
    }

    /// `action` failed; the next action is a pause (doubling up to the maximum). `groupMissing`
    /// (`NOGROUP`: the stream or group was deleted) makes the cycle create the group again.
    mutating func failed(_ action: Action, groupMissing: Bool, now: UInt64) {
        backoff = backoff == .zero ? Self.minimumBackoff : min(backoff * 2, Self.maximumBackoff)
        pauseRequested = backoff
        if groupMissing {
            groupReady = false
            ownPendingCursor = "0"
        }
        switch action {
        case .claim:
            claimCursor = "0-0"
            nextClaimAt = now &+ claimIntervalNanoseconds
        case .trim:
            nextTrimAt = now &+ trimIntervalNanoseconds
        default:
            break
        }
    }

    /// Backoff for retrying one batch in place (the n-th consecutive failure, from 1).
    static func retryDelay(attempt: Int) -> Duration {
        guard attempt > 1 else { return minimumBackoff }
        let shift = min(attempt - 1, 16)
        return min(minimumBackoff * (1 << shift), maximumBackoff)
    }
}
