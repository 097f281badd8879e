import Glibc
import Security

/// Names a process instance in logs, presence and consumer groups.
package enum InstanceID {
    /// `prefix-hostname-pid-xxxx`: readable, and unique even when a pid is reused on another host.
    package static func generate(prefix: String) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let host = gethostname(&buffer, buffer.count) == 0
            ? String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            : "host"
        let suffix = Hex.encode(SecureRandom.bytes(2))
        return "\(prefix)-\(host)-\(getpid())-\(suffix)"
    }
}
