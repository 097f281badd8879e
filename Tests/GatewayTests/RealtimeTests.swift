import Testing
@testable import Gateway
@testable import Shared

@Suite struct RealtimeTests {
    private let secret = String(repeating: "s", count: 32)

    private func configuration(_ environment: [String: String]) throws(ConfigurationError) -> GatewayConfiguration {
        try GatewayConfiguration(reader: SettingsReader(settings: GatewayConfiguration.settings, environment: environment))
    }

    @Test func wildcardOriginsOnlyInDevelopment() throws {
        #expect(throws: ConfigurationError.self) { try configuration(["JWT_SECRET": secret, "ALLOWED_ORIGINS": "*"]) }
        let development = try configuration(["CHAT_ENV": "development"])
        #expect(development.realtime.origins.allowsAny)
        let production = try configuration(["JWT_SECRET": secret])
        #expect(!production.realtime.origins.allowsAny)
        #expect(production.realtime.origins.allows(nil))
        #expect(!production.realtime.origins.allows("https://app.example.com"))
    }

    @Test func socketDefaultsMatchSocketIO() throws {
        let realtime = try configuration(["JWT_SECRET": secret]).realtime
        #expect(realtime.pingInterval == .milliseconds(25_000))
        #expect(realtime.pingTimeout == .milliseconds(20_000))
        #expect(realtime.maxPayloadBytes == 1_000_000)
        #expect(realtime.webSocket.limits.maxMessageBytes == 1_000_000)
        #expect(realtime.webSocket.idleTimeout == nil)
    }

    @Test func publishedEventsBecomeOneSocketIOFrame() throws {
        let frame = try #require(UserChannels.eventFrame(Array(#"{"event":"hello","data":{"x":1}}"#.utf8)))
        var parser = WebSocketParser(role: .client, limits: WebSocketLimits())
        parser.append(frame)
        #expect(parser.next() == .message(.text(#"42["hello",{"x":1}]"#)))
    }

    @Test func malformedPublishedPayloadsAreDropped() {
        #expect(UserChannels.eventFrame(Array("not json".utf8)) == nil)
        #expect(UserChannels.eventFrame(Array(#"{"data":1}"#.utf8)) == nil)
        #expect(UserChannels.eventFrame(Array(#"{"event":""}"#.utf8)) == nil)
        #expect(UserChannels.eventFrame(Array(#"["event"]"#.utf8)) == nil)
        // A lifecycle name would be a frame clients refuse.
        #expect(UserChannels.eventFrame(Array(#"{"event":"disconnect","data":1}"#.utf8)) == nil)
    }

    @Test func revocationsAreControlMessagesNotEvents() throws {
        let revocation = TokenRevocation(tokenID: "j1", sessionID: "s1")
        let payload = UserChannelControl.revoke(revocation).payload()
        #expect(String(decoding: payload, as: UTF8.self) == #"{"control":"revoke","jti":"j1","sid":"s1"}"#)
        guard case .control(.revoke(let parsed))? = UserChannels.published(payload) else {
            Issue.record("not parsed as a control message")
            return
        }
        #expect(parsed == revocation)
        #expect(UserChannels.eventFrame(payload) == nil)
        // Unknown controls and empty revocations are dropped, never forwarded to sockets.
        #expect(UserChannels.published(Array(#"{"control":"reboot"}"#.utf8)) == nil)
        #expect(UserChannels.published(Array(#"{"control":"revoke"}"#.utf8)) == nil)
    }

    @Test func channelNames() {
        #expect(UserChannels.channel(for: 42) == "chat:user:42")
    }
}
