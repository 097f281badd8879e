import COpenSSL

/// One-shot message digests through OpenSSL's EVP interface.
package enum Digest {
    /// SHA-1 (20 bytes). Only for protocols that mandate it (the WebSocket handshake); never for
    /// anything that needs collision resistance.
    package static func sha1(_ bytes: some Collection<UInt8>) -> [UInt8] {
        digest(bytes, algorithm: EVP_sha1(), length: 20)
    }

    /// SHA-256 (32 bytes).
    package static func sha256(_ bytes: some Collection<UInt8>) -> [UInt8] {
        digest(bytes, algorithm: EVP_sha256(), length: 32)
    }

    private static func digest(
        _ bytes: some Collection<UInt8>,
        algorithm: OpaquePointer?,
        length: Int
    ) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var written: UInt32 = 0
        let status = OpenSSLSupport.withBytes(bytes) { input in
            output.withUnsafeMutableBufferPointer { out in
                EVP_Digest(input.baseAddress, input.count, out.baseAddress, &written, algorithm, nil)
            }
        }
        // EVP_Digest only fails on allocation failure or a missing built-in algorithm: both mean the
        // process cannot do its job, and returning a wrong digest would be worse than stopping.
        precondition(status == 1 && Int(written) == length, "OpenSSL digest failed: \(OpenSSLSupport.lastError())")
        output.removeSubrange(length...)
        return output
    }
}

/// HMAC-SHA256 (RFC 2104 / RFC 4231).
package enum HMACSHA256 {
    /// The 32-byte authentication code of `message` under `key` (any key length).
    package static func authenticationCode(key: [UInt8], message: some Collection<UInt8>) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var written: UInt32 = 0
        let result = OpenSSLSupport.withBytes(key) { keyBytes in
            OpenSSLSupport.withBytes(message) { messageBytes in
                output.withUnsafeMutableBufferPointer { out in
                    HMAC(
                        EVP_sha256(), keyBytes.baseAddress, Int32(keyBytes.count),
                        messageBytes.baseAddress, messageBytes.count, out.baseAddress, &written)
                }
            }
        }
        // As for digests: failure means a broken crypto library, never bad input.
        precondition(result != nil && written == 32, "OpenSSL HMAC failed: \(OpenSSLSupport.lastError())")
        output.removeSubrange(32...)
        return output
    }
}

/// Glue shared by the OpenSSL-backed types of this folder.
enum OpenSSLSupport {
    /// Runs `body` over the bytes of `collection` in contiguous memory whose base address is never
    /// nil (some OpenSSL calls treat a NULL pointer as an error even with length 0).
    static func withBytes<R>(
        _ collection: some Collection<UInt8>,
        _ body: (UnsafeBufferPointer<UInt8>) -> R
    ) -> R {
        if collection.isEmpty {
            let placeholder: [UInt8] = [0]
            return placeholder.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[0..<0])) }
        }
        if let result = collection.withContiguousStorageIfAvailable(body) {
            return result
        }
        return Array(collection).withUnsafeBufferPointer(body)
    }

    /// Text of OpenSSL's oldest queued error on this thread, for failure messages. Clears the queue so
    /// a pooled thread does not carry stale errors into its next job.
    static func lastError() -> String {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return "no OpenSSL error queued" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
