import Testing
@testable import Gateway
@testable import Shared

@Suite struct GatewayConfigurationTests {
    private func configuration(_ environment: [String: String]) throws(ConfigurationError) -> GatewayConfiguration {
        try GatewayConfiguration(reader: SettingsReader(settings: GatewayConfiguration.settings, environment: environment))
    }

    private let secret = String(repeating: "s", count: 32)

    @Test func productionRequiresASecret() {
        do {
            _ = try configuration([:])
            Issue.record("started without JWT_SECRET in production")
        } catch {
            #expect(error.variable == "JWT_SECRET")
            #expect(error.reason.contains("required"))
        }
    }

    @Test func shortSecretsAreRefusedEvenInDevelopment() {
        #expect(throws: ConfigurationError.self) {
            try configuration(["JWT_SECRET": "too-short", "CHAT_ENV": "development"])
        }
    }

    @Test func developmentGeneratesARandomSecret() throws {
        let first = try configuration(["CHAT_ENV": "development"])
        let second = try configuration(["CHAT_ENV": "development"])
        #expect(first.jwtSecretGenerated)
        #expect(first.jwtSecret.count >= 32)
        #expect(first.jwtSecret != second.jwtSecret)
    }

    /// Issue 13: room members are contacts only when asked for (`PRESENCE_ROOM_CONTACTS`).
    @Test func roomContactsAreASwitchThatIsOffByDefault() throws {
        #expect(try configuration(["JWT_SECRET": secret]).presence.roomMembersAreContacts == false)
        #expect(try configuration(["JWT_SECRET": secret, "PRESENCE_ROOM_CONTACTS": "on"]).presence.roomMembersAreContacts)
        #expect(try configuration(["JWT_SECRET": secret, "PRESENCE_ROOM_CONTACTS": "FALSE"]).presence.roomMembersAreContacts == false)
        do {
            _ = try configuration(["JWT_SECRET": secret, "PRESENCE_ROOM_CONTACTS": "sometimes"])
            Issue.record("accepted a switch that is neither on nor off")
        } catch {
            #expect(error.variable == "PRESENCE_ROOM_CONTACTS")
        }
    }

    @Test func defaultsMatchTheDocumentation() throws {
        let config = try configuration(["JWT_SECRET": secret])
        #expect(config.http.port == 3000)
        #expect(config.accessTokenTTLSeconds == 900)
        #expect(config.refreshTokenTTLSeconds == 2_592_000)
        #expect(config.scrypt == ScryptParameters.default)
        #expect(config.common.isDevelopment == false)
        #expect(config.common.logLevel == .info)
        #expect(config.http.parserLimits.maxBodyBytes == 1 << 20)
    }

    @Test func invalidValuesNameTheVariable() {
        let cases: [(String, String)] = [("PORT", "70000"), ("PORT", "http"), ("LOG_LEVEL", "loud"),
                                         ("CHAT_ENV", "staging"), ("SCRYPT_LOG_N", "4"), ("ACCESS_TOKEN_TTL_SECONDS", "0")]
        for (name, value) in cases {
            do {
                _ = try configuration(["JWT_SECRET": secret, name: value])
                Issue.record("accepted \(name)=\(value)")
            } catch {
                #expect(error.variable == name)
            }
        }
    }

    @Test func helpListsEveryVariableWithItsDefault() {
        let help = SettingsReader.helpText(program: "Gateway", summary: "test", settings: GatewayConfiguration.settings)
        for name in ["PORT", "DATABASE_URL", "REDIS_URL", "JWT_SECRET", "LOG_LEVEL", "CHAT_ENV", "HTTP_MAX_BODY_BYTES"] {
            #expect(help.contains(name))
        }
        #expect(help.contains("[3000]"))
    }
}

/// `MAX_CONNECTIONS` against the open-file limit (issue 18).
@Suite struct DescriptorBudgetTests {
    @Test func theCapFitsTheDescriptorsLeftAfterTheReserve() {
        #expect(DescriptorBudget.cap(configured: 100_000, descriptors: 110_000) == 100_000)
        #expect(DescriptorBudget.cap(configured: 100_000, descriptors: 65_536) == 64_536)
        #expect(DescriptorBudget.cap(configured: 100_000, descriptors: 1_024) == 24)
        #expect(DescriptorBudget.cap(configured: 100_000, descriptors: 10) == 1)
        #expect(DescriptorBudget.cap(configured: 5_000, descriptors: Int.max) == 5_000)
        #expect(DescriptorBudget.cap(configured: 5_000, descriptors: Int.min) == 1)
    }
}
