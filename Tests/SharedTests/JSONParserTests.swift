import Testing

@testable import Shared

@Suite struct JSONParserTests {
    private func parse(_ text: String, maxDepth: Int = JSONParser.defaultMaxDepth) throws(JSONParseError) -> JSONValue {
        try JSONParser.parse(Array(text.utf8), maxDepth: maxDepth)
    }

    private func error(_ text: String, maxDepth: Int = JSONParser.defaultMaxDepth) -> JSONParseError? {
        error(bytes: Array(text.utf8), maxDepth: maxDepth)
    }

    private func error(bytes: [UInt8], maxDepth: Int = JSONParser.defaultMaxDepth) -> JSONParseError? {
        do {
            _ = try JSONParser.parse(bytes, maxDepth: maxDepth)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Accepted documents

    @Test func scalars() throws {
        #expect(try parse("null") == .null)
        #expect(try parse("true") == .bool(true))
        #expect(try parse("false") == .bool(false))
        #expect(try parse("0") == .int(0))
        #expect(try parse("-0") == .int(0))
        #expect(try parse("42") == .int(42))
        #expect(try parse("-17") == .int(-17))
        #expect(try parse("1.5") == .double(1.5))
        #expect(try parse("-0.25") == .double(-0.25))
        #expect(try parse("1e3") == .double(1000))
        #expect(try parse("1E+3") == .double(1000))
        #expect(try parse("25e-1") == .double(2.5))
        #expect(try parse("0.0") == .double(0))
        #expect(try parse(#""hello""#) == .string("hello"))
        #expect(try parse(#""""#) == .string(""))
    }

    @Test func containersKeepOrderAndNesting() throws {
        let value = try parse(#" { "b" : [1, 2.5, "x", null, true, {}], "a": {"nested": []} } "#)
        let expected: JSONValue = [
            "b": [1, 2.5, "x", nil, true, [:]],
            "a": ["nested": []],
        ]
        #expect(value == expected)
        #expect(value.objectValue?.keys == ["b", "a"])
        #expect(value["b"]?[2] == .string("x"))
        #expect(value["a"]?["nested"] == .array([]))
    }

    @Test func whitespaceAroundTokens() throws {
        #expect(try parse(" \t\r\n[ 1 ,\n\t2 ] \r\n") == [1, 2])
        #expect(try parse("\n\"x\"\n") == "x")
    }

    @Test func duplicateKeysKeepTheLastValue() throws {
        let value = try parse(#"{"a": 1, "b": 2, "a": 3}"#)
        #expect(value["a"] == .int(3))
        #expect(value.objectValue?.keys == ["a", "b"])
        #expect(value.objectValue?.count == 2)
    }

    @Test func integersAtTheLimitsOfInt64() throws {
        #expect(try parse("9223372036854775807") == .int(.max))
        #expect(try parse("-9223372036854775808") == .int(.min))
        #expect(try parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(try parse("-9223372036854775809") == .double(-0x1p63))
        #expect(try parse("123456789012345678901234567890") == .double(1.2345678901234568e29))
        #expect(try parse("1.7976931348623157e308") == .double(.greatestFiniteMagnitude))
        #expect(try parse("1e-400") == .double(0))
    }

    @Test func stringEscapes() throws {
        #expect(try parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{08}\u{0C}\n\r\t"))
        #expect(try parse(#""\u0041\u00e9\u00E9\u20AC""#) == .string("Aéé€"))
        #expect(try parse(#""\u0000""#) == .string("\u{0}"))
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parse(#""x\uD834\uDD1Ey""#) == .string("x𝄞y"))
        #expect(try parse(#""\uDBFF\uDFFF""#) == .string("\u{10FFFF}"))
    }

    @Test func rawUTF8InStrings() throws {
        #expect(try parse("\"héllo wörld € 😀 \u{10FFFF}\"") == .string("héllo wörld € 😀 \u{10FFFF}"))
        #expect(try parse("\"é\\n😀\"") == .string("é\n😀"))
        #expect(try parse("{\"ключ\": \"значение\"}")["ключ"] == .string("значение"))
    }

    @Test func acceptsAnyCollectionOfBytes() throws {
        let text = #"{"a": [1, "two"]}"#
        let nonContiguous = Array(text.utf8).lazy.map { $0 }
        #expect(try JSONParser.parse(nonContiguous) == ["a": [1, "two"]])
        #expect(try JSONParser.parse(text) == ["a": [1, "two"]])
        #expect(try JSONParser.parse(Array(text.utf8)[...]) == ["a": [1, "two"]])
    }

    // MARK: Rejections

    @Test(arguments: [
        "", " ", "[1,]", "{\"a\":1,}", "[,1]", "{,}", "[1 2]", "{\"a\" 1}", "{\"a\":}", "{a:1}",
        "{'a':1}", "['a']", "// c\n1", "/* c */ 1", "[1] // c", "01", "-01", "00", "1.", ".5", "-", "+1",
        "1e", "1e+", "1.e3", "NaN", "Infinity", "-Infinity", "nan", "tru", "True", "nul", "nulll",
        "[1", "{\"a\":1", "\"abc", "1 2", "[] []", "{} x", "\u{FEFF}1", "\u{0C}1", "\u{A0}1", "\u{0B}1",
        "[\"a\"\u{2028}]", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\U0041\"", "\"\\'\"", "\"a\u{01}\"",
        "\"a\tb\"", "\"a\nb\"", "1e400", "-1e400", "[1]]", "{\"a\":1}}",
    ])
    func rejects(_ text: String) {
        #expect(error(text) != nil, "accepted \(text.debugDescription)")
    }

    @Test func errorPositionsAndMessages() throws {
        let colon = try #require(error(#"{"username"  1}"#))
        #expect(colon.kind == .unexpectedCharacter(expected: "':' after object key"))
        #expect(colon.line == 1)
        #expect(colon.column == 14)
        #expect(colon.offset == 13)
        #expect(colon.message == "expected ':' after object key at line 1, column 14")

        let trailingComma = try #require(error("[\n  1,\n  2,\n]"))
        #expect(trailingComma.kind == .unexpectedCharacter(expected: "a value"))
        #expect((trailingComma.line, trailingComma.column) == (4, 1))
        #expect(trailingComma.message == "expected a value at line 4, column 1")

        // Columns count scalars, not bytes.
        let afterAccent = try #require(error("[\"é😀\" x]"))
        #expect((afterAccent.line, afterAccent.column) == (1, 7))
        #expect(afterAccent.offset == 10)

        let end = try #require(error("{\"a\":\r\n"))
        #expect(end.kind == .unexpectedEndOfInput(expected: "a value"))
        #expect((end.line, end.column) == (2, 1))
        #expect(end.message == "unexpected end of input, expected a value at line 2, column 1")

        let empty = try #require(error(""))
        #expect((empty.line, empty.column, empty.offset) == (1, 1, 0))

        let trailing = try #require(error("{}  x"))
        #expect(trailing.kind == .trailingData)
        #expect(trailing.column == 5)
    }

    @Test func errorKinds() {
        #expect(error("01")?.kind == .invalidNumber("leading zeros are not allowed"))
        #expect(error("1.x")?.kind == .invalidNumber("expected a digit after the decimal point"))
        #expect(error("1e400")?.kind == .numberOutOfRange)
        #expect(error("\"\\q\"")?.kind == .invalidEscape)
        #expect(error("\"a\u{1F}\"")?.kind == .controlCharacterInString)
        #expect(error("tru")?.kind == .unexpectedEndOfInput(expected: "'true'"))
        #expect(error("trux")?.kind == .unexpectedCharacter(expected: "'true'"))
        #expect(error("[1 2]")?.kind == .unexpectedCharacter(expected: "',' or ']' after array element"))
        #expect(error("{\"a\":1 \"b\":2}")?.kind == .unexpectedCharacter(expected: "',' or '}' after object member"))
        #expect(error("{1:2}")?.kind == .unexpectedCharacter(expected: "'\"' to begin an object key"))
        #expect(error("\"abc")?.kind == .unexpectedEndOfInput(expected: "'\"' to end the string"))
        #expect(error("\"a\\\"")?.kind == .unexpectedEndOfInput(expected: "'\"' to end the string"))
    }

    @Test func loneSurrogatesAreRejected() {
        #expect(error(#""\ud83d""#)?.kind == .invalidUnicodeEscape("unpaired high surrogate"))
        #expect(error(#""\ud83dx""#)?.kind == .invalidUnicodeEscape("unpaired high surrogate"))
        #expect(error(#""\ud83d\u0041""#)?.kind == .invalidUnicodeEscape("unpaired high surrogate"))
        #expect(error(#""\ud83d\ud83d""#)?.kind == .invalidUnicodeEscape("unpaired high surrogate"))
        #expect(error(#""\ude00""#)?.kind == .invalidUnicodeEscape("unpaired low surrogate"))
        #expect(error(#""\ude00\ud83d""#)?.kind == .invalidUnicodeEscape("unpaired low surrogate"))
        #expect(error(#""ab\ud83d\n""#)?.column == 4)
    }

    @Test(arguments: [
        [0x22, 0x80, 0x22],  // lone continuation byte
        [0x22, 0xC0, 0x80, 0x22],  // overlong NUL
        [0x22, 0xC1, 0xBF, 0x22],  // overlong
        [0x22, 0xE0, 0x80, 0xAF, 0x22],  // overlong '/'
        [0x22, 0xED, 0xA0, 0x80, 0x22],  // encoded surrogate U+D800
        [0x22, 0xF0, 0x80, 0x80, 0xAF, 0x22],  // overlong 4-byte
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
        [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22],  // invalid lead
        [0x22, 0xFF, 0x22],
        [0x22, 0xE2, 0x82, 0x22],  // truncated 3-byte sequence
        [0x22, 0xC3],  // truncated at end of input
        [0x22, 0x5C, 0x6E, 0xC3, 0x28, 0x22],  // bad continuation after an escape (slow path)
    ] as [[UInt8]])
    func invalidUTF8IsRejected(_ bytes: [UInt8]) {
        #expect(error(bytes: bytes)?.kind == .invalidUTF8)
    }

    @Test func invalidUTF8OutsideStringsIsAnUnexpectedCharacter() {
        #expect(error(bytes: [0x5B, 0xC3, 0xA9, 0x5D])?.kind == .unexpectedCharacter(expected: "a value"))
    }

    @Test func depthLimit() throws {
        let deepest = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try parse(deepest) }
        let tooDeep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        let failure = try #require(error(tooDeep))
        #expect(failure.kind == .depthLimitExceeded(64))
        #expect(failure.column == 65)
        #expect(failure.message == "arrays and objects nest deeper than 64 levels at line 1, column 65")

        #expect(error(#"{"a":{"b":{"c":1}}}"#, maxDepth: 3) == nil)
        #expect(error(#"{"a":{"b":{"c":[]}}}"#, maxDepth: 3)?.kind == .depthLimitExceeded(3))
        #expect(error("1", maxDepth: 0) == nil)
        #expect(error("[]", maxDepth: 0)?.kind == .depthLimitExceeded(0))
        // Requests above the ceiling are clamped rather than risking the stack.
        let huge = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        #expect(error(huge, maxDepth: 1_000_000)?.kind == .depthLimitExceeded(JSONParser.depthCeiling))
    }

    @Test func manyKeysStayLinear() throws {
        var text = "{"
        for index in 0..<5000 {
            text += "\"k\(index)\":\(index),"
        }
        text += "\"k0\":\"last\"}"
        let object = try #require(try parse(text).objectValue)
        #expect(object.count == 5000)
        #expect(object["k0"] == .string("last"))
        #expect(object["k4999"] == .int(4999))
        #expect(object.keys.first == "k0")
    }
}
