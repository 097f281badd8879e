import Shared

ServiceMain.run(
    ServiceMain.Description(
        program: "Gateway", service: "gateway", summary: "WebSocket + REST gateway of the chat backend",
        settings: GatewayConfiguration.settings,
        load: { reader throws(ConfigurationError) in try GatewayConfiguration(reader: reader) },
        common: { $0.common }, instanceID: { $0.gatewayID })
) { configuration, logger in
    GatewayApp(configuration: configuration, logger: logger)
}
