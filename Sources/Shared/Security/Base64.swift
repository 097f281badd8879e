/// Standard Base64 (RFC 4648 section 4, alphabet `A-Z a-z 0-9 + /`).
///
/// Decoding is strict: no whitespace, no characters outside the alphabet, and the unused low bits of
/// the last character must be zero, so every byte string has exactly one accepted encoding.
package enum Base64 {
    /// Encodes with `=` padding to a multiple of four characters.
    package static func encode(_ bytes: some Collection<UInt8>) -> String {
        Base64Codec.standard.encode(bytes, padded: true)
    }

    /// Encodes without padding (the "B64" of PHC password-hash strings).
    package static func encodeUnpadded(_ bytes: some Collection<UInt8>) -> String {
        Base64Codec.standard.encode(bytes, padded: false)
    }

    /// Decodes padded input (length a multiple of four); nil when malformed.
    package static func decode(_ text: some StringProtocol) -> [UInt8]? {
        Base64Codec.standard.decode(Array(text.utf8), padding: .required)
    }

    /// Decodes input without padding; nil when malformed or padded.
    package static func decodeUnpadded(_ text: some StringProtocol) -> [UInt8]? {
        Base64Codec.standard.decode(Array(text.utf8), padding: .forbidden)
    }
}

/// URL-safe Base64 (RFC 4648 section 5, alphabet `A-Z a-z 0-9 - _`) without padding, as JWTs use it.
///
/// Decoding is strict: padding, characters outside the alphabet (including `+` and `/`), an impossible
/// length and non-zero unused trailing bits are all rejected, so a token has one accepted spelling.
package enum Base64URL {
    /// Encodes without padding.
    package static func encode(_ bytes: some Collection<UInt8>) -> String {
        Base64Codec.url.encode(bytes, padded: false)
    }

    /// Decodes unpadded input; nil when malformed.
    package static func decode(_ text: some StringProtocol) -> [UInt8]? {
        Base64Codec.url.decode(Array(text.utf8), padding: .forbidden)
    }

    /// Decodes unpadded input given as UTF-8 bytes (avoids a `String` for slices of a token).
    package static func decode(bytes: some Collection<UInt8>) -> [UInt8]? {
        Base64Codec.url.decode(Array(bytes), padding: .forbidden)
    }
}

/// The shared encoder/decoder, parameterised by alphabet.
private struct Base64Codec: Sendable {
    enum Padding {
        case required
        case forbidden
    }

    static let standard = Base64Codec(alphabet: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    static let url = Base64Codec(alphabet: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

    private static let invalid: UInt8 = 0xFF
    private let alphabet: [UInt8]
    /// Byte -> 6-bit value, `invalid` for bytes outside the alphabet.
    private let values: [UInt8]

    private init(alphabet: String) {
        self.alphabet = Array(alphabet.utf8)
        var values = [UInt8](repeating: Self.invalid, count: 256)
        for (value, byte) in self.alphabet.enumerated() {
            values[Int(byte)] = UInt8(value)
        }
        self.values = values
    }

    func encode(_ input: some Collection<UInt8>, padded: Bool) -> String {
        let bytes = Array(input)
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let group = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            output.append(alphabet[Int(group >> 18 & 0x3F)])
            output.append(alphabet[Int(group >> 12 & 0x3F)])
            output.append(alphabet[Int(group >> 6 & 0x3F)])
            output.append(alphabet[Int(group & 0x3F)])
            index += 3
        }
        switch bytes.count - index {
        case 1:
            let group = UInt32(bytes[index]) << 16
            output.append(alphabet[Int(group >> 18 & 0x3F)])
            output.append(alphabet[Int(group >> 12 & 0x3F)])
            if padded {
                output.append(contentsOf: "==".utf8)
            }
        case 2:
            let group = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            output.append(alphabet[Int(group >> 18 & 0x3F)])
            output.append(alphabet[Int(group >> 12 & 0x3F)])
            output.append(alphabet[Int(group >> 6 & 0x3F)])
            if padded {
                output.append(UInt8(ascii: "="))
            }
        default:
            break
        }
        return String(decoding: output, as: UTF8.self)
    }

    func decode(_ input: [UInt8], padding: Padding) -> [UInt8]? {
        var characters = input[...]
        switch padding {
        case .required:
            guard input.count % 4 == 0 else { return nil }
            // At most two '=' and only at the end.
            for _ in 0..<2 where characters.last == UInt8(ascii: "=") {
                characters = characters.dropLast()
            }
        case .forbidden:
            break
        }
        // 4n+1 characters cannot come from any byte string.
        guard characters.count % 4 != 1 else { return nil }

        var output: [UInt8] = []
        output.reserveCapacity(characters.count * 3 / 4)
        var group: UInt32 = 0
        var groupLength = 0
        for character in characters {
            let value = values[Int(character)]
            guard value != Self.invalid else { return nil }
            group = group << 6 | UInt32(value)
            groupLength += 1
            if groupLength == 4 {
                output.append(UInt8(truncatingIfNeeded: group >> 16))
                output.append(UInt8(truncatingIfNeeded: group >> 8))
                output.append(UInt8(truncatingIfNeeded: group))
                group = 0
                groupLength = 0
            }
        }
        switch groupLength {
        case 2:
            // 12 bits carry 8: the low 4 must be zero.
            guard group & 0x0F == 0 else { return nil }
            output.append(UInt8(truncatingIfNeeded: group >> 4))
        case 3:
            // 18 bits carry 16: the low 2 must be zero.
            guard group & 0x03 == 0 else { return nil }
            output.append(UInt8(truncatingIfNeeded: group >> 10))
            output.append(UInt8(truncatingIfNeeded: group >> 2))
        default:
            break
        }
        return output
    }
}
