import CLinux
import Glibc
import Testing
@testable import Shared

/// `WebSocketConnection` over real loopback sockets: every way a connection closes.
@Suite(.serialized) struct WebSocketConnectionTests {
    init() { EventLoop.shared.startInBackground() }

    /// Records what the server side saw; echoes text.
    @LoopActor
    final class Recorder: WebSocketConnectionDelegate {
        var messages: [WebSocketMessage] = []
        var closeCode: UInt16?
        func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
            messages.append(message)
            if case .text(let text) = message {
                if text == "close-1001" { connection.close(code: 1001, reason: "bye") } else { connection.send(text: text) }
            }
        }
        func webSocketDidClose(_ connection: WebSocketConnection, code: UInt16) { closeCode = code }
    }

    /// A listening server wrapping each accepted socket in a `WebSocketConnection`.
    @LoopActor
    final class Server {
        let recorder = Recorder()
        var connections: [WebSocketConnection] = []
        var listener: TCPListener?
        init(configuration: WebSocketConfiguration) throws {
            listener = try TCPListener(host: "127.0.0.1", port: 0) { [unowned self] fd, peer in
                guard let tcp = try? TCPConnection(fd: fd, peer: peer, limits: TCPConnectionLimits()) else { return }
                let connection = WebSocketConnection(transport: tcp, configuration: configuration, release: {})
                connection.delegate = self.recorder
                self.connections.append(connection)
                connection.start(leftover: [])
            }
        }
        var port: UInt16 { listener?.localAddress.port ?? 0 }
        func stop() { listener?.close() }
    }

    /// A blocking client: sends `frames`, then reads until the server closes; returns the frames it got.
    static func exchange(port: UInt16, frames: [[UInt8]], replyToClose: Bool = true) async throws -> [WebSocketEvent] {
        try await ThreadPool(threads: 1, name: "ws-client").run { () -> [WebSocketEvent] in
            let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            guard let address = SocketAddress(host: "127.0.0.1", port: port) else { return [] }
            _ = address.withSockAddr { connect(fd, $0, $1) }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            for frame in frames { _ = frame.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
            var parser = WebSocketParser(role: .client, limits: WebSocketLimits())
            var events: [WebSocketEvent] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count <= 0 { break }
                parser.append(buffer[0..<count])
                var sawClose = false
                while true {
                    let event = parser.next()
                    if event == .needMoreData { break }
                    events.append(event)
                    if case .close(let code, _) = event {
                        sawClose = true
                        if replyToClose {
                            let reply = WebSocketFrameEncoder.frame(.close, payload: code.map { [UInt8($0 >> 8), UInt8($0 & 0xFF)] } ?? [],
                                                                   maskingKey: (1, 2, 3, 4))
                            _ = reply.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        }
                        break
                    }
                    if case .failure = event { break }
                }
                if sawClose && !replyToClose { break }
            }
            return events
        }
    }

    static func masked(_ opcode: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
        WebSocketFrameEncoder.frame(opcode, payload: payload, fin: fin, maskingKey: (0x11, 0x22, 0x33, 0x44))
    }

    static func closeFrame(_ code: UInt16) -> [UInt8] { masked(.close, [UInt8(code >> 8), UInt8(code & 0xFF)]) }

    @LoopActor
    private func run(_ frames: [[UInt8]], configuration: WebSocketConfiguration = WebSocketConfiguration(),
                     replyToClose: Bool = true) async throws -> (events: [WebSocketEvent], server: Server) {
        let server = try Server(configuration: configuration)
        let events = try await Self.exchange(port: server.port, frames: frames, replyToClose: replyToClose)
        await EventLoop.shared.sleep(for: .milliseconds(50))
        server.stop()
        return (events, server)
    }

    @Test @LoopActor func clientCloseIsEchoedWithItsCode() async throws {
        let (events, server) = try await run([Self.masked(.text, Array("hi".utf8)), Self.closeFrame(1000)])
        #expect(events.first == .message(.text("hi")))
        #expect(events.contains(.close(code: 1000, reason: "")))
        #expect(server.recorder.closeCode == 1000)
    }

    @Test @LoopActor func pingIsAnsweredWithPong() async throws {
        let (events, _) = try await run([Self.masked(.ping, [7, 8]), Self.closeFrame(1000)])
        #expect(events.first == .pong([7, 8]))
    }

    @Test @LoopActor func unmaskedClientFrameClosesWith1002() async throws {
        let (events, server) = try await run([WebSocketFrameEncoder.text("no mask")])
        #expect(events.contains { if case .close(let code, _) = $0 { return code == 1002 }; return false })
        #expect(server.recorder.closeCode == 1002)
    }

    @Test @LoopActor func invalidUTF8ClosesWith1007() async throws {
        let (events, server) = try await run([Self.masked(.text, [0x68, 0xC3, 0x28])])
        #expect(events.contains { if case .close(let code, _) = $0 { return code == 1007 }; return false })
        #expect(server.recorder.closeCode == 1007)
    }

    @Test @LoopActor func oversizedMessageClosesWith1009() async throws {
        var configuration = WebSocketConfiguration()
        configuration.limits = WebSocketLimits(maxMessageBytes: 16)
        let (events, server) = try await run([Self.masked(.text, Array(repeating: 0x61, count: 64))], configuration: configuration)
        #expect(events.contains { if case .close(let code, _) = $0 { return code == 1009 }; return false })
        #expect(server.recorder.closeCode == 1009)
    }

    @Test @LoopActor func serverInitiatedCloseCompletesTheHandshake() async throws {
        let (events, server) = try await run([Self.masked(.text, Array("close-1001".utf8))])
        #expect(events.contains(.close(code: 1001, reason: "bye")))
        #expect(server.recorder.closeCode == 1001)
    }

    @Test @LoopActor func idleTimeoutClosesWith1001() async throws {
        var configuration = WebSocketConfiguration()
        configuration.idleTimeout = .milliseconds(200)
        let (events, server) = try await run([], configuration: configuration)
        #expect(events.contains { if case .close(let code, _) = $0 { return code == 1001 }; return false })
        #expect(server.recorder.closeCode == 1001)
    }

    @Test @LoopActor func peerThatNeverAnswersTheCloseIsDroppedAfterTheTimeout() async throws {
        var configuration = WebSocketConfiguration()
        configuration.closeTimeout = .milliseconds(200)
        let server = try Server(configuration: configuration)
        let started = MonotonicClock.now()
        let events = try await Self.exchange(port: server.port, frames: [Self.masked(.text, Array("close-1001".utf8))],
                                             replyToClose: false)
        await EventLoop.shared.sleep(for: .milliseconds(400))
        #expect(events.contains(.close(code: 1001, reason: "bye")))
        #expect(server.recorder.closeCode == 1001)
        #expect(server.connections.allSatisfy { !$0.isOpen })
        #expect(MonotonicClock.now() - started < 3_000_000_000)
        server.stop()
    }
}
