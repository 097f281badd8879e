import Shared

/// Gateways and workers must agree on `COMMAND_SHARDS`: a gateway with more shards than the
/// workers appends commands to shards no worker reads, and those conversations stall (nothing is
/// lost; they wait for workers with that count). Workers record their count in `<prefix>:shards`
/// at every roster heartbeat; this check reads it at start and every `interval`, logs an error
/// while this gateway's count is larger, and shows it in `chat_command_shards_mismatch`. A smaller
/// count is fine (the workers read every shard the gateway writes), as it is while the count
/// grows (OPERATIONS.md, "Command shards").
@LoopActor
final class ShardCountCheck {
    private let redis: RedisClient
    private let shards: CommandShards
    private let clock: any LoopClock
    private let logger: Logger
    private let interval: Duration
    private var timer: TimerHandle?
    private var running = false

    static let mismatch = MetricsRegistry.shared.gauge(
        "chat_command_shards_mismatch",
        help: "1 while this gateway's COMMAND_SHARDS is larger than the workers' (commands on the extra shards wait), else 0.")

    init(redis: RedisClient, shards: CommandShards, clock: any LoopClock = SystemClock.shared, logger: Logger,
         interval: Duration = .seconds(30)) {
        self.redis = redis
        self.shards = shards
        self.clock = clock
        self.logger = logger
        self.interval = interval
        _ = Self.mismatch  // registered at once, so a scrape shows it before the first check
    }

    /// Checks now (once Redis is connected) and every `interval` until `stop()`.
    func start() {
        guard !running else { return }
        running = true
        Task.onLoop {
            _ = await self.redis.waitUntilConnected(timeout: .seconds(5))
            await self.tick()
        }
    }

    func stop() {
        running = false
        if let timer { clock.cancel(timer) }
        timer = nil
    }

    private func tick() async {
        guard running else { return }
        await check()
        guard running else { return }
        timer = clock.schedule(after: interval) { [weak self] in Task.onLoop { await self?.tick() } }
    }

    /// One check; returns the workers' count (nil: none recorded yet, or Redis unreachable).
    @discardableResult
    func check() async -> Int? {
        guard let reply = try? await redis.send(.get(shards.countKey)), let value = reply.int, value > 0 else {
            Self.mismatch.set(0)
            return nil
        }
        let workers = Int(clamping: value)
        let larger = shards.count > workers
        Self.mismatch.set(larger ? 1 : 0)
        if larger {
            logger.error("COMMAND_SHARDS differs from the workers': commands of the shards they do not have wait until they do", [
                "gateway": .int(Int64(shards.count)), "workers": .int(Int64(workers)),
            ])
        }
        return workers
    }
}
