import Shared

/// One shard's lease, as a pure state machine (issue 12): the consumer feeds it what happened and
/// performs the actions it returns; time comes in as monotonic nanoseconds, so tests drive expiry
/// and renewal with a manual clock.
///
/// The lease is a Redis key (`SET <key> <worker> NX PX <ttl>`, renewed by compare-and-extend,
/// released by compare-and-delete). Holding it is necessary but not sufficient to write: on every
/// acquisition the new owner advances the shard's epoch in Postgres, and every batch transaction
/// checks that epoch (the fence), so a worker that lost its lease during a pause cannot commit.
///
/// Validity is counted from when a request was *sent*, never from when its answer arrived, so a
/// slow answer can only make this worker think it has less time than Redis gives it. A batch may
/// start only while more than `margin` of validity is left.
struct ShardLease: Equatable {
    enum State: Equatable {
        /// Not held; `wanted` says whether to try.
        case idle
        /// `SET NX` sent at `sentAt`.
        case acquiring(sentAt: UInt64)
        /// Lease granted (valid until `validUntil`); the epoch is being advanced in Postgres.
        case fencing(validUntil: UInt64)
        /// Held with fencing epoch `epoch`.
        case held(epoch: Int64, validUntil: UInt64)
        /// Compare-and-delete sent.
        case releasing
    }

    enum Action: Equatable {
        /// `SET <lease> <worker> NX PX <ttl>`; answer with `acquireAnswered`.
        case acquire
        /// Advance the shard's epoch in Postgres; answer with `epochAdvanced` or `failed`.
        case advanceEpoch
        /// Compare-and-extend; answer with `renewAnswered`.
        case renew
        /// Compare-and-delete; answer with `released`.
        case release
        /// Start consuming the shard, writing under `epoch`.
        case start(epoch: Int64)
        /// Stop starting batches on the shard (the one in hand is refused by the fence if late).
        case stop
        /// Call `timerFired` at this monotonic instant.
        case wake(at: UInt64)
    }

    struct Timing: Equatable {
        /// Lease lifetime in Redis.
        var ttl: UInt64
        /// Renew this long after the last grant (a third of the TTL: two renewals may fail).
        var renewEvery: UInt64
        /// Retry an acquisition this long after it failed.
        var retryEvery: UInt64
        /// No batch starts with less than this validity left.
        var margin: UInt64

        init(ttl: Duration, retryEvery: Duration = .seconds(1)) {
            self.ttl = max(3, ttl.nanosecondsSaturated)
            renewEvery = self.ttl / 3
            self.retryEvery = max(1, retryEvery.nanosecondsSaturated)
            margin = self.ttl / 3
        }
    }

    let timing: Timing
    private(set) var state = State.idle
    /// Whether the assignment gives this shard to this worker.
    private(set) var wanted = false
    /// When the renewal in flight was sent.
    private var renewSentAt: UInt64?

    init(timing: Timing) {
        self.timing = timing
    }

    /// The epoch to write under, if a batch may start now.
    func epochForBatch(now: UInt64) -> Int64? {
        guard case .held(let epoch, let validUntil) = state, now.addingSaturated(timing.margin) < validUntil else { return nil }
        return epoch
    }

    // MARK: Assignment

    /// The assignment now gives this shard to this worker.
    mutating func assign(now: UInt64) -> [Action] {
        wanted = true
        guard state == .idle else { return [] }
        state = .acquiring(sentAt: now)
        return [.acquire]
    }

    /// The assignment gave this shard to another worker: stop, then release.
    mutating func unassign() -> [Action] {
        wanted = false
        switch state {
        case .held, .fencing:
            state = .releasing
            renewSentAt = nil
            return [.stop, .release]
        case .idle, .acquiring, .releasing:
            // An acquisition in flight is released when its answer arrives.
            return []
        }
    }

    // MARK: Answers

    /// The answer to `.acquire` (`granted`: the key was set for us).
    mutating func acquireAnswered(granted: Bool, now: UInt64) -> [Action] {
        guard case .acquiring(let sentAt) = state else { return [] }
        guard granted else {
            state = .idle
            return wanted ? [.wake(at: now.addingSaturated(timing.retryEvery))] : []
        }
        guard wanted else {
            state = .releasing
            return [.release]
        }
        state = .fencing(validUntil: sentAt.addingSaturated(timing.ttl))
        return [.advanceEpoch]
    }

    /// The shard's epoch was advanced to `epoch` for this worker.
    mutating func epochAdvanced(_ epoch: Int64, now: UInt64) -> [Action] {
        guard case .fencing(let validUntil) = state else { return [] }
        guard now < validUntil else { return lose(now: now) }
        state = .held(epoch: epoch, validUntil: validUntil)
        return [.start(epoch: epoch), .wake(at: validUntil.subtractingSaturated(timing.ttl).addingSaturated(timing.renewEvery))]
    }

    /// The answer to `.renew` sent at `sentAt` (`kept`: the key was still ours and was extended).
    mutating func renewAnswered(kept: Bool, sentAt: UInt64, now: UInt64) -> [Action] {
        guard case .held(let epoch, let validUntil) = state, renewSentAt == sentAt else { return [] }
        renewSentAt = nil
        guard kept else { return lose(now: now) }
        let extended = max(validUntil, sentAt.addingSaturated(timing.ttl))
        state = .held(epoch: epoch, validUntil: extended)
        return [.wake(at: sentAt.addingSaturated(timing.renewEvery))]
    }

    /// A request failed (Redis or Postgres unreachable, timeout): keep what validity is left and
    /// try again at the next wake-up.
    mutating func failed(now: UInt64) -> [Action] {
        switch state {
        case .acquiring, .fencing:
            // A lease granted but not fenced expires by itself; nothing was written under it.
            state = .idle
            return wanted ? [.wake(at: now.addingSaturated(timing.retryEvery))] : []
        case .held(_, let validUntil):
            renewSentAt = nil
            if now >= validUntil { return lose(now: now) }
            return [.wake(at: min(validUntil, now.addingSaturated(timing.retryEvery)))]
        case .releasing:
            state = .idle
            return []
        case .idle:
            return []
        }
    }

    /// The compare-and-delete was answered (or gave up): the shard is free here.
    mutating func released(now: UInt64) -> [Action] {
        guard state == .releasing else { return [] }
        state = .idle
        guard wanted else { return [] }
        state = .acquiring(sentAt: now)
        return [.acquire]
    }

    /// A `.wake(at:)` came due.
    mutating func timerFired(now: UInt64) -> [Action] {
        switch state {
        case .idle:
            guard wanted else { return [] }
            state = .acquiring(sentAt: now)
            return [.acquire]
        case .held(_, let validUntil):
            if now >= validUntil { return lose(now: now) }
            guard renewSentAt == nil else { return [] }
            renewSentAt = now
            return [.renew]
        case .acquiring, .fencing, .releasing:
            return []
        }
    }

    /// The lease turned out not to be ours any more although we thought it was (Redis shows
    /// another holder or none, or the fence refused a batch): stop now.
    mutating func lost(now: UInt64) -> [Action] {
        switch state {
        case .held, .fencing: return lose(now: now)
        case .idle, .acquiring, .releasing: return []
        }
    }

    /// The sent-at instant of the renewal in flight (for `renewAnswered`).
    var renewalInFlight: UInt64? { renewSentAt }

    private mutating func lose(now: UInt64) -> [Action] {
        state = .idle
        renewSentAt = nil
        var actions: [Action] = [.stop]
        if wanted { actions.append(.wake(at: now.addingSaturated(timing.retryEvery))) }
        return actions
    }
}
