/// A statement parameter. Always sent apart from the SQL text (`$1`, `$2`, ...), never spliced into it,
/// so no value can change the statement. `nil` (as `PostgresValue?`) is SQL `NULL`.
///
/// Values travel in PostgreSQL's text format. Non-string kinds carry their type OID so the server
/// does not have to guess (`$1 + 1` with a large `int64` stays `bigint`); strings are sent untyped
/// so they convert to whatever the context needs (`text`, `timestamptz`, `uuid`, `jsonb`, enums).
package enum PostgresValue: Sendable, Hashable {
    case string(String)
    case int64(Int64)
    case double(Double)
    case bool(Bool)
    /// Raw bytes for a `bytea` column (sent as `\x` hex text).
    case bytes([UInt8])

    /// An `Int` as a `bigint` parameter.
    package static func int(_ value: Int) -> PostgresValue { .int64(Int64(value)) }

    /// The parameter's type OID for `PQsendQueryParams`; 0 lets the server infer it.
    package var typeOID: UInt32 {
        switch self {
        case .string: return 0
        case .int64: return 20  // int8
        case .double: return 701  // float8
        case .bool: return 16  // bool
        case .bytes: return 17  // bytea
        }
    }

    /// The value in PostgreSQL's text input format.
    package var textEncoding: String {
        switch self {
        case .string(let value):
            return value
        case .int64(let value):
            return String(value)
        case .double(let value):
            // Swift prints "inf"/"nan"; spell them the way float8in documents them.
            if value.isNaN { return "NaN" }
            if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
            return String(value)  // shortest text that round-trips
        case .bool(let value):
            return value ? "t" : "f"
        case .bytes(let bytes):
            return PostgresBytea.encodeHex(bytes)
        }
    }

    /// Why this value cannot be sent, if it cannot: PostgreSQL text cannot hold NUL, and libpq takes
    /// C strings, so a NUL would silently cut the value short.
    package var encodingProblem: String? {
        if case .string(let value) = self, containsNUL(value) {
            return "text contains a NUL character (U+0000), which PostgreSQL cannot store"
        }
        return nil
    }
}

extension PostgresValue: ExpressibleByStringLiteral {
    package init(stringLiteral value: String) { self = .string(value) }
}

extension PostgresValue: ExpressibleByIntegerLiteral {
    package init(integerLiteral value: Int64) { self = .int64(value) }
}

extension PostgresValue: ExpressibleByFloatLiteral {
    package init(floatLiteral value: Double) { self = .double(value) }
}

extension PostgresValue: ExpressibleByBooleanLiteral {
    package init(booleanLiteral value: Bool) { self = .bool(value) }
}

/// `bytea` in its text form, `\x` followed by two hex digits per byte (`bytea_output = hex`, the default).
package enum PostgresBytea {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// `\x` + lowercase hex.
    package static func encodeHex(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        out.reserveCapacity(2 + bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes `\x...` hex text; `nil` if it is not valid hex bytea.
    package static func decodeHex(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"),
              utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func nibble(_ char: UInt8) -> UInt8? {
        switch char {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return char - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return char - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return char - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
