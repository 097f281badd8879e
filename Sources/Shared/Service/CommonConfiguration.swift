import CLinux
import Glibc
import Postgres
import Redis
import Runtime
import Support

/// Settings both executables read: environment mode, logging, Postgres and Redis.
package struct CommonConfiguration: Sendable {
    /// `development` relaxes secrets (a random JWT secret) and allows `*` origins; `production` is the default.
    package var isDevelopment: Bool
    package var logLevel: LogLevel
    package var databaseURL: String
    package var databasePoolSize: Int
    package var databaseConnectTimeout: Duration
    package var databaseQueryTimeout: Duration
    package var databaseAcquireTimeout: Duration
    package var redisURL: String
    package var redisConnectTimeout: Duration
    package var redisCommandTimeout: Duration
    /// `REDIS_TLS_*`: the authorities, client certificate and server name for `rediss://`.
    package var redisTLS: RedisTLSConfiguration
    package var shutdownGrace: Duration
    /// Whether this process applies the migrations or waits for a migration Job to (`MIGRATIONS`).
    package var migrations: MigrationMode
    /// How long Postgres or Redis may be down before `/ready` says the process cannot serve
    /// (until then it answers 200 `degraded`); see `Readiness`.
    package var readyDependencyGrace: Duration

    /// The variables behind these fields, for `--help`.
    package static func settings(poolSize: Int) -> [Setting] {
        [
            Setting("CHAT_ENV", "production", "production or development (development: random JWT secret if unset, relaxed origins)"),
            Setting("LOG_LEVEL", "info", "debug, info, warn or error; logs are one JSON object per line on stdout"),
            Setting("DATABASE_URL", "postgresql://chat@127.0.0.1:5432/chat", "PostgreSQL connection URL (libpq syntax)"),
            Setting("DATABASE_POOL_SIZE", "\(poolSize)", "PostgreSQL connections per process"),
            Setting("DATABASE_CONNECT_TIMEOUT_MS", "3000", "PostgreSQL connect timeout"),
            Setting("DATABASE_QUERY_TIMEOUT_MS", "10000", "PostgreSQL query timeout (the connection is dropped on expiry)"),
            Setting("DATABASE_ACQUIRE_TIMEOUT_MS", "2000", "longest wait for a pooled connection before answering 503"),
            Setting("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL: redis://[[user]:password@]host[:port][/db]; rediss:// for TLS; redis+sentinel://[[user]:password@]host[:port],.../<primary>[/db] (rediss+sentinel:// with TLS) to find the primary through Redis Sentinel"),
            Setting("REDIS_TLS_CA_FILE", nil, "rediss://: PEM file of the authorities that sign the server's certificate [the system's]"),
            Setting("REDIS_TLS_CERT_FILE", nil, "rediss://: PEM client certificate chain, for servers that require one (with REDIS_TLS_KEY_FILE)"),
            Setting("REDIS_TLS_KEY_FILE", nil, "rediss://: PEM private key of REDIS_TLS_CERT_FILE"),
            Setting("REDIS_TLS_SERVER_NAME", nil, "rediss://: the name the server's certificate must carry [the URL's host]"),
            Setting("REDIS_CONNECT_TIMEOUT_MS", "2000", "Redis connect timeout"),
            Setting("REDIS_COMMAND_TIMEOUT_MS", "5000", "Redis command timeout (the connection is dropped on expiry)"),
            Setting("SHUTDOWN_GRACE_MS", "10000", "on SIGTERM, longest wait for work in flight before exiting"),
            Setting("MIGRATIONS", "apply", "apply: apply missing database migrations at start-up; wait: wait until a migration job (--migrate-only) has"),
            Setting("READY_DEPENDENCY_GRACE_MS", "30000", "/ready answers 200 degraded while Postgres or Redis is down for less than this, 503 after"),
        ]
    }

    package init(reader: SettingsReader) throws(ConfigurationError) {
        let mode = try reader.string("CHAT_ENV").lowercased()
        guard mode == "production" || mode == "development" else {
            throw ConfigurationError("CHAT_ENV", "must be 'production' or 'development', got '\(mode)'")
        }
        isDevelopment = mode == "development"
        let levelName = try reader.string("LOG_LEVEL")
        guard let level = LogLevel(name: levelName) else {
            throw ConfigurationError("LOG_LEVEL", "must be debug, info, warn or error, got '\(levelName)'")
        }
        logLevel = level
        databaseURL = try reader.string("DATABASE_URL")
        databasePoolSize = try reader.int("DATABASE_POOL_SIZE", in: 1...256)
        databaseConnectTimeout = try reader.milliseconds("DATABASE_CONNECT_TIMEOUT_MS", in: 100...120_000)
        databaseQueryTimeout = try reader.milliseconds("DATABASE_QUERY_TIMEOUT_MS", in: 100...600_000)
        databaseAcquireTimeout = try reader.milliseconds("DATABASE_ACQUIRE_TIMEOUT_MS", in: 10...120_000)
        redisURL = try reader.string("REDIS_URL")
        redisConnectTimeout = try reader.milliseconds("REDIS_CONNECT_TIMEOUT_MS", in: 100...120_000)
        redisCommandTimeout = try reader.milliseconds("REDIS_COMMAND_TIMEOUT_MS", in: 100...600_000)
        redisTLS = RedisTLSConfiguration(caFile: reader.optionalString("REDIS_TLS_CA_FILE"),
                                         certificateFile: reader.optionalString("REDIS_TLS_CERT_FILE"),
                                         keyFile: reader.optionalString("REDIS_TLS_KEY_FILE"),
                                         serverName: reader.optionalString("REDIS_TLS_SERVER_NAME"))
        if (redisTLS.certificateFile == nil) != (redisTLS.keyFile == nil) {
            throw ConfigurationError(redisTLS.certificateFile == nil ? "REDIS_TLS_CERT_FILE" : "REDIS_TLS_KEY_FILE",
                                     "REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together")
        }
        let lowered = redisURL.lowercased()
        if redisTLS != RedisTLSConfiguration(), !lowered.hasPrefix("rediss://"), !lowered.hasPrefix("rediss+sentinel://") {
            throw ConfigurationError("REDIS_TLS_CA_FILE", "REDIS_TLS_* settings need a rediss:// (or rediss+sentinel://) REDIS_URL")
        }
        shutdownGrace = try reader.milliseconds("SHUTDOWN_GRACE_MS", in: 0...600_000)
        let migrationMode = try reader.string("MIGRATIONS").lowercased()
        guard let migrations = MigrationMode(rawValue: migrationMode) else {
            throw ConfigurationError("MIGRATIONS", "must be 'apply' or 'wait', got '\(migrationMode)'")
        }
        self.migrations = migrations
        readyDependencyGrace = try reader.milliseconds("READY_DEPENDENCY_GRACE_MS", in: 0...3_600_000)
    }
}

