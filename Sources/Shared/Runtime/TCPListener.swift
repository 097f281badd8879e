import CLinux
import Glibc

/// A non-blocking listening socket on the loop. `SO_REUSEPORT` lets several processes share a port,
/// which is how gateways scale on one host.
@LoopActor
package final class TCPListener: IOHandler {
    /// Called for each accepted, non-blocking socket with the peer's address.
    package typealias AcceptHandler = @LoopActor (_ fd: CInt, _ peer: SocketAddress) -> Void

    private let fd: CInt
    private var registration: IORegistration?
    private let onAccept: AcceptHandler
    /// The bound address (useful when the port was 0).
    package let localAddress: SocketAddress

    /// Most connections accepted per readiness event, so one busy listener cannot starve other sockets.
    private static let acceptBudget = 64
    /// Pause after running out of file descriptors before trying again.
    private static let fdExhaustionPause = Duration.milliseconds(100)

    /// Binds and listens. Throws a `SystemError` naming the failing call (e.g. address in use).
    package init(host: String, port: UInt16, backlog: CInt = 1024, reusePort: Bool = true, onAccept: @escaping AcceptHandler) throws(SystemError) {
        guard let address = SocketAddress(host: host, port: port) else { throw SystemError("inet_pton(\(host))", errno: EINVAL) }
        let socketFD = socket(address.family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard socketFD >= 0 else { throw SystemError("socket") }
        var one: CInt = 1
        setsockopt(socketFD, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
        if reusePort { setsockopt(socketFD, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<CInt>.size)) }
        let bound = address.withSockAddr { bind(socketFD, $0, $1) }
        guard bound == 0, listen(socketFD, backlog) == 0 else {
            let error = SystemError(bound == 0 ? "listen" : "bind(\(address))")
            Glibc.close(socketFD)
            throw error
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) }
        }
        fd = socketFD
        localAddress = SocketAddress(storage: storage, length: length)
        self.onAccept = onAccept
        do {
            registration = try EventLoop.shared.register(fd: fd, interest: .read, handler: self)
        } catch {
            Glibc.close(socketFD)
            throw error
        }
    }

    package func handleIO(_ events: IOEvents) {
        for _ in 0..<Self.acceptBudget {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    accept4(fd, $0, &length, CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue))
                }
            }
            if client >= 0 {
                var one: CInt = 1
                setsockopt(client, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
                onAccept(client, SocketAddress(storage: storage, length: length))
                continue
            }
            switch errno {
            case EINTR, ECONNABORTED, EPROTO: continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                // Out of descriptors: stop listening briefly instead of spinning on a readable listener.
                pauseAccepting()
                return
            default:
                return
            }
        }
    }

    private func pauseAccepting() {
        guard let registration else { return }
        EventLoop.shared.modify(registration, interest: [])
        EventLoop.shared.schedule(after: Self.fdExhaustionPause) { [weak self] in
            guard let self, let registration = self.registration else { return }
            EventLoop.shared.modify(registration, interest: .read)
        }
    }

    /// Stops accepting and closes the socket (graceful shutdown's first step).
    package func close() {
        guard let registration else { return }
        EventLoop.shared.deregister(registration)
        self.registration = nil
        Glibc.close(fd)
    }
}
