import Testing
@testable import Shared

@Suite struct PostgresRowsTests {
    private let result = PostgresRows(
        columns: ["id", "name", "active", "score", "data", "note"],
        cells: ["1", "alice", "t", "2.5", "\\x0102", nil,
                "2", "bob", "f", "NaN", "\\x", "hi"],
        affectedRows: 2, commandTag: "SELECT 2")

    @Test func shapeAndRawRows() {
        #expect(result.count == 2)
        #expect(result.columns.count == 6)
        #expect(result.rows[1] == ["2", "bob", "f", "NaN", "\\x", "hi"])
        #expect(result.affectedRows == 2)
        #expect(result.commandTag == "SELECT 2")
        #expect(PostgresRows.empty().isEmpty)
    }

    @Test func typedAccessorsOnRows() throws {
        let decoded = try result.map { row in
            (try row.int64("id"), try row.string("name"), try row.bool("active"), try row.optionalString("note"))
        }
        #expect(decoded.map(\.0) == [1, 2])
        #expect(decoded.map(\.1) == ["alice", "bob"])
        #expect(decoded.map(\.2) == [true, false])
        #expect(decoded.map(\.3) == [nil, "hi"])
        #expect(try result[0].double("score") == 2.5)
        #expect(try result[1].double("score").isNaN)
        #expect(try result[0].bytes("data") == [1, 2])
        #expect(try result[1].bytes("data") == [])
        #expect(try result[0].int("id") == 1)
        #expect(try result[0].isNull("note"))
        #expect(try result[0].optionalInt64("note") == nil)
    }

    @Test func accessorsByColumnAndRow() throws {
        #expect(try result.string("name", 1) == "bob")
        #expect(try result.int64("id") == 1)
        #expect(try result.bool("active", 1) == false)
        #expect(try result.double("score", 0) == 2.5)
        #expect(try result.isNull("note", 0))
        #expect(throws: PostgresError.self) { try result.string("name", 2) }
    }

    @Test func decodingErrorsNameTheColumn() {
        func reason(_ body: () throws -> Void) -> (String, String)? {
            do { try body() } catch let error as PostgresError {
                if case .decoding(let column, let reason) = error { return (column, reason) }
            } catch {}
            return nil
        }
        #expect(reason { _ = try result[0].string("missing") }?.0 == "missing")
        #expect(reason { _ = try result[0].string("note") }?.1 == "is NULL")
        #expect(reason { _ = try result[0].int64("name") }?.0 == "name")
        #expect(reason { _ = try result[0].bool("id") }?.0 == "id")
        #expect(reason { _ = try result[0].double("name") }?.0 == "name")
        #expect(reason { _ = try result[1].bytes("name") }?.0 == "name")
        #expect(reason { _ = try result[0].int64("note") }?.1 == "is NULL")
    }
}
