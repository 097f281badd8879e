import Testing
@testable import Shared

@Suite struct OriginPolicyTests {
    @Test func listedOriginsOnlyAndRequestsWithoutOrigin() throws {
        let policy = try OriginPolicy(list: "https://app.example.com, http://localhost:5173")
        #expect(policy.allows("https://app.example.com"))
        #expect(policy.allows("HTTPS://APP.EXAMPLE.COM:443"))
        #expect(policy.allows("http://localhost:5173"))
        #expect(policy.allows(nil))
        #expect(!policy.allows("https://evil.example.com"))
        #expect(!policy.allows("http://app.example.com"))
        #expect(!policy.allows("null"))
        #expect(!policy.allowsAny)
    }

    @Test func sameOriginIsAlwaysAllowed() throws {
        let policy = try OriginPolicy(list: "https://app.example.com")
        #expect(policy.allows("http://127.0.0.1:3000", host: "127.0.0.1:3000"))
        #expect(policy.allows("https://chat.example.com", host: "chat.example.com"))
        #expect(policy.allows("https://chat.example.com", host: "chat.example.com:443"))
        #expect(!policy.allows("http://127.0.0.1:3001", host: "127.0.0.1:3000"))
        #expect(!policy.allows("https://evil.example.com", host: "chat.example.com"))
        #expect(!policy.allows("http://chat.example.com", host: "chat.example.com:443"))
    }

    @Test func starAllowsAny() throws {
        let policy = try OriginPolicy(list: "*")
        #expect(policy.allowsAny)
        #expect(policy.allows("https://anything.test"))
    }

    @Test func emptyListAllowsOnlyNonBrowserClients() throws {
        let policy = try OriginPolicy(list: "")
        #expect(policy.allows(nil))
        #expect(!policy.allows("https://app.example.com"))
    }

    @Test func rejectsEntriesThatAreNotOrigins() {
        #expect(throws: ConfigurationError.self) { try OriginPolicy(list: "app.example.com") }
        #expect(throws: ConfigurationError.self) { try OriginPolicy(list: "https://app.example.com/path") }
    }
}
