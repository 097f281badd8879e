import Testing

@testable import Shared

@Suite struct JSONSerializerTests {
    @Test func scalars() {
        #expect(JSONValue.null.jsonString == "null")
        #expect(JSONValue.bool(true).jsonString == "true")
        #expect(JSONValue.bool(false).jsonString == "false")
        #expect(JSONValue.int(0).jsonString == "0")
        #expect(JSONValue.int(-42).jsonString == "-42")
        #expect(JSONValue.int(.max).jsonString == "9223372036854775807")
        #expect(JSONValue.int(.min).jsonString == "-9223372036854775808")
        #expect(JSONValue.int(1_000_000).jsonString == "1000000")
    }

    @Test func doublesUseTheShortestForm() {
        #expect(JSONValue.double(1.5).jsonString == "1.5")
        #expect(JSONValue.double(0.1).jsonString == "0.1")
        #expect(JSONValue.double(100).jsonString == "100.0")
        #expect(JSONValue.double(-0.0).jsonString == "-0.0")
        #expect(JSONValue.double(1e20).jsonString == "1e+20")
        #expect(JSONValue.double(.leastNonzeroMagnitude).jsonString == "5e-324")
        #expect(JSONValue.double(.nan).jsonString == "null")
        #expect(JSONValue.double(.infinity).jsonString == "null")
        #expect(JSONValue.double(-.infinity).jsonString == "null")
    }

    @Test func stringEscaping() {
        let value = JSONValue.string("q\"b\\s/n\nr\rt\tb\u{08}f\u{0C}z\u{0}o\u{1F}d\u{7F}é😀\u{2028}")
        #expect(value.jsonString == #""q\"b\\s/n\nr\rt\tb\bf\fz\u0000o\u001fd"# + "\u{7F}é😀\u{2028}\"")
    }

    @Test func containersAreCompactAndOrdered() {
        let value: JSONValue = ["z": 1, "a": [true, nil, "x"], "m": ["k": 2.5], "e": [], "o": [:]]
        #expect(value.jsonString == #"{"z":1,"a":[true,null,"x"],"m":{"k":2.5},"e":[],"o":{}}"#)
    }

    @Test func keysAreEscapedToo() {
        let value: JSONValue = ["a\"b\n": 1]
        #expect(value.jsonString == #"{"a\"b\n":1}"#)
    }

    @Test func writeIntoAppends() {
        var output = Array("prefix:".utf8)
        JSONValue.array([1, 2]).write(into: &output)
        #expect(String(decoding: output, as: UTF8.self) == "prefix:[1,2]")
    }

    @Test func roundTrips() throws {
        let values: [JSONValue] = [
            nil, true, 0, -1, .int(.max), .int(.min), 3.25, -1e-300, 1.7976931348623157e308, 0.1, 1e21,
            "", "plain", "tab\tquote\"backslash\\ctrl\u{1}\u{0}", "üñí©ødé 😀 \u{10FFFF}",
            [], [:], [[[]]], ["a": ["b": ["c": [1, "2", 3.5, nil, false]]]],
            ["dup": 1, "other": [1, 2, 3], "nested": ["x": "y"]],
        ]
        for value in values {
            let bytes = value.serialized()
            #expect(try JSONParser.parse(bytes) == value, "round trip of \(value.jsonString)")
            #expect(try JSONParser.parse(bytes).serialized() == bytes)
        }
    }

    @Test func integralDoublesStayDoubles() throws {
        #expect(try JSONParser.parse(JSONValue.double(3).serialized()) == .double(3))
    }
}
