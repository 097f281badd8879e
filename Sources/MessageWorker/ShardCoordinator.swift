import Shared

/// Runs one worker's side of the sharded streams (issue 12): keeps it on the roster, computes which
/// shards are its own (`ShardAssignment` over the live workers), and drives a `ShardLease` per shard
/// through Redis (`ShardLeaseStore`) and the Postgres fence (`ShardFence`). The consumer hears
/// `onStart(shard, epoch)` when it may process a shard and `onStop(shard)` when it must stop, and
/// asks `epochForBatch(shard)` before each batch.
@LoopActor
final class ShardCoordinator {
    private let shards: CommandShards
    private let store: ShardLeaseStore
    private let database: PostgresPool
    private let clock: any LoopClock
    private let timing: ShardLease.Timing
    private let logger: Logger
    private var leases: [Int: ShardLease] = [:]
    private var wakeTimers: [Int: TimerHandle] = [:]
    private var heartbeatTimer: TimerHandle?
    /// Roster heartbeats failed in a row.
    private var heartbeatFailures = 0
    private var running = false

    /// A shard may be processed under `epoch` from now on.
    var onStart: @LoopActor (_ shard: Int, _ epoch: Int64) -> Void = { _, _ in }
    /// A shard must not start another batch.
    var onStop: @LoopActor (_ shard: Int) -> Void = { _ in }
    /// Returns once no batch on the shard is in flight: a lease given back on a rebalance or a
    /// graceful stop is released only after the batch in hand is acknowledged, so the next owner
    /// neither waits for the fence nor redoes it.
    var drained: @LoopActor (_ shard: Int) async -> Void = { _ in }

    init(shards: CommandShards, store: ShardLeaseStore, database: PostgresPool, clock: any LoopClock = SystemClock.shared,
         timing: ShardLease.Timing, logger: Logger) {
        self.shards = shards
        self.store = store
        self.database = database
        self.clock = clock
        self.timing = timing
        self.logger = logger
    }

    /// The epoch a batch on `shard` must write under, if one may start now.
    func epochForBatch(_ shard: Int) -> Int64? {
        leases[shard]?.epochForBatch(now: clock.now())
    }

    /// The consumer found `shard`'s lease gone (Redis shows another holder, or the fence refused a batch).
    func lost(_ shard: Int) {
        guard leases[shard] != nil else { return }
        feed(shard) { lease, now in lease.lost(now: now) }
    }

    // MARK: Lifecycle

    func start() {
        guard !running else { return }
        running = true
        Task.onLoop { await self.heartbeat() }
    }

    /// Stops every shard, gives the leases back and leaves the roster, so the others take over
    /// without waiting for the TTL.
    func stop() async {
        running = false
        if let heartbeatTimer { clock.cancel(heartbeatTimer) }
        heartbeatTimer = nil
        for timer in wakeTimers.values { clock.cancel(timer) }
        wakeTimers = [:]
        for shard in leases.keys.sorted() {
            guard var lease = leases[shard] else { continue }
            let actions = lease.unassign()
            leases[shard] = lease
            if actions.contains(.stop) { onStop(shard) }
            guard actions.contains(.release) else { continue }
            await drained(shard)
            _ = try? await store.release(shard)
            feed(shard) { lease, now in lease.released(now: now) }
        }
        try? await store.leave()
    }

    // MARK: Assignment

    private func heartbeat() async {
        guard running else { return }
        let beatAgain: UInt64
        do {
            let live = try await store.heartbeat()
            let mine = Set(ShardAssignment.shards(of: store.workerID, shards: shards.count, workers: live))
            for shard in mine.sorted() where leases[shard]?.wanted != true {
                feed(shard) { lease, now in lease.assign(now: now) }
            }
            for (shard, lease) in leases where lease.wanted && !mine.contains(shard) {
                feed(shard) { lease, _ in lease.unassign() }
            }
            heartbeatFailures = 0
            beatAgain = timing.renewEvery
        } catch {
            // The first beat of a starting worker usually finds Redis still connecting: not worth
            // a warning, and worth trying again soon (the roster learns of a newcomer that much
            // sooner).
            heartbeatFailures += 1
            if heartbeatFailures > 1 {
                logger.warn("shard roster heartbeat failed", ["error": .string(String(describing: error)), "failures": .int(Int64(heartbeatFailures))])
            }
            beatAgain = min(timing.renewEvery, timing.retryEvery)
        }
        guard running else { return }
        heartbeatTimer = clock.schedule(after: .nanoseconds(Int64(beatAgain))) { [weak self] in
            Task.onLoop { await self?.heartbeat() }
        }
    }

    // MARK: Actions

    /// Gives `shard`'s lease (a new one the first time) an input and performs what it answers.
    private func feed(_ shard: Int, _ input: (inout ShardLease, UInt64) -> [ShardLease.Action]) {
        var lease = leases[shard] ?? ShardLease(timing: timing)
        let actions = input(&lease, clock.now())
        leases[shard] = lease
        perform(actions, shard: shard)
    }

    private func perform(_ actions: [ShardLease.Action], shard: Int) {
        for action in actions { perform(action, shard: shard) }
    }

    private func perform(_ action: ShardLease.Action, shard: Int) {
        switch action {
        case .acquire:
            Task.onLoop {
                do {
                    let granted = try await self.store.acquire(shard)
                    self.feed(shard) { lease, now in lease.acquireAnswered(granted: granted, now: now) }
                } catch {
                    self.feed(shard) { lease, now in lease.failed(now: now) }
                }
            }
        case .advanceEpoch:
            Task.onLoop {
                do {
                    let epoch = try await ShardFence.advance(shard: shard, owner: self.store.workerID, on: self.database)
                    self.feed(shard) { lease, now in lease.epochAdvanced(epoch, now: now) }
                } catch {
                    self.logger.warn("cannot advance a shard's epoch", ["shard": .int(Int64(shard)), "error": .string(String(describing: error))])
                    self.feed(shard) { lease, now in lease.failed(now: now) }
                }
            }
        case .renew:
            guard let sentAt = leases[shard]?.renewalInFlight else { return }
            Task.onLoop {
                do {
                    let kept = try await self.store.renew(shard)
                    self.feed(shard) { lease, now in lease.renewAnswered(kept: kept, sentAt: sentAt, now: now) }
                } catch {
                    self.feed(shard) { lease, now in lease.failed(now: now) }
                }
            }
        case .release:
            Task.onLoop {
                await self.drained(shard)
                _ = try? await self.store.release(shard)
                self.feed(shard) { lease, now in lease.released(now: now) }
            }
        case .start(let epoch):
            logger.info("shard taken", ["shard": .int(Int64(shard)), "epoch": .int(epoch)])
            onStart(shard, epoch)
        case .stop:
            logger.info("shard given up", ["shard": .int(Int64(shard))])
            onStop(shard)
        case .wake(let deadline):
            if let timer = wakeTimers[shard] { clock.cancel(timer) }
            wakeTimers[shard] = clock.schedule(after: MonotonicClock.duration(until: deadline, from: clock.now())) { [weak self] in
                guard let self else { return }
                self.wakeTimers[shard] = nil
                self.feed(shard) { lease, now in lease.timerFired(now: now) }
            }
        }
    }
}
