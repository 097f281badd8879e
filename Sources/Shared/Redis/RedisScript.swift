import Security

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
        Hex.encode(Digest.sha1(bytes))
    }
}
