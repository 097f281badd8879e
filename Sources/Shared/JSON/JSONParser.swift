/// A strict RFC 8259 JSON parser: bytes in, `JSONValue` out, no I/O.
///
/// Rejected: trailing commas, comments, leading zeros, `NaN`/`Infinity`, unescaped control characters
/// in strings, lone UTF-16 surrogates in `\u` escapes, malformed UTF-8 (overlong forms, encoded
/// surrogates, code points above U+10FFFF), a byte-order mark, whitespace other than space, tab, LF
/// and CR, and anything but whitespace after the single top-level value. Numbers written without
/// fraction or exponent that fit `Int64` become `.int`; the rest become `.double`, and numbers too
/// large for a finite `Double` are rejected.
package enum JSONParser {
    /// The nesting limit used when the caller does not pass one.
    package static let defaultMaxDepth = 64
    /// The highest nesting limit honoured: parsing, comparing and freeing values recurse once per
    /// level, so deeper documents would put the thread's stack at risk. Larger requests are clamped.
    package static let depthCeiling = 1024

    /// Parses one JSON document.
    ///
    /// - Parameters:
    ///   - bytes: the UTF-8 document; contiguous storage (`[UInt8]`, `String.UTF8View` of a native
    ///     string, buffer slices) is read in place, anything else is copied once.
    ///   - maxDepth: how deeply arrays and objects may nest (the top-level container is depth 1).
    /// - Throws: `JSONParseError` with the position of the first problem.
    package static func parse(
        _ bytes: some Collection<UInt8>,
        maxDepth: Int = defaultMaxDepth
    ) throws(JSONParseError) -> JSONValue {
        let depth = min(max(maxDepth, 0), depthCeiling)
        let inPlace = bytes.withContiguousStorageIfAvailable { buffer in
            parse(buffer: buffer, maxDepth: depth)
        }
        if let inPlace {
            return try inPlace.get()
        }
        let copy = Array(bytes)
        return try copy.withUnsafeBufferPointer { parse(buffer: $0, maxDepth: depth) }.get()
    }

    /// Parses one JSON document held in a `String`.
    package static func parse(
        _ text: String,
        maxDepth: Int = defaultMaxDepth
    ) throws(JSONParseError) -> JSONValue {
        try parse(text.utf8, maxDepth: maxDepth)
    }

    private static func parse(
        buffer: UnsafeBufferPointer<UInt8>,
        maxDepth: Int
    ) -> Result<JSONValue, JSONParseError> {
        var reader = Reader(bytes: buffer, maxDepth: maxDepth)
        return Result { () throws(JSONParseError) in try reader.parseDocument() }
    }
}

// MARK: - Reader

private enum Byte {
    static let space: UInt8 = 0x20
    static let tab: UInt8 = 0x09
    static let lineFeed: UInt8 = 0x0A
    static let carriageReturn: UInt8 = 0x0D
    static let quote: UInt8 = 0x22  // "
    static let backslash: UInt8 = 0x5C
    static let slash: UInt8 = 0x2F
    static let comma: UInt8 = 0x2C
    static let colon: UInt8 = 0x3A
    static let openBracket: UInt8 = 0x5B  // [
    static let closeBracket: UInt8 = 0x5D  // ]
    static let openBrace: UInt8 = 0x7B  // {
    static let closeBrace: UInt8 = 0x7D  // }
    static let minus: UInt8 = 0x2D
    static let plus: UInt8 = 0x2B
    static let dot: UInt8 = 0x2E
    static let zero: UInt8 = 0x30
    static let nine: UInt8 = 0x39
    static let lowerE: UInt8 = 0x65
    static let upperE: UInt8 = 0x45
}

