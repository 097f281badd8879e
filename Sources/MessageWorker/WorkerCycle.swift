import Shared

/// The consumer's loop as a pure state machine: it says what to do next, the `CommandConsumer`
/// does it and reports back. Time comes in as a parameter (monotonic nanoseconds), so tests drive
/// the trim timer without sleeping.
///
/// The consumer works on the shards this worker holds (issue 12). A shard it starts goes through
/// three phases: its consumer group is created (if missing); every entry pending in the group,
/// whichever consumer it was delivered to, is claimed and handled in id order (the previous owner's
/// unfinished work comes first, so the shard's order holds across a takeover); then the shard is
/// live and read with the others. Reads of all live shards are one lease-checked script call; when
/// it finds nothing anywhere the consumer blocks on `XREAD` until any live shard gets a new entry.
/// Every `trimInterval` the live shards are trimmed.
struct WorkerCycle: Sendable {
    enum Action: Sendable, Equatable {
        /// `XGROUP CREATE <shard stream> <group> 0 MKSTREAM`.
        case createGroup(shard: Int)
        /// Lease-checked `XAUTOCLAIM <shard stream> <group> <consumer> 0 <cursor>`: takes over
        /// everything pending in the shard's group.
        case claim(shard: Int, cursor: String)
        /// Lease-checked `XREADGROUP ... >` over these live shards (in this order, which rotates so
        /// that no shard waits behind the others when batches are full).
        case read(shards: [Int])
        /// `XREAD BLOCK` until any of these shards gets an entry after the id given; `gated`: a
        /// shard has entries waiting for its parent (while the shard count grows), so the wait is
        /// short and the gate is checked again.
        case wait(after: [ShardPosition], gated: Bool)
        /// Trim these shards and refresh their metrics.
        case trim(shards: [Int])
        /// No shard held: wait until one starts.
        case idle
        /// Wait after a failure before trying again.
        case pause(Duration)
    }

    /// A shard and the id of its last entry (`0-0`: none).
    struct ShardPosition: Sendable, Equatable {
        var shard: Int
        var lastID: String
    }

    /// What a read found on one shard.
    enum ReadResult: Sendable, Equatable {
        /// Entries were delivered; read again.
        case entries
        /// Nothing new; the stream's last entry is `lastID`.
        case idle(lastID: String)
        /// Entries wait for the parent shard (of the previous shard count) to catch up; the
        /// stream's last entry is `lastID`.
        case gated(lastID: String)
        /// Not read this time (the batch was full).
        case skipped
        /// The lease is not this worker's any more.
        case lost
        /// The group does not exist (the stream was deleted).
        case noGroup
    }

    private enum Phase: Sendable, Equatable {
        case creatingGroup
        case claiming(cursor: String)
        /// Read with the others; `lastID` is set when the last read found nothing new.
        case live(lastID: String?)
    }

    static let minimumBackoff = Duration.milliseconds(100)
    static let maximumBackoff = Duration.seconds(5)

    private let trimIntervalNanoseconds: UInt64
    private var phases: [Int: Phase] = [:]
    private var nextTrimAt: UInt64
    private var backoff = Duration.zero
    private var pauseRequested: Duration?
    private var rotation = 0
    /// Live shards whose last read found entries waiting for their parent.
    private var gated: Set<Int> = []

    /// A cycle starting at `now`; the first trim comes one interval later.
    init(trimInterval: Duration, now: UInt64) {
        trimIntervalNanoseconds = max(1, trimInterval.nanosecondsSaturated)
        nextTrimAt = now &+ trimIntervalNanoseconds
    }

    /// The shards being consumed (in any phase), sorted.
    var shards: [Int] { phases.keys.sorted() }

    /// The next thing to do.
    mutating func next(now: UInt64) -> Action {
        if let pause = pauseRequested {
            pauseRequested = nil
            return .pause(pause)
        }
        let held = shards
        if let shard = held.first(where: { phases[$0] == .creatingGroup }) { return .createGroup(shard: shard) }
        for shard in held {
            if case .claiming(let cursor) = phases[shard] { return .claim(shard: shard, cursor: cursor) }
        }
        guard !held.isEmpty else { return .idle }
        if now >= nextTrimAt { return .trim(shards: held) }
        var positions: [ShardPosition] = []
        for shard in held {
            guard case .live(let lastID?) = phases[shard] else { break }
            positions.append(ShardPosition(shard: shard, lastID: lastID))
        }
        if positions.count == held.count { return .wait(after: positions, gated: !gated.isEmpty) }
        rotation = (rotation + 1) % held.count
        return .read(shards: Array(held[rotation...] + held[..<rotation]))
    }

    // MARK: Shards coming and going

    /// This worker may now process `shard`.
    mutating func started(_ shard: Int) {
        phases[shard] = .creatingGroup
    }

    /// This worker must stop processing `shard`.
    mutating func stopped(_ shard: Int) {
        phases[shard] = nil
        gated.remove(shard)
    }

    /// Entries of `shard` were left unacknowledged while it is still held: claim its pending
    /// entries again before reading anything newer.
    mutating func reclaim(_ shard: Int) {
        guard let phase = phases[shard], phase != .creatingGroup else { return }
        phases[shard] = .claiming(cursor: "0-0")
    }

    // MARK: Reports

    /// `shard`'s group exists (created, or it existed already).
    mutating func groupCreated(_ shard: Int) {
        guard phases[shard] == .creatingGroup else { return }
        phases[shard] = .claiming(cursor: "0-0")
        backoff = .zero
    }

    /// A claim page of `shard` was handled; `nextCursor` `0-0` means the pending list is done.
    mutating func claimed(_ shard: Int, nextCursor: String) {
        guard case .claiming = phases[shard] else { return }
        phases[shard] = nextCursor == "0-0" || nextCursor.isEmpty ? .live(lastID: nil) : .claiming(cursor: nextCursor)
        backoff = .zero
    }

    /// A read returned; `results` has what it found per shard.
    mutating func read(_ results: [Int: ReadResult]) {
        backoff = .zero
        for (shard, result) in results where phases[shard] != nil {
            gated.remove(shard)
            switch result {
            case .entries, .skipped: phases[shard] = .live(lastID: nil)
            case .idle(let lastID): phases[shard] = .live(lastID: lastID)
            case .gated(let lastID):
                phases[shard] = .live(lastID: lastID)
                gated.insert(shard)
            case .lost: phases[shard] = nil
            case .noGroup: phases[shard] = .creatingGroup
            }
        }
    }

    /// A blocking wait returned (new entries, or the timeout): read again.
    mutating func waited() {
        backoff = .zero
        for (shard, phase) in phases where phase != .creatingGroup {
            if case .live = phase { phases[shard] = .live(lastID: nil) }
        }
    }

    /// The live shards were trimmed (or did not need it).
    mutating func trimmed(now: UInt64) {
        backoff = .zero
        nextTrimAt = now &+ trimIntervalNanoseconds
    }

    /// `action` failed; the next action is a pause (doubling up to the maximum). `groupMissing`
    /// (`NOGROUP`: the stream or group was deleted) sends the shard back to group creation.
    mutating func failed(_ action: Action, groupMissing: Bool, now: UInt64) {
        backoff = backoff == .zero ? Self.minimumBackoff : min(backoff * 2, Self.maximumBackoff)
        pauseRequested = backoff
        switch action {
        case .claim(let shard, _) where groupMissing && phases[shard] != nil:
            phases[shard] = .creatingGroup
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
