import Glibc
import Testing
@testable import Shared

/// The loop and runtime against real sockets and threads (no external servers needed).
@Suite struct EventLoopTests {
    init() { EventLoop.shared.startInBackground() }

    @Test func tasksIsolatedToLoopActorRunOnTheLoopThread() async {
        let onLoop = await Task { @LoopActor in EventLoop.shared.inLoopThread }.value
        #expect(onLoop)
    }

    @Test func executeFromAnotherThreadRunsOnLoop() async {
        let ran: Bool = await withCheckedContinuation { continuation in
            EventLoop.shared.execute { continuation.resume(returning: EventLoop.shared.inLoopThread) }
        }
        #expect(ran)
    }

    @Test @LoopActor func timersFireInOrderAndCancelledOnesDoNot() async {
        var fired: [Int] = []
        let start = MonotonicClock.now()
        let cancelled = EventLoop.shared.schedule(after: .milliseconds(5)) { fired.append(99) }
        EventLoop.shared.schedule(after: .milliseconds(30)) { fired.append(2) }
        EventLoop.shared.schedule(after: .milliseconds(10)) { fired.append(1) }
        EventLoop.shared.cancel(cancelled)
        await EventLoop.shared.sleep(for: .milliseconds(60))
        #expect(fired == [1, 2])
        #expect(MonotonicClock.now() - start >= 60_000_000)
    }

    @Test @LoopActor func threadPoolResultComesBackToTheLoop() async throws {
        let pool = ThreadPool(threads: 2, name: "test-pool")
        let result = try await pool.run { () -> (Int, Bool) in (21 * 2, EventLoop.shared.inLoopThread) }
        #expect(result.0 == 42)
        #expect(result.1 == false)
        #expect(EventLoop.shared.inLoopThread)
        pool.shutdown()
    }

    @Test func threadPoolRefusesBeyondItsQueueDepth() throws {
        let pool = ThreadPool(threads: 1, maxQueueDepth: 1, name: "tiny-pool")
        let gate = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
        sem_init(gate, 0, 0)
        nonisolated(unsafe) let shared = gate
        try pool.submit { sem_wait(shared) }  // occupies the thread
        usleep(20_000)
        try pool.submit {}  // waits in the queue
        #expect(throws: ThreadPoolError.overloaded(retryAfter: .seconds(1))) { try pool.submit {} }
        sem_post(gate)
        pool.shutdown()
    }

