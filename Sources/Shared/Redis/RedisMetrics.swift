import Runtime
import Support

/// The Redis client's metric families in `MetricsRegistry.shared`.
@LoopActor
package enum RedisMetrics {
    /// Redis command latency (one round trip; a pipeline counts once).
    package static let commandDuration = MetricsRegistry.shared.histogram(
        "chat_redis_command_duration_seconds", help: "Redis command (or pipeline) round-trip latency, in seconds.")
}
