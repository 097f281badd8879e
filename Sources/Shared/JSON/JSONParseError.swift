/// Why and where `JSONParser` rejected its input.
///
/// `line` and `column` are 1-based; the column counts Unicode scalars from the start of the line,
/// so it matches what an editor shows for the client's document. `offset` is the byte offset.
package struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong.
    package enum Kind: Sendable, Equatable {
        /// The input ended where `expected` should have been.
        case unexpectedEndOfInput(expected: String)
        /// Something other than `expected` was found.
        case unexpectedCharacter(expected: String)
        /// A number breaks the JSON grammar (leading zero, missing digits, ...).
        case invalidNumber(String)
        /// A number too large to be represented as a finite `Double`.
        case numberOutOfRange
        /// A backslash escape that JSON does not define.
        case invalidEscape
        /// A `\u` escape that is not four hex digits, or an unpaired surrogate.
        case invalidUnicodeEscape(String)
        /// An unescaped control character (U+0000 to U+001F) inside a string.
        case controlCharacterInString
        /// Bytes that are not well-formed UTF-8.
        case invalidUTF8
        /// Arrays and objects nest deeper than the configured limit.
        case depthLimitExceeded(Int)
        /// More than whitespace follows the top-level value.
        case trailingData
    }

    /// What was wrong.
    package let kind: Kind
    /// Byte offset of the problem in the input.
    package let offset: Int
    /// 1-based line of the problem.
    package let line: Int
    /// 1-based column (in Unicode scalars) of the problem.
    package let column: Int

    /// Creates an error; `JSONParser` computes the position.
    package init(kind: Kind, offset: Int, line: Int, column: Int) {
        self.kind = kind
        self.offset = offset
        self.line = line
        self.column = column
    }

    /// The problem without its position, e.g. "expected ':' after object key".
    package var reason: String {
        switch kind {
        case .unexpectedEndOfInput(let expected): "unexpected end of input, expected \(expected)"
        case .unexpectedCharacter(let expected): "expected \(expected)"
        case .invalidNumber(let detail): "invalid number: \(detail)"
        case .numberOutOfRange: "number is too large"
        case .invalidEscape: "invalid escape sequence in string"
        case .invalidUnicodeEscape(let detail): "invalid \\u escape: \(detail)"
        case .controlCharacterInString: "control characters must be escaped in strings"
        case .invalidUTF8: "invalid UTF-8"
        case .depthLimitExceeded(let limit): "arrays and objects nest deeper than \(limit) levels"
        case .trailingData: "unexpected data after the top-level value"
        }
    }

    /// The full message, e.g. "expected ':' after object key at line 1, column 14".
    package var message: String {
        "\(reason) at line \(line), column \(column)"
    }

    /// Same as `message`.
    package var description: String { message }
}
