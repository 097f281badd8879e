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
        case pause(milliseconds: Int64)
    }

    static let minimumBackoffMilliseconds: Int64 = 100
    static let maximumBackoffMilliseconds: Int64 = 5_000

    private let claimIntervalNanoseconds: UInt64
    private let trimIntervalNanoseconds: UInt64
    private var groupReady = false
    private var ownPendingCursor: String? = "0"
    private var claimCursor = "0-0"
    private var nextClaimAt: UInt64
    private var nextTrimAt: UInt64
    private var backoffMilliseconds: Int64 = 0
    private var pauseRequested: Int64?

    /// A cycle starting at `now`: the first claim pass runs right after the own pending entries,
    /// the first trim one interval later.
    init(claimIntervalMilliseconds: Int, trimIntervalMilliseconds: Int, now: UInt64) {
        claimIntervalNanoseconds = UInt64(max(1, claimIntervalMilliseconds)) * 1_000_000
        trimIntervalNanoseconds = UInt64(max(1, trimIntervalMilliseconds)) * 1_000_000
        nextClaimAt = now
        nextTrimAt = now &+ trimIntervalNanoseconds
    }

    /// The next thing to do.
    mutating func next(now: UInt64) -> Action {
        if let pause = pauseRequested {
            pauseRequested = nil
            return .pause(milliseconds: pause)
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
        backoffMilliseconds = 0
    }

    /// A page of own pending entries was handled; `lastID` nil means there were none left.
    mutating func ownPendingRead(lastID: String?) {
        ownPendingCursor = lastID
        backoffMilliseconds = 0
    }

    /// A blocking read of new entries returned.
    mutating func newRead() {
        backoffMilliseconds = 0
    }

    /// A claim pass returned `nextCursor`; `0-0` ends the pass until the next interval.
    mutating func claimed(nextCursor: String, now: UInt64) {
        backoffMilliseconds = 0
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
        backoffMilliseconds = 0
        nextTrimAt = now &+ trimIntervalNanoseconds
    }

    /// `action` failed; the next action is a pause (doubling up to the maximum). `groupMissing`
    /// (`NOGROUP`: the stream or group was deleted) makes the cycle create the group again.
    mutating func failed(_ action: Action, groupMissing: Bool, now: UInt64) {
        backoffMilliseconds = backoffMilliseconds == 0
            ? Self.minimumBackoffMilliseconds : min(backoffMilliseconds * 2, Self.maximumBackoffMilliseconds)
        pauseRequested = backoffMilliseconds
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
    static func retryDelay(attempt: Int) -> Int64 {
        guard attempt > 1 else { return minimumBackoffMilliseconds }
        let shift = min(attempt - 1, 16)
        return min(minimumBackoffMilliseconds << Int64(shift), maximumBackoffMilliseconds)
    }
}
