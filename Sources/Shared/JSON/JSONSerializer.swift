/// Compact JSON output: no whitespace, object members in insertion order.
///
/// Strings escape `"`, `\` and every control character (`\n` `\r` `\t` `\b` `\f`, others as
/// `\u00XX`); everything else, including non-ASCII text, is written as UTF-8. Integers are written
/// plainly, doubles in Swift's shortest round-tripping form, and non-finite doubles as `null`
/// (JSON has no NaN or infinity).
extension JSONValue {
    /// The compact UTF-8 encoding of this value.
    package func serialized() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(128)
        write(into: &output)
        return output
    }

    /// The compact encoding as a `String`.
    package var jsonString: String {
        String(decoding: serialized(), as: UTF8.self)
    }

    /// Appends the compact encoding to `output` (lets a response writer avoid an extra copy).
    package func write(into output: inout [UInt8]) {
        switch self {
        case .null:
            output.append(contentsOf: "null".utf8)
        case .bool(let value):
            output.append(contentsOf: value ? "true".utf8 : "false".utf8)
        case .int(let value):
            JSONWriter.writeInteger(value, into: &output)
        case .double(let value):
            if value.isFinite {
                output.append(contentsOf: value.description.utf8)
            } else {
                output.append(contentsOf: "null".utf8)
            }
        case .string(let value):
            JSONWriter.writeString(value, into: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 {
                    output.append(UInt8(ascii: ","))
                }
                element.write(into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            output.append(UInt8(ascii: "{"))
            for (position, member) in object.enumerated() {
                if position > 0 {
                    output.append(UInt8(ascii: ","))
                }
                JSONWriter.writeString(member.key, into: &output)
                output.append(UInt8(ascii: ":"))
                member.value.write(into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }
}

/// Encoding of the scalar pieces, shared by the serializer and anyone streaming JSON by hand.
package enum JSONWriter {
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `text` as a quoted, escaped JSON string.
    package static func writeString(_ text: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""):
                output.append(UInt8(ascii: "\\"))
                output.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"):
                output.append(UInt8(ascii: "\\"))
                output.append(UInt8(ascii: "\\"))
            case 0x0A:
                output.append(UInt8(ascii: "\\"))
                output.append(UInt8(ascii: "n"))
            case 0x0D:
                output.append(UInt8(ascii: "\\"))
                output.append(UInt8(ascii: "r"))
            case 0x09:
                output.append(UInt8(ascii: "\\"))
                output.append(UInt8(ascii: "t"))
            case 0x08:
                output.append(UInt8(ascii: "\\"))
                output.append(UInt8(ascii: "b"))
            case 0x0C:
                output.append(UInt8(ascii: "\\"))
                output.append(UInt8(ascii: "f"))
            case 0x00..<0x20:
                output.append(contentsOf: "\\u00".utf8)
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 0x0F)])
            default:
                output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    /// Appends `value` in decimal without allocating.
    package static func writeInteger(_ value: Int64, into output: inout [UInt8]) {
        if value < 0 {
            output.append(UInt8(ascii: "-"))
        }
        var magnitude = value.magnitude
        // Most significant digit first: find its power of ten (at most 10^18 for Int64).
        var divisor: UInt64 = 1
        while magnitude / divisor >= 10 {
            divisor *= 10
        }
        while divisor > 0 {
            output.append(UInt8(ascii: "0") + UInt8(magnitude / divisor))
            magnitude %= divisor
            divisor /= 10
        }
    }
}
