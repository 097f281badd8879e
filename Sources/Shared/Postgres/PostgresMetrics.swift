import Runtime
import Support

/// The Postgres client's metric families in `MetricsRegistry.shared`.
@LoopActor
package enum PostgresMetrics {
    /// Postgres statement latency through the pool (including waiting for a connection).
    package static let queryDuration = MetricsRegistry.shared.histogram(
        "chat_postgres_query_duration_seconds", help: "Postgres statement latency through the pool, in seconds.")
}
