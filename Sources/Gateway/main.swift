import Glibc
import Shared

// Signals are blocked before any thread starts, then read through a signalfd on the loop.
let signalFD = ShutdownSignals.install()
let mode = CommandLineMode(arguments: CommandLine.arguments)
switch mode {
case .help:
    print(SettingsReader.helpText(program: "Gateway", summary: "WebSocket + REST gateway of the chat backend",
                                  settings: GatewayConfiguration.settings))
    exit(0)
case .invalid(let flag):
    writeStandardError("Gateway: unknown argument '\(flag)' (see --help)")
    exit(2)
case .run, .migrateOnly:
    break
}

let configuration: GatewayConfiguration
do {
    configuration = try GatewayConfiguration(reader: SettingsReader(settings: GatewayConfiguration.settings))
} catch {
    Logger(service: "gateway", minimumLevel: .info).error("invalid configuration: \(error.description)",
                                                          ["variable": .string(error.variable)])
    exit(78)  // EX_CONFIG
}
let logger = Logger(service: "gateway", minimumLevel: configuration.common.logLevel,
                    context: ["instance": .string(configuration.gatewayID)])
Task { @LoopActor in
    let app = GatewayApp(configuration: configuration, logger: logger)
    GatewayProcess.app = app
    await app.start(mode: mode, signalFD: signalFD)
}
EventLoop.shared.run()
exit(ProcessExitStatus.current)

/// Keeps the running app alive for the life of the process.
@LoopActor
enum GatewayProcess {
    static var app: GatewayApp?
}
