import Testing
@testable import Shared

@Suite struct PostgresArrayLiteralTests {
    @Test func integers() {
        #expect(PostgresArrayLiteral.integers([Int64]()) == "{}")
        #expect(PostgresArrayLiteral.integers([1, -2, Int64.max]) == "{1,-2,9223372036854775807}")
    }

    @Test func textsAreQuotedAndEscaped() {
        #expect(PostgresArrayLiteral.texts([String]()) == "{}")
        #expect(PostgresArrayLiteral.texts(["a", "b\"c", "d\\e", "", "NULL", "x,y}{", "é 😀"]) == #"{"a","b\"c","d\\e","","NULL","x,y}{","é 😀"}"#)
        #expect(PostgresArrayLiteral.texts(["a", nil]) == #"{"a",NULL}"#)
    }
}
