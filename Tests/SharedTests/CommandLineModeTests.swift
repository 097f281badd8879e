import Testing
@testable import Shared

@Suite struct CommandLineModeTests {
    @Test func parsesFlags() {
        #expect(CommandLineMode(arguments: ["x"]) == .run)
        #expect(CommandLineMode(arguments: ["x", "--help"]) == .help)
        #expect(CommandLineMode(arguments: ["x", "--migrate-only", "-h"]) == .help)
        #expect(CommandLineMode(arguments: ["x", "--migrate-only"]) == .migrateOnly)
        #expect(CommandLineMode(arguments: ["x", "--bogus"]) == .invalid("--bogus"))
    }
}
