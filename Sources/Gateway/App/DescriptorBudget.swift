import Glibc
import Shared

/// `MAX_CONNECTIONS` against the open-file limit (issue 18): every connection is a descriptor,
/// and a gateway out of descriptors cannot even accept a connection to refuse it (the 503 at the
/// cap needs one). At start-up the soft limit is raised towards what the cap needs (up to the hard
/// limit), and when even that is short the cap is lowered to fit, with a warning, so the gateway
/// answers 503 at its real limit instead of failing to accept.
enum DescriptorBudget {
    /// Descriptors a gateway needs besides client connections: listeners, the loop's epoll,
    /// eventfd and timers, the Postgres pools, the Redis connections, logs, and slack.
    static let reserve = 1_000

    /// The connection cap that fits `descriptors` (the soft limit): `configured`, or less.
    static func cap(configured: Int, descriptors: Int) -> Int {
        max(1, min(configured, descriptors.subtractingSaturated(reserve)))
    }

    /// Raises the soft RLIMIT_NOFILE to what `configured` connections need (at most the hard
    /// limit) and returns the cap that fits the result.
    static func fit(configured: Int, logger: Logger) -> Int {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return configured }
        let needed = rlim_t(clamping: configured.addingSaturated(reserve))
        if limit.rlim_cur < needed {
            var raised = limit
            raised.rlim_cur = min(needed, limit.rlim_max)
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let soft = Int(clamping: limit.rlim_cur)
        let fitted = cap(configured: configured, descriptors: soft)
        if fitted < configured {
            logger.warn("MAX_CONNECTIONS lowered to fit the open-file limit; raise the limit (compose ulimits.nofile, systemd LimitNOFILE) to serve more",
                        ["configured": .int(Int64(configured)), "effective": .int(Int64(fitted)), "openFileLimit": .int(Int64(soft)),
                         "reserve": .int(Int64(reserve))])
        }
        return fitted
    }
}
