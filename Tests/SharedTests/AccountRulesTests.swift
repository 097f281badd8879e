import Testing
@testable import Shared

@Suite struct AccountRulesTests {
    @Test(arguments: ["abc", "john_doe", "J.Doe-99", String(repeating: "a", count: 32)])
    func acceptsValidUsernames(_ name: String) throws {
        #expect(try AccountRules.username(name) == name)
    }

    @Test(arguments: ["ab", String(repeating: "a", count: 33), "john doe", "jöhn", "a/b", "", "x@y", "deleted-12", "Deleted-x"])
    func rejectsInvalidUsernamesNamingTheField(_ name: String) {
        do {
            _ = try AccountRules.username(name)
            Issue.record("accepted \(name)")
        } catch {
            #expect(error.code.name == "validation_failed")
            #expect(error.message.contains("'username'"))
        }
    }

    @Test func emailIsTrimmedAndLowerCased() throws {
        #expect(try AccountRules.email("  John.Doe@Example.COM ") == "john.doe@example.com")
    }

    @Test(arguments: ["plain", "a@b", "@example.com", "a@.com", "a@example.", "a b@example.com", "a@exa mple.com",
                      "a..b@example.com", "a@-example.com", "a@example.123"])
    func rejectsImplausibleEmails(_ email: String) {
        #expect(throws: APIError.self) { try AccountRules.email(email) }
    }

    @Test func passwordLengthCountsCharacters() throws {
        try AccountRules.password("12345678")
        try AccountRules.password(String(repeating: "é", count: 128))
        #expect(throws: APIError.self) { try AccountRules.password("1234567") }
        #expect(throws: APIError.self) { try AccountRules.password(String(repeating: "x", count: 129)) }
    }

    @Test func displayNameDefaultsToUsernameAndIsBounded() throws {
        #expect(try AccountRules.displayName(nil, username: "jdoe") == "jdoe")
        #expect(try AccountRules.displayName("  Jane  ", username: "jdoe") == "Jane")
        #expect(throws: APIError.self) { try AccountRules.displayName("   ", username: "jdoe") }
        #expect(throws: APIError.self) { try AccountRules.displayName("a\u{7}b", username: "jdoe") }
    }
}
