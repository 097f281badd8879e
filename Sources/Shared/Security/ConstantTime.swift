import COpenSSL

/// Comparisons whose running time does not depend on where secret bytes differ.
package enum ConstantTime {
    /// True when `a` and `b` are identical. Lengths are not secret (a MAC's length is public), so a
    /// length mismatch returns false at once; equal-length contents are compared with
    /// `CRYPTO_memcmp`, which always reads every byte.
    package static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { left in
            b.withUnsafeBytes { right in
                CRYPTO_memcmp(left.baseAddress, right.baseAddress, left.count) == 0
            }
        }
    }
}
