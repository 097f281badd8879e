/// A request-body field that is missing, of the wrong type, or otherwise unacceptable.
///
/// `message` names the field so a client can fix its request: "field 'username' is required",
/// "field 'username' must be a string".
package struct JSONFieldError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong with the field.
    package enum Problem: Sendable, Equatable {
        /// Absent, or `null` where a value is required.
        case missing
        /// Present with another JSON type; `expected` reads like "a string".
        case wrongType(expected: String)
        /// Right type, unacceptable value; the text completes "field 'x' ...", e.g. "must not be empty".
        case invalid(String)
    }

    /// The field's name as the client sent it.
    package let field: String
    /// What is wrong with it.
    package let problem: Problem

    /// Creates an error for `field`.
    package init(field: String, problem: Problem) {
        self.field = field
        self.problem = problem
    }

    /// A sentence naming the field and the problem.
    package var message: String {
        switch problem {
        case .missing: "field '\(field)' is required"
        case .wrongType(let expected): "field '\(field)' must be \(expected)"
        case .invalid(let requirement): "field '\(field)' \(requirement)"
        }
    }

    /// Same as `message`.
    package var description: String { message }
}

/// Typed access to members of a request body. `required*` treat `null` like absence ("is required");
/// `optional*` return nil for both. Integers accept a JSON number with an integral value (`5`, `5.0`,
/// `5e0`) inside `Int64`'s range.
extension JSONObject {
    /// The string `field`; throws when absent, null or not a string.
    package func requiredString(_ field: String) throws(JSONFieldError) -> String {
        try required(field, expected: "a string") { $0.stringValue }
    }

    /// The string `field`, or nil when absent or null; throws when another type.
    package func optionalString(_ field: String) throws(JSONFieldError) -> String? {
        try optional(field, expected: "a string") { $0.stringValue }
    }

    /// The integer `field`; throws when absent, null or not an integral number.
    package func requiredInt64(_ field: String) throws(JSONFieldError) -> Int64 {
        try required(field, expected: "an integer") { $0.int64Value }
    }

    /// The integer `field`, or nil when absent or null; throws when not an integral number.
    package func optionalInt64(_ field: String) throws(JSONFieldError) -> Int64? {
        try optional(field, expected: "an integer") { $0.int64Value }
    }

    /// The number `field` as a `Double`; throws when absent, null or not a number.
    package func requiredDouble(_ field: String) throws(JSONFieldError) -> Double {
        try required(field, expected: "a number") { $0.doubleValue }
    }

    /// The number `field`, or nil when absent or null; throws when not a number.
    package func optionalDouble(_ field: String) throws(JSONFieldError) -> Double? {
        try optional(field, expected: "a number") { $0.doubleValue }
    }

    /// The boolean `field`; throws when absent, null or not a boolean.
    package func requiredBool(_ field: String) throws(JSONFieldError) -> Bool {
        try required(field, expected: "a boolean") { $0.boolValue }
    }

    /// The boolean `field`, or nil when absent or null; throws when not a boolean.
    package func optionalBool(_ field: String) throws(JSONFieldError) -> Bool? {
        try optional(field, expected: "a boolean") { $0.boolValue }
    }

    /// The array `field`; throws when absent, null or not an array.
    package func requiredArray(_ field: String) throws(JSONFieldError) -> [JSONValue] {
        try required(field, expected: "an array") { $0.arrayValue }
    }

    /// The array `field`, or nil when absent or null; throws when not an array.
    package func optionalArray(_ field: String) throws(JSONFieldError) -> [JSONValue]? {
        try optional(field, expected: "an array") { $0.arrayValue }
    }

    /// The object `field`; throws when absent, null or not an object.
    package func requiredObject(_ field: String) throws(JSONFieldError) -> JSONObject {
        try required(field, expected: "an object") { $0.objectValue }
    }

    /// The object `field`, or nil when absent or null; throws when not an object.
    package func optionalObject(_ field: String) throws(JSONFieldError) -> JSONObject? {
        try optional(field, expected: "an object") { $0.objectValue }
    }

    private func required<T>(
        _ field: String,
        expected: String,
        _ extract: (JSONValue) -> T?
    ) throws(JSONFieldError) -> T {
        guard let value = try optional(field, expected: expected, extract) else {
            throw JSONFieldError(field: field, problem: .missing)
        }
        return value
    }

    private func optional<T>(
        _ field: String,
        expected: String,
        _ extract: (JSONValue) -> T?
    ) throws(JSONFieldError) -> T? {
        guard let value = self[field], !value.isNull else { return nil }
        guard let extracted = extract(value) else {
            throw JSONFieldError(field: field, problem: .wrongType(expected: expected))
        }
        return extracted
    }
}
