import Glibc

/// A failed system call: which call, and `errno` as the kernel reported it.
package struct SystemError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name of the call that failed, e.g. `"bind"`.
    package let call: String
    /// The `errno` value.
    package let errno: CInt

    package init(_ call: String, errno: CInt = Glibc.errno) {
        self.call = call
        self.errno = errno
    }

    package var description: String {
        let text = strerror(errno).map { String(cString: $0) } ?? "errno \(errno)"
        return "\(call): \(text) (errno \(errno))"
    }
}

/// Thin wrappers over system calls: `EINTR` is retried, `EAGAIN` becomes `nil` instead of an error.
package enum Syscall {
    /// Retries `body` while it fails with `EINTR`; returns its result or throws `SystemError`.
    @inline(__always)
    package static func retrying<T: BinaryInteger>(_ call: String, _ body: () -> T) throws(SystemError) -> T {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = Glibc.errno
            if code == EINTR { continue }
            throw SystemError(call, errno: code)
        }
    }

    /// Like `retrying`, but a would-block failure (`EAGAIN`/`EWOULDBLOCK`) returns `nil`.
    @inline(__always)
    package static func nonBlocking<T: BinaryInteger>(_ call: String, _ body: () -> T) throws(SystemError) -> T? {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = Glibc.errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return nil }
            throw SystemError(call, errno: code)
        }
    }
}

/// Monotonic time in nanoseconds, the clock of every timeout in the process.
package enum MonotonicClock {
    /// Nanoseconds since an arbitrary fixed point; never goes backwards.
    @inline(__always)
    package static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
