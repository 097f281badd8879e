import Testing
@testable import Shared

@Suite struct PostgresMigratorTests {
    private func migration(_ version: Int) -> PostgresMigration {
        PostgresMigration(version: version, name: "m\(version)", sql: "SELECT 1")
    }

    @Test func acceptsStrictlyIncreasingVersions() throws {
        try PostgresMigrator.validate([])
        try PostgresMigrator.validate([migration(1), migration(2), migration(10)])
    }

    @Test func rejectsDuplicatesDisorderAndNonPositiveVersions() {
        #expect(throws: PostgresError.self) { try PostgresMigrator.validate([migration(1), migration(1)]) }
        #expect(throws: PostgresError.self) { try PostgresMigrator.validate([migration(2), migration(1)]) }
        #expect(throws: PostgresError.self) { try PostgresMigrator.validate([migration(0)]) }
        #expect(throws: PostgresError.self) { try PostgresMigrator.validate([migration(Int(Int32.max) + 1)]) }
    }
}
