import Glibc
import Shared

// Signals are blocked before any thread starts, then read through a signalfd on the loop.
let signalFD = ShutdownSignals.install()
let mode = CommandLineMode(arguments: CommandLine.arguments)
switch mode {
case .help:
    print(SettingsReader.helpText(program: "MessageWorker", summary: "command-stream consumer of the chat backend",
                                  settings: WorkerConfiguration.settings))
    exit(0)
case .invalid(let flag):
    writeStandardError("MessageWorker: unknown argument '\(flag)' (see --help)")
    exit(2)
case .run, .migrateOnly:
    break
}

let configuration: WorkerConfiguration
do {
    configuration = try WorkerConfiguration(reader: SettingsReader(settings: WorkerConfiguration.settings))
} catch {
    Logger(service: "worker", minimumLevel: .info).error("invalid configuration: \(error.description)",
                                                         ["variable": .string(error.variable)])
    exit(78)  // EX_CONFIG
}
let logger = Logger(service: "worker", minimumLevel: configuration.common.logLevel,
                    context: ["instance": .string(configuration.workerID)])
Task { @LoopActor in
    let app = WorkerApp(configuration: configuration, logger: logger)
    WorkerProcess.app = app
    await app.start(mode: mode, signalFD: signalFD)
}
EventLoop.shared.run()
exit(ProcessExitStatus.current)

/// Keeps the running app alive for the life of the process.
@LoopActor
enum WorkerProcess {
    static var app: WorkerApp?
}
