// Percent-decoding of URL paths and query strings (RFC 3986 §2.1), lenient the way servers are:
// a malformed escape is kept as written instead of failing the whole request.

/// Decodes `%XX` escapes (and, in query strings, `+` as space).
package enum PercentDecoding {
    /// The decoded text. Malformed escapes (`%`, `%4`, `%zz`) are kept literally; bytes that do not
    /// form valid UTF-8 after decoding become U+FFFD.
    /// - Parameter plusAsSpace: true for `application/x-www-form-urlencoded` (query strings),
    ///   false for path segments where `+` is an ordinary character.
    package static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes, plusAsSpace: Bool) -> String {
        // Most inputs have nothing to decode: build the String directly, without a scratch array.
        let needsWork = bytes.contains { $0 == UInt8(ascii: "%") || (plusAsSpace && $0 == UInt8(ascii: "+")) }
        if !needsWork {
            return String(decoding: bytes, as: UTF8.self)
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                let first = bytes.index(after: index)
                if first != bytes.endIndex {
                    let second = bytes.index(after: first)
                    if second != bytes.endIndex, let high = hexValue(bytes[first]), let low = hexValue(bytes[second]) {
                        out.append(high << 4 | low)
                        index = bytes.index(after: second)
                        continue
                    }
                }
                out.append(byte)
            } else if plusAsSpace && byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else {
                out.append(byte)
            }
            index = bytes.index(after: index)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The decoded text of a `String` (its UTF-8).
    package static func decode(_ text: String, plusAsSpace: Bool) -> String {
        decode(text.utf8, plusAsSpace: plusAsSpace)
    }

    /// Value of one hex digit, either case.
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
