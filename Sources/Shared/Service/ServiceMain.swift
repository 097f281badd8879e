import Glibc
import JSON
import Runtime
import Support

/// The common `main` of both executables: parse the command line, load the configuration, run the
/// loop on the main thread, exit with the status the app recorded.
package enum ServiceMain {
    /// What an executable tells `run` about itself.
    package struct Description<Configuration: Sendable>: Sendable {
        /// Executable name in `--help` and messages, e.g. `Gateway`.
        package let program: String
        /// `service` field of every log line, e.g. `gateway`.
        package let service: String
        package let summary: String
        package let settings: [Setting]
        package let load: @Sendable (SettingsReader) throws(ConfigurationError) -> Configuration
        package let common: @Sendable (Configuration) -> CommonConfiguration
        package let instanceID: @Sendable (Configuration) -> String

        package init(program: String, service: String, summary: String, settings: [Setting],
                     load: @escaping @Sendable (SettingsReader) throws(ConfigurationError) -> Configuration,
                     common: @escaping @Sendable (Configuration) -> CommonConfiguration,
                     instanceID: @escaping @Sendable (Configuration) -> String) {
            self.program = program
            self.service = service
            self.summary = summary
            self.settings = settings
            self.load = load
            self.common = common
            self.instanceID = instanceID
        }
    }

    /// Kept alive for the life of the process.
    @LoopActor private static var app: AnyObject?

    /// Never returns. `start` builds the app (returned at once, so it is retained) and a function
    /// that starts it; the app stops the loop when it is done and records its exit status in
    /// `ProcessExitStatus`.
    package static func run<Configuration: Sendable>(
        _ description: Description<Configuration>,
        makeApp: @escaping @Sendable @LoopActor (Configuration, Logger) -> any ServiceApp
    ) -> Never {
        // Signals are blocked before any thread starts, then read through a signalfd on the loop.
        let signalFD = ShutdownSignals.install()
        raiseFileDescriptorLimit()
        let mode = CommandLineMode(arguments: CommandLine.arguments)
        switch mode {
        case .help:
            print(SettingsReader.helpText(program: description.program, summary: description.summary, settings: description.settings))
            exit(0)
        case .invalid(let flag):
            writeStandardError("\(description.program): unknown argument '\(flag)' (see --help)")
            exit(2)
        case .run, .migrateOnly:
            break
        }
        let configuration: Configuration
        do {
            configuration = try description.load(SettingsReader(settings: description.settings))
        } catch {
            Logger(service: description.service, minimumLevel: .info)
                .error("invalid configuration: \(error.description)", ["variable": .string(error.variable)])
            exit(78)  // EX_CONFIG
        }
        let logger = Logger(service: description.service, minimumLevel: description.common(configuration).logLevel,
                            context: ["instance": .string(description.instanceID(configuration))])
        Task.onLoop {
            let service = makeApp(configuration, logger)
            app = service
            do {
                _ = try SignalWatcher(fd: signalFD) { signal in
                    logger.info("signal received, stopping", ["signal": .int(Int64(signal))])
                    service.stop()
                }
            } catch {
                logger.warn("cannot watch signals", ["error": .string(String(describing: error))])
            }
            await service.start(mode: mode)
        }
        EventLoop.shared.run()
        exit(ProcessExitStatus.current)
    }
}

/// Raises the soft limit on open files to the hard limit: every socket is a descriptor, and the
/// default soft limit (1024) would cap a gateway far below its connection target.
private func raiseFileDescriptorLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// A process's top object: starts on the loop, stops the loop when it is done.
@LoopActor
package protocol ServiceApp: AnyObject {
    /// Runs the process (or only the migrations, for `--migrate-only`).
    func start(mode: CommandLineMode) async
    /// Graceful shutdown, on SIGTERM/SIGINT; ends by stopping the loop.
    func stop()
}
