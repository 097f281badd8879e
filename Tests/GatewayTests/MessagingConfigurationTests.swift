import Testing
@testable import Gateway
@testable import Shared

@Suite struct MessagingConfigurationTests {
    private let secret = String(repeating: "s", count: 32)

    private func configuration(_ environment: [String: String]) throws(ConfigurationError) -> GatewayConfiguration {
        try GatewayConfiguration(reader: SettingsReader(settings: GatewayConfiguration.settings,
                                                        environment: environment.merging(["JWT_SECRET": secret]) { a, _ in a }))
    }

    @Test func defaults() throws {
        let messaging = try configuration([:]).messaging
        #expect(messaging.commandShards == CommandShards(count: 64, prefix: "chat:cmd"))
        #expect(messaging.replyTimeout == .milliseconds(10_000))
        #expect(messaging.maxContentLength == 4000)
        #expect(messaging.typingTimeout == .milliseconds(5_000))
        #expect(messaging.typingRepeat == .milliseconds(1_000))
        #expect(messaging.historyDefaultLimit == 50 && messaging.historyMaxLimit == 200 && messaging.syncMaxLimit == 200)
    }

    @Test func settingsAreRead() throws {
        let messaging = try configuration(["COMMAND_STREAM": "chat:cmd:test", "COMMAND_SHARDS": "256", "COMMAND_REPLY_TIMEOUT_MS": "2500",
                                           "MESSAGE_MAX_LENGTH": "100", "TYPING_TIMEOUT_MS": "3000", "TYPING_REPEAT_MS": "0"]).messaging
        #expect(messaging.commandShards == CommandShards(count: 256, prefix: "chat:cmd:test"))
        #expect(messaging.replyTimeout == .milliseconds(2500))
        #expect(messaging.maxContentLength == 100)
        #expect(messaging.typingTimeout == .milliseconds(3000) && messaging.typingRepeat == .milliseconds(0))
    }

    @Test func typingRepeatMustBeBelowTheTimeout() {
        #expect(throws: ConfigurationError.self) { try configuration(["TYPING_TIMEOUT_MS": "1000", "TYPING_REPEAT_MS": "1000"]) }
    }
}
