import Testing
@testable import Shared
@testable import Postgres

/// Statements built by interpolation: each `\(value)` becomes the next `$n`, in order, and its value
/// the parameter at that position.
@Suite struct PostgresQueryTests {
    @Test func literalWithoutInterpolationHasNoParameters() {
        let query: PostgresQuery = "SELECT 1"
        #expect(query.sql == "SELECT 1")
        #expect(query.parameters.isEmpty)
    }

    @Test func interpolationsBecomeNumberedParametersInOrder() {
        let name = "ann"
        let id: Int64 = 42
        let limit = 10
        let query: PostgresQuery = "SELECT * FROM users WHERE username = \(name) AND id <> \(id) LIMIT \(limit)"
        #expect(query.sql == "SELECT * FROM users WHERE username = $1 AND id <> $2 LIMIT $3")
        #expect(query.parameters == [.string("ann"), .int64(42), .int64(10)])
    }

    @Test func nilBindsNull() {
        let cursor: String? = nil
        let value: PostgresValue? = nil
        let query: PostgresQuery = "SELECT \(cursor)::text, \(value), \(String?.some("x"))"
        #expect(query.sql == "SELECT $1::text, $2, $3")
        #expect(query.parameters == [nil, nil, .string("x")])
    }

    @Test func theSameValueTwiceIsTwoParameters() {
        let cursor: String? = "b"
        let query: PostgresQuery = "(\(cursor)::text IS NULL OR name > \(cursor))"
        #expect(query.sql == "($1::text IS NULL OR name > $2)")
        #expect(query.parameters == [.string("b"), .string("b")])
    }

    @Test func unescapedTextIsNotAParameter() {
        let order = "DESC"
        let query: PostgresQuery = "SELECT \(unescaped: "id, name") FROM t ORDER BY id \(unescaped: order) LIMIT \(5)"
        #expect(query.sql == "SELECT id, name FROM t ORDER BY id DESC LIMIT $1")
        #expect(query.parameters == [.int64(5)])
    }

    @Test func arraysBindOneLiteralWithTheirCast() {
        let names = ["a", #"b"c"#]
        let notes: [String?] = ["x", nil]
        let query: PostgresQuery = """
            SELECT * FROM unnest(\(integers: [Int64(1), 2]), \(texts: names), \(texts: notes)) AS t(id, name, note)
            """
        #expect(query.sql == "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]) AS t(id, name, note)")
        #expect(query.parameters == [.string("{1,2}"), .string(#"{"a","b\"c"}"#), .string(#"{"x",NULL}"#)])
    }

    @Test func placeholdersPastNineKeepCounting() {
        var interpolation = PostgresQuery.StringInterpolation(literalCapacity: 0, interpolationCount: 12)
        for value in 1...12 {
            interpolation.appendLiteral(value == 1 ? "" : ",")
            interpolation.appendInterpolation(Int64(value))
        }
        let query = PostgresQuery(stringInterpolation: interpolation)
        #expect(query.sql == "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12")
        #expect(query.parameters == (1...12).map { .int64(Int64($0)) })
    }

    @Test func explicitStatementKeepsItsParameters() {
        let query = PostgresQuery(unsafeSQL: "SELECT $2, $1", parameters: [.int64(1), .bool(true)])
        #expect(query.sql == "SELECT $2, $1")
        #expect(query.parameters == [.int64(1), .bool(true)])
    }
}