/// What the command line asked for.
package enum CommandLineMode: Sendable, Equatable {
    case run
    case help
    case migrateOnly
    case invalid(String)

    /// Parses `--help`, `-h`, `--migrate-only`.
    package init(arguments: [String]) {
        let flags = arguments.dropFirst()
        if flags.contains("--help") || flags.contains("-h") { self = .help; return }
        if let unknown = flags.first(where: { $0 != "--migrate-only" }) { self = .invalid(unknown); return }
        self = flags.contains("--migrate-only") ? .migrateOnly : .run
    }
}

/// Signals that ask the process to stop, delivered through the loop.
package enum ShutdownSignals {
    /// Blocks SIGINT/SIGTERM for every thread (call first in `main`, before any thread starts) and
    /// ignores SIGPIPE; returns a signalfd the loop can watch.
    package static func install() -> CInt {
        signal(SIGPIPE, SIG_IGN)
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGINT)
        sigaddset(&mask, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        return signalfd(-1, &mask, CInt(SFD_NONBLOCK | SFD_CLOEXEC))
    }
}

/// Calls `onSignal` on the loop when SIGINT or SIGTERM arrives.
@LoopActor
package final class SignalWatcher: IOHandler {
    private let fd: CInt
    private let onSignal: @LoopActor (CInt) -> Void

    package init(fd: CInt, onSignal: @escaping @LoopActor (CInt) -> Void) throws(SystemError) {
        self.fd = fd
        self.onSignal = onSignal
        _ = try EventLoop.shared.register(fd: fd, interest: .read, handler: self)
    }

    package func handleIO(_ events: IOEvents) {
        var info = signalfd_siginfo()
        while read(fd, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
            onSignal(CInt(info.ssi_signo))
        }
    }
}