    @Test @LoopActor func tcpEchoRoundTrip() async throws {
        final class Echo: TransportDelegate {
            var closed = false
            func connection(_ connection: any Transport, didRead bytes: UnsafeRawBufferPointer) { connection.write(Array(bytes)) }
            func connectionDidReadEOF(_ connection: any Transport) { connection.closeAfterFlush() }
            func connectionDidDrain(_ connection: any Transport) {}
            func connectionDidClose(_ connection: any Transport, error: SystemError?) { closed = true }
        }
        let echo = Echo()
        var accepted: TCPConnection?
        let listener = try TCPListener(host: "127.0.0.1", port: 0) { fd, peer in
            accepted = try? TCPConnection(fd: fd, peer: peer, limits: TCPConnectionLimits())
            accepted?.delegate = echo
        }
        let port = listener.localAddress.port
        let reply: [UInt8] = try await ThreadPool(threads: 1, name: "client").run { () -> [UInt8] in
            let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
            guard let address = SocketAddress(host: "127.0.0.1", port: port) else { return [] }
            _ = address.withSockAddr { connect(fd, $0, $1) }
            let message = Array("hello loop".utf8)
            _ = message.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            shutdown(fd, CInt(SHUT_WR))
            var buffer = [UInt8](repeating: 0, count: 64)
            var received: [UInt8] = []
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count <= 0 { break }
                received += buffer[0..<count]
            }
            close(fd)
            return received
        }
        #expect(String(decoding: reply, as: UTF8.self) == "hello loop")
        await EventLoop.shared.sleep(for: .milliseconds(20))
        #expect(echo.closed)
        listener.close()
    }

    /// Writes inside a `WriteCoalescing` scope reach the peer only when it ends, together and in
    /// order; a close asked for inside the scope still sends them first.
    @Test @LoopActor func coalescedWritesGoOutTogetherWhenTheScopeEnds() throws {
        var fds: [CInt] = [0, 0]
        #expect(socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { Glibc.close(fds[1]) }
        let connection = try TCPConnection(fd: fds[0], peer: try #require(SocketAddress(host: "127.0.0.1", port: 9)), limits: TCPConnectionLimits())
        func available() -> [UInt8] {
            var buffer = [UInt8](repeating: 0, count: 256)
            let count = buffer.withUnsafeMutableBytes { recv(fds[1], $0.baseAddress, $0.count, CInt(MSG_DONTWAIT)) }
            return count > 0 ? Array(buffer[0..<count]) : []
        }
        WriteCoalescing.perform {
            connection.write(Array("one ".utf8))
            WriteCoalescing.perform { _ = connection.write(Array("two ".utf8)) }
            #expect(available().isEmpty, "an inner scope does not release the outer one's writes")
            connection.write(Array("three".utf8))
            connection.closeAfterFlush()
            #expect(available().isEmpty)
        }
        #expect(String(decoding: available(), as: UTF8.self) == "one two three")
        connection.write(Array("late".utf8))  // closing: refused
        connection.closeNow(error: nil)
        #expect(available().isEmpty)
        // Outside a scope a write goes out at once.
        var again: [CInt] = [0, 0]
        #expect(socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0, &again) == 0)
        defer { Glibc.close(again[1]) }
        let direct = try TCPConnection(fd: again[0], peer: try #require(SocketAddress(host: "127.0.0.1", port: 9)), limits: TCPConnectionLimits())
        direct.write(Array("now".utf8))
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = buffer.withUnsafeMutableBytes { recv(again[1], $0.baseAddress, $0.count, CInt(MSG_DONTWAIT)) }
        #expect(count == 3)
        direct.closeNow(error: nil)
    }

    /// A backlog of small frames to a peer that is not reading (they join the queue's last buffer)
    /// and of large ones (queued as they are) reaches the peer whole and in order once it reads,
    /// and the queue counts exactly the bytes written.
    @Test @LoopActor func aBacklogOfSmallAndLargeFramesArrivesWholeAndInOrder() async throws {
        var fds: [CInt] = [0, 0]
        #expect(socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { Glibc.close(fds[1]) }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)  // as accepted sockets are
        var small: CInt = 4096
        setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<CInt>.size))
        var limits = TCPConnectionLimits()
        limits.maxPendingWriteBytes = 64 << 20
        let connection = try TCPConnection(fd: fds[0], peer: try #require(SocketAddress(host: "127.0.0.1", port: 9)), limits: limits)
        let shared = [UInt8](repeating: 0x2A, count: 100)
        var expected: [UInt8] = []
        for index in 0..<5_000 {
            let frame: [UInt8]
            switch index % 50 {
            case 0: frame = [UInt8](repeating: UInt8(index % 251), count: 9_000)  // large: queued as it is
            case 7: frame = shared  // the same array queued many times
            default: frame = Array("frame \(index);".utf8)
            }
            #expect(connection.write(frame))
            expected += frame
        }
        let queued = connection.pendingWriteBytes
        #expect(queued > 0, "the kernel took everything: the test would not queue")
        #expect(shared == [UInt8](repeating: 0x2A, count: 100))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let deadline = MonotonicClock.deadline(after: .seconds(10), from: MonotonicClock.now())
        while received.count < expected.count && MonotonicClock.now() < deadline {
            let count = buffer.withUnsafeMutableBytes { recv(fds[1], $0.baseAddress, $0.count, CInt(MSG_DONTWAIT)) }
            if count > 0 { received += buffer[0..<count] } else { await EventLoop.shared.sleep(for: .milliseconds(1)) }
        }
        #expect(received.count == expected.count)
        let whole = received == expected  // a Bool: the arrays are too long to print on failure
        #expect(whole)
        #expect(connection.pendingWriteBytes == 0)
        connection.closeNow(error: nil)
    }
}
