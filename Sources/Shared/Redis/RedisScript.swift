import COpenSSL

/// A Lua script with its SHA1 computed once, for `EVALSHA` (Redis caches scripts by this digest).
package struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    package let source: String
    /// Lowercase hex SHA1 of `source`, as `SCRIPT LOAD` returns it.
    package let sha1: String

    /// Wraps `source` and digests it.
    package init(source: String) {
        self.source = source
        self.sha1 = Self.hexSHA1(Array(source.utf8))
    }

    static func hexSHA1(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: Int(SHA_DIGEST_LENGTH))
        digest.withUnsafeMutableBufferPointer { out in
            bytes.withUnsafeBufferPointer { input in
                // SHA1 accepts a NULL pointer for zero-length input, and only fails for a NULL output.
                _ = SHA1(input.baseAddress, input.count, out.baseAddress)
            }
        }
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(digest.count * 2)
        for byte in digest {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