/// Recursive-descent reader over contiguous bytes; `index` only moves forward.
private struct Reader {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        let value = try parseValue(depth: 0)
        skipWhitespace()
        if index < bytes.count {
            throw error(.trailingData, at: index)
        }
        return value
    }

    // MARK: Values

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        guard index < bytes.count else {
            throw error(.unexpectedEndOfInput(expected: "a value"), at: index)
        }
        switch bytes[index] {
        case Byte.openBrace:
            return .object(try parseObject(depth: depth + 1))
        case Byte.openBracket:
            return .array(try parseArray(depth: depth + 1))
        case Byte.quote:
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case Byte.minus, Byte.zero...Byte.nine:
            return try parseNumber()
        default:
            throw error(.unexpectedCharacter(expected: "a value"), at: index)
        }
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONObject {
        if depth > maxDepth {
            throw error(.depthLimitExceeded(maxDepth), at: index)
        }
        index += 1  // {
        var object = JSONObject()
        skipWhitespace()
        if index < bytes.count, bytes[index] == Byte.closeBrace {
            index += 1
            return object
        }
        while true {
            skipWhitespace()
            try expect(Byte.quote, "'\"' to begin an object key", consume: false)
            let key = try parseString()
            skipWhitespace()
            try expect(Byte.colon, "':' after object key")
            object[key] = try parseValue(depth: depth)
            skipWhitespace()
            guard index < bytes.count else {
                throw error(.unexpectedEndOfInput(expected: "',' or '}' after object member"), at: index)
            }
            switch bytes[index] {
            case Byte.comma:
                index += 1
            case Byte.closeBrace:
                index += 1
                return object
            default:
                throw error(.unexpectedCharacter(expected: "',' or '}' after object member"), at: index)
            }
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> [JSONValue] {
        if depth > maxDepth {
            throw error(.depthLimitExceeded(maxDepth), at: index)
        }
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == Byte.closeBracket {
            index += 1
            return elements
        }
        while true {
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard index < bytes.count else {
                throw error(.unexpectedEndOfInput(expected: "',' or ']' after array element"), at: index)
            }
            switch bytes[index] {
            case Byte.comma:
                index += 1
            case Byte.closeBracket:
                index += 1
                return elements
            default:
                throw error(.unexpectedCharacter(expected: "',' or ']' after array element"), at: index)
            }
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let start = index
        let count = literal.utf8CodeUnitCount
        var matched = 0
        while matched < count {
            guard index < bytes.count else {
                throw error(.unexpectedEndOfInput(expected: "'\(literal)'"), at: index)
            }
            guard bytes[index] == literal.utf8Start[matched] else {
                throw error(.unexpectedCharacter(expected: "'\(literal)'"), at: start)
            }
            index += 1
            matched += 1
        }
    }

    // MARK: Numbers

    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = index
        let negative = bytes[index] == Byte.minus
        if negative {
            index += 1
        }
        // Integer part, accumulated negatively so Int64.min fits.
        guard index < bytes.count, isDigit(bytes[index]) else {
            throw numberError("expected a digit after '-'")
        }
        var accumulator: Int64 = 0
        var overflowed = false
        if bytes[index] == Byte.zero {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) {
                throw error(.invalidNumber("leading zeros are not allowed"), at: start)
            }
        } else {
            while index < bytes.count, isDigit(bytes[index]) {
                if !overflowed {
                    let (times10, overflow1) = accumulator.multipliedReportingOverflow(by: 10)
                    let (next, overflow2) = times10.subtractingReportingOverflow(Int64(bytes[index] - Byte.zero))
                    overflowed = overflow1 || overflow2
                    accumulator = next
                }
                index += 1
            }
        }
        var isInteger = true
        if index < bytes.count, bytes[index] == Byte.dot {
            isInteger = false
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else {
                throw numberError("expected a digit after the decimal point")
            }
            while index < bytes.count, isDigit(bytes[index]) {
                index += 1
            }
        }
        if index < bytes.count, bytes[index] == Byte.lowerE || bytes[index] == Byte.upperE {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == Byte.plus || bytes[index] == Byte.minus {
                index += 1
            }
            guard index < bytes.count, isDigit(bytes[index]) else {
                throw numberError("expected a digit in the exponent")
            }
            while index < bytes.count, isDigit(bytes[index]) {
                index += 1
            }
        }
        if isInteger && !overflowed {
            if negative {
                return .int(accumulator)
            }
            if accumulator != .min {
                return .int(-accumulator)
            }
        }
        // The grammar is checked above, so the standard library's correctly rounded conversion
        // only ever sees a valid decimal literal.
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw error(.numberOutOfRange, at: start)
        }
        return .double(value)
    }

    func numberError(_ detail: String) -> JSONParseError {
        if index >= bytes.count {
            return error(.unexpectedEndOfInput(expected: "a digit"), at: index)
        }
        return error(.invalidNumber(detail), at: index)
    }

    // MARK: Strings

    /// Parses a string starting at its opening quote.
    mutating func parseString() throws(JSONParseError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes, so the bytes are the string.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == Byte.quote {
                let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return text
            }
            if byte == Byte.backslash {
                break
            }
            if byte < 0x20 {
                throw error(.controlCharacterInString, at: index)
            }
            if byte < 0x80 {
                index += 1
            } else {
                try skipUTF8Sequence()
            }
        }
        guard index < bytes.count else {
            throw error(.unexpectedEndOfInput(expected: "'\"' to end the string"), at: index)
        }
        // Slow path: copy what we have, then decode escapes as they come.
        var decoded: [UInt8] = []
        decoded.reserveCapacity(index - start + 16)
        decoded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            if byte == Byte.quote {
                index += 1
                return String(decoding: decoded, as: UTF8.self)
            }
            if byte == Byte.backslash {
                try parseEscape(into: &decoded)
            } else if byte < 0x20 {
                throw error(.controlCharacterInString, at: index)
            } else if byte < 0x80 {
                decoded.append(byte)
                index += 1
            } else {
                let sequenceStart = index
                try skipUTF8Sequence()
                decoded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[sequenceStart..<index]))
            }
        }
        throw error(.unexpectedEndOfInput(expected: "'\"' to end the string"), at: index)
    }

    /// Decodes the escape at `index` (a backslash) and appends its UTF-8 encoding.
    mutating func parseEscape(into decoded: inout [UInt8]) throws(JSONParseError) {
        let escapeStart = index
        index += 1
        guard index < bytes.count else {
            throw error(.unexpectedEndOfInput(expected: "an escape sequence"), at: index)
        }
        let byte = bytes[index]
        index += 1
        switch byte {
        case Byte.quote: decoded.append(Byte.quote)
        case Byte.backslash: decoded.append(Byte.backslash)
        case Byte.slash: decoded.append(Byte.slash)
        case UInt8(ascii: "b"): decoded.append(0x08)
        case UInt8(ascii: "f"): decoded.append(0x0C)
        case UInt8(ascii: "n"): decoded.append(Byte.lineFeed)
        case UInt8(ascii: "r"): decoded.append(Byte.carriageReturn)
        case UInt8(ascii: "t"): decoded.append(Byte.tab)
        case UInt8(ascii: "u"):
            let unit = try parseHex4()
            var scalarValue = UInt32(unit)
            if (0xD800...0xDBFF).contains(unit) {
                // A high surrogate must be followed at once by an escaped low surrogate.
                guard index + 1 < bytes.count, bytes[index] == Byte.backslash, bytes[index + 1] == UInt8(ascii: "u")
                else {
                    throw error(.invalidUnicodeEscape("unpaired high surrogate"), at: escapeStart)
                }
                index += 2
                let low = try parseHex4()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw error(.invalidUnicodeEscape("unpaired high surrogate"), at: escapeStart)
                }
                scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(unit) {
                throw error(.invalidUnicodeEscape("unpaired low surrogate"), at: escapeStart)
            }
            appendUTF8(scalarValue, to: &decoded)
        default:
            throw error(.invalidEscape, at: escapeStart)
        }
    }

    mutating func parseHex4() throws(JSONParseError) -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard index < bytes.count else {
                throw error(.unexpectedEndOfInput(expected: "four hex digits after \\u"), at: index)
            }
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case Byte.zero...Byte.nine: digit = byte - Byte.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error(.invalidUnicodeEscape("expected four hex digits"), at: index)
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    /// Validates the multi-byte UTF-8 sequence at `index` (Unicode Table 3-7) and skips it.
    mutating func skipUTF8Sequence() throws(JSONParseError) {
        let lead = bytes[index]
        let length: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondRange = 0x80...0x9F  // excludes encoded surrogates
        case 0xF0: length = 4; secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondRange = 0x80...0x8F  // nothing above U+10FFFF
        default: throw error(.invalidUTF8, at: index)
        }
        guard index + length <= bytes.count else {
            throw error(.invalidUTF8, at: index)
        }
        guard secondRange.contains(bytes[index + 1]) else {
            throw error(.invalidUTF8, at: index)
        }
        var offset = 2
        while offset < length {
            guard bytes[index + offset] & 0xC0 == 0x80 else {
                throw error(.invalidUTF8, at: index)
            }
            offset += 1
        }
        index += length
    }

    /// Appends a scalar value (never a surrogate, at most U+10FFFF: checked by the caller) as UTF-8.
    func appendUTF8(_ value: UInt32, to decoded: inout [UInt8]) {
        switch value {
        case 0..<0x80:
            decoded.append(UInt8(value))
        case 0x80..<0x800:
            decoded.append(UInt8(0xC0 | (value >> 6)))
            decoded.append(UInt8(0x80 | (value & 0x3F)))
        case 0x800..<0x10000:
            decoded.append(UInt8(0xE0 | (value >> 12)))
            decoded.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
            decoded.append(UInt8(0x80 | (value & 0x3F)))
        default:
            decoded.append(UInt8(0xF0 | (value >> 18)))
            decoded.append(UInt8(0x80 | ((value >> 12) & 0x3F)))
            decoded.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
            decoded.append(UInt8(0x80 | (value & 0x3F)))
        }
    }

    // MARK: Helpers

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case Byte.space, Byte.tab, Byte.lineFeed, Byte.carriageReturn:
                index += 1
            default:
                return
            }
        }
    }

    mutating func expect(_ byte: UInt8, _ expected: String, consume: Bool = true) throws(JSONParseError) {
        guard index < bytes.count else {
            throw error(.unexpectedEndOfInput(expected: expected), at: index)
        }
        guard bytes[index] == byte else {
            throw error(.unexpectedCharacter(expected: expected), at: index)
        }
        if consume {
            index += 1
        }
    }

    func isDigit(_ byte: UInt8) -> Bool {
        byte &- Byte.zero <= 9
    }

    /// Builds an error, computing line and column only now: errors are rare, parsing is not.
    func error(_ kind: JSONParseError.Kind, at offset: Int) -> JSONParseError {
        var line = 1
        var column = 1
        var position = 0
        let end = min(offset, bytes.count)
        while position < end {
            let byte = bytes[position]
            if byte == Byte.lineFeed {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1  // count scalars, not continuation bytes
            }
            position += 1
        }
        return JSONParseError(kind: kind, offset: offset, line: line, column: column)
    }
}
