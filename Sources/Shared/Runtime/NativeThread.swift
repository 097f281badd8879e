import CLinux
import Glibc

/// Starts detached POSIX threads running a Swift closure (no Foundation `Thread`).
package enum NativeThread {
    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// Spawns a detached thread named `name` (truncated to 15 bytes, the kernel's limit) running `body`.
    package static func spawn(name: String, _ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        var handle = pthread_t()
        let result = pthread_create(&handle, nil, { raw in
            guard let raw else { return nil }
            let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
            box.body()
            return nil
        }, context)
        precondition(result == 0, "pthread_create failed: \(SystemError("pthread_create", errno: result))")
        _ = pthread_setname_np(handle, String(name.utf8.prefix(15)) ?? "worker")
        pthread_detach(handle)
    }
}
