import COpenSSL
import Glibc

/// Cryptographically secure random bytes: OpenSSL's CSPRNG, falling back to the kernel's.
///
/// There is no weak fallback: if neither source works the process stops, because a predictable
/// token or salt is worse than an outage.
package enum SecureRandom {
    /// `count` random bytes.
    package static func bytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0, "negative byte count")
        var output = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return output }
        let filled = output.withUnsafeMutableBufferPointer { buffer in
            fillFromOpenSSL(buffer) || fillFromKernel(buffer)
        }
        precondition(filled, "no secure random source available: \(OpenSSLSupport.lastError())")
        return output
    }

    /// A random token of `byteCount` bytes, base64url without padding (43 characters for 32 bytes).
    package static func token(byteCount: Int = 32) -> String {
        Base64URL.encode(bytes(byteCount))
    }

    private static func fillFromOpenSSL(_ buffer: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        var offset = 0
        // RAND_bytes takes an Int32 length.
        while offset < buffer.count {
            let chunk = min(buffer.count - offset, Int(Int32.max))
            guard RAND_bytes(buffer.baseAddress.map { $0 + offset }, Int32(chunk)) == 1 else { return false }
            offset += chunk
        }
        return true
    }

    /// Reads /dev/urandom, the kernel CSPRNG that getrandom(2) also serves (getrandom itself is not
    /// visible through the Glibc module).
    private static func fillFromKernel(_ buffer: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        let descriptor = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var offset = 0
        while offset < buffer.count {
            let count = read(descriptor, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
            if count > 0 {
                offset += count
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                return false
            }
        }
        return true
    }
}
