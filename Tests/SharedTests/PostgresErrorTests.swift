import Testing
@testable import Shared

@Suite struct PostgresErrorTests {
    @Test func uniqueViolationIsRecognisedWithItsConstraint() {
        let error = PostgresError.server(PostgresServerError(
            sqlState: "23505", message: "duplicate key value violates unique constraint \"users_username_key\"",
            detail: "Key (username)=(alice) already exists.", constraint: "users_username_key", table: "users"))
        #expect(error.isUniqueViolation)
        #expect(error.constraint == "users_username_key")
        #expect(error.sqlState == "23505")
        #expect(error.code == "unique_violation")
        #expect(!error.isTransient)
    }

    @Test func codesAndTransience() {
        #expect(PostgresError.unavailable("x").code == "database_unavailable")
        #expect(PostgresError.unavailable("x").isTransient)
        #expect(PostgresError.connectionLost("x").isTransient)
        #expect(PostgresError.timeout.isTransient)
        #expect(PostgresError.poolExhausted.isTransient)
        #expect(!PostgresError.decoding(column: "a", reason: "b").isTransient)
        #expect(!PostgresError.timeout.isUniqueViolation)
        #expect(PostgresError.server(PostgresServerError(sqlState: "40001", message: "m")).isTransient)
        #expect(PostgresError.unavailable("refused").description.contains("refused"))
    }
}
