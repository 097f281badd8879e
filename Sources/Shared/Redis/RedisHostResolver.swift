import CLinux
import Glibc
import Runtime

/// Turns a Redis host name into a numeric address without blocking the loop.
///
/// `getaddrinfo` may wait seconds on DNS for a name. So names are resolved here on a small pool
/// and the connection connects to the numeric result.
enum RedisHostResolver {
    /// Why a name did not resolve.
    struct Failure: Error, Sendable {
        let reason: String
    }

    /// Two threads: one slow lookup does not hold up the others; the bounded queue sheds a flood.
    private static let pool = ThreadPool(threads: 2, maxQueueDepth: 32, name: "redis-dns")

    /// Whether `host` is already an IPv4 or IPv6 literal.
    static func isNumeric(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Resolves `host` off the loop, giving up after `timeout` (the lookup itself keeps its
    /// thread until the resolver returns; its late answer is dropped).
    @LoopActor
    static func resolve(_ host: String, timeout: Duration) async -> Result<String, Failure> {
        if isNumeric(host) { return .success(host) }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Result<String, Failure>, Never>) in
            let once = OnceResumer(continuation)
            let timer = EventLoop.shared.schedule(after: timeout) {
                once.resume(.failure(Failure(reason: "resolving \(host) timed out")))
            }
            do throws(ThreadPoolError) {
                try pool.submit {
                    let result = blockingResolve(host)
                    EventLoop.shared.execute {
                        EventLoop.shared.cancel(timer)
                        once.resume(result)
                    }
                }
            } catch {
                EventLoop.shared.cancel(timer)
                once.resume(.failure(Failure(reason: "too many name lookups in flight")))
            }
        }
    }

    /// `getaddrinfo` (blocking): the first IPv4 address, else the first IPv6 one, as text.
    static func blockingResolve(_ host: String) -> Result<String, Failure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let first = list else {
            let text = gai_strerror(status).map { String(cString: $0) } ?? "error \(status)"
            return .failure(Failure(reason: "cannot resolve \(host): \(text)"))
        }
        defer { freeaddrinfo(first) }
        var chosen: SocketAddress?
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let current = node {
            let entry = current.pointee
            if let address = entry.ai_addr, entry.ai_family == AF_INET || entry.ai_family == AF_INET6 {
                var storage = sockaddr_storage()
                let length = min(Int(entry.ai_addrlen), MemoryLayout<sockaddr_storage>.size)
                withUnsafeMutableBytes(of: &storage) { raw in
                    raw.copyMemory(from: UnsafeRawBufferPointer(start: address, count: length))
                }
                let candidate = SocketAddress(storage: storage, length: socklen_t(length))
                if entry.ai_family == AF_INET { chosen = candidate; break }
                if chosen == nil { chosen = candidate }
            }
            node = entry.ai_next
        }
        guard let chosen else { return .failure(Failure(reason: "\(host) has no IPv4 or IPv6 address")) }
        return .success(chosen.host)
    }
}

/// A continuation resumed by whichever of several events comes first (result or timeout).
@LoopActor
private final class OnceResumer<Value: Sendable> {
    private var continuation: CheckedContinuation<Value, Never>?

    init(_ continuation: CheckedContinuation<Value, Never>) {
        self.continuation = continuation
    }

    func resume(_ value: Value) {
        guard let continuation else { return }
        self.continuation = nil
        continuation.resume(returning: value)
    }
}
