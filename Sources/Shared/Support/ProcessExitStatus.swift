import Glibc
import Synchronization

/// The status `main` exits with after the loop returns, set by whoever decided to stop.
package enum ProcessExitStatus {
    private static let value = Atomic<Int32>(0)

    /// Records the status to exit with.
    package static func set(_ status: Int32) { value.store(status, ordering: .releasing) }

    /// The recorded status (0 unless something failed).
    package static var current: Int32 { value.load(ordering: .acquiring) }
}

/// Writes a line to standard error (for command-line misuse, before logging is set up).
package func writeStandardError(_ line: String) {
    var bytes = Array(line.utf8)
    bytes.append(UInt8(ascii: "\n"))
    _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
}
