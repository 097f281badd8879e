/// Lower-case hexadecimal text of bytes (digests, random ids).
package enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Two lower-case hex digits per byte.
    package static func encode(_ bytes: some Collection<UInt8>) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
