import Shared

ServiceMain.run(
    ServiceMain.Description(
        program: "MessageWorker", service: "worker", summary: "command-stream consumer of the chat backend",
        settings: WorkerConfiguration.settings,
        load: { reader throws(ConfigurationError) in try WorkerConfiguration(reader: reader) },
        common: { $0.common }, instanceID: { $0.workerID })
) { configuration, logger in
    WorkerApp(configuration: configuration, logger: logger)
}
