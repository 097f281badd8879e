import Testing

@testable import Shared

@Suite struct JSONObjectTests {
    @Test func insertionOrderAndReplacement() {
        var object = JSONObject()
        #expect(object.isEmpty)
        object["b"] = 1
        object["a"] = 2
        object["c"] = 3
        object["a"] = "replaced"
        #expect(object.keys == ["b", "a", "c"])
        #expect(object.count == 3)
        #expect(object["a"] == .string("replaced"))
        #expect(object["missing"] == nil)
        #expect(JSONValue.object(object).jsonString == #"{"b":1,"a":"replaced","c":3}"#)
    }

    @Test func nilRemovesAndNullStores() {
        var object: JSONObject = ["a": 1, "b": 2]
        object["a"] = nil
        #expect(object.keys == ["b"])
        object["n"] = .null
        #expect(object.contains("n"))
        #expect(object["n"] == .null)
        #expect(object.removeValue(forKey: "b") == .int(2))
        #expect(object.removeValue(forKey: "b") == nil)
        #expect(object.keys == ["n"])
    }

    @Test func equalityIgnoresOrder() {
        let first: JSONObject = ["a": 1, "b": [true]]
        let second: JSONObject = ["b": [true], "a": 1]
        #expect(first == second)
        #expect(first != ["a": 1])
        #expect(first != ["a": 1, "b": [false]])
        #expect(first != ["a": 1, "c": [true]])
    }

    @Test func largeObjectsUseTheIndexConsistently() {
        var object = JSONObject()
        for index in 0..<40 {
            object["k\(index)"] = .int(Int64(index))
        }
        #expect(object["k0"] == 0)
        #expect(object["k39"] == 39)
        object["k5"] = "five"
        object.removeValue(forKey: "k0")
        #expect(object.count == 39)
        #expect(object.keys.first == "k1")
        #expect(object["k5"] == "five")
        #expect(object["k39"] == 39)
        #expect(object["k0"] == nil)
        for index in 1..<30 {
            object.removeValue(forKey: "k\(index)")
        }
        #expect(object.keys == (30..<40).map { "k\($0)" })
        #expect(object["k35"] == 35)
        object["new"] = true
        #expect(object.keys.last == "new")
        #expect(object["new"] == true)
    }

    @Test func iterationFollowsInsertionOrder() {
        let object: JSONObject = ["x": 1, "y": 2]
        #expect(object.map { $0.key } == ["x", "y"])
        #expect(object.map { $0.value } == [1, 2])
    }

    // MARK: Field access

    private let body: JSONObject = [
        "username": "alice", "age": 30, "ratio": 0.5, "integral": 7.0, "fraction": 7.5, "huge": 1e30,
        "admin": false, "tags": ["a"], "profile": ["bio": "hi"], "nothing": nil,
    ]

    @Test func requiredAndOptionalValues() throws {
        #expect(try body.requiredString("username") == "alice")
        #expect(try body.optionalString("username") == "alice")
        #expect(try body.optionalString("absent") == nil)
        #expect(try body.optionalString("nothing") == nil)
        #expect(try body.requiredInt64("age") == 30)
        #expect(try body.requiredInt64("integral") == 7)
        #expect(try body.optionalInt64("absent") == nil)
        #expect(try body.requiredDouble("ratio") == 0.5)
        #expect(try body.requiredDouble("age") == 30)
        #expect(try body.requiredBool("admin") == false)
        #expect(try body.optionalBool("nothing") == nil)
        #expect(try body.requiredArray("tags") == ["a"])
        #expect(try body.optionalArray("absent") == nil)
        #expect(try body.requiredObject("profile") == ["bio": "hi"])
        #expect(try body.optionalObject("nothing") == nil)
    }

    @Test func missingFieldsNameTheField() {
        #expect(throws: JSONFieldError(field: "password", problem: .missing)) {
            try body.requiredString("password")
        }
        #expect(throws: JSONFieldError(field: "nothing", problem: .missing)) {
            try body.requiredInt64("nothing")
        }
        #expect(JSONFieldError(field: "username", problem: .missing).message == "field 'username' is required")
    }

    @Test func wrongTypesNameTheExpectedType() {
        #expect(throws: JSONFieldError(field: "age", problem: .wrongType(expected: "a string"))) {
            try body.requiredString("age")
        }
        #expect(throws: JSONFieldError(field: "username", problem: .wrongType(expected: "an integer"))) {
            try body.optionalInt64("username")
        }
        #expect(throws: JSONFieldError(field: "fraction", problem: .wrongType(expected: "an integer"))) {
            try body.requiredInt64("fraction")
        }
        #expect(throws: JSONFieldError(field: "huge", problem: .wrongType(expected: "an integer"))) {
            try body.requiredInt64("huge")
        }
        #expect(throws: JSONFieldError(field: "tags", problem: .wrongType(expected: "a boolean"))) {
            try body.requiredBool("tags")
        }
        #expect(throws: JSONFieldError(field: "profile", problem: .wrongType(expected: "an array"))) {
            try body.requiredArray("profile")
        }
        #expect(throws: JSONFieldError(field: "tags", problem: .wrongType(expected: "an object"))) {
            try body.optionalObject("tags")
        }
        #expect(throws: JSONFieldError(field: "admin", problem: .wrongType(expected: "a number"))) {
            try body.requiredDouble("admin")
        }
        #expect(
            JSONFieldError(field: "username", problem: .wrongType(expected: "a string")).message
                == "field 'username' must be a string")
        #expect(
            JSONFieldError(field: "content", problem: .invalid("must not be empty")).message
                == "field 'content' must not be empty")
    }

    @Test func valueAccessors() {
        let value: JSONValue = ["n": 1e3, "s": "x"]
        #expect(value["n"]?.int64Value == 1000)
        #expect(value["s"]?.int64Value == nil)
        #expect(value["s"]?.stringValue == "x")
        #expect(value[0] == nil)
        #expect(JSONValue.array([1])[1] == nil)
        #expect(JSONValue.null.isNull)
        #expect(JSONValue.int(3).doubleValue == 3)
    }
}
