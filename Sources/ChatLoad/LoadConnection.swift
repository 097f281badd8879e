import CLinux
import Glibc
import Shared

/// One simulated Socket.IO client: TCP connect, WebSocket upgrade, Engine.IO open, Socket.IO CONNECT with
/// a token, then answering pings until the run ends.
///
/// Kept small because a run holds 100k of them: a phase, the fd, and two optional boxes that exist only
/// while needed (the handshake's state until authentication, the frame parser while a frame is partial).
@LoopActor
final class LoadConnection: IOHandler {
    private enum Phase: UInt8 {
        case idle
        /// Non-blocking `connect` in progress.
        case connecting
        /// Upgrade request sent, reading the HTTP response head.
        case awaitingUpgrade
        /// WebSocket open, waiting for the Engine.IO open packet.
        case awaitingOpen
        /// Socket.IO CONNECT sent, waiting for CONNECT or CONNECT_ERROR.
        case awaitingConnect
        /// Authenticated; answering pings.
        case connected
        /// We sent DISCONNECT and a close frame; waiting for the server's close frame.
        case closing
        /// The server answered our close; waiting for it to close the TCP connection first (RFC 6455
        /// 7.1.1), so TIME_WAIT lands on the server and not on our reused 4-tuples.
        case awaitingServerClose
        case closed

        var isHandshaking: Bool { self == .connecting || self == .awaitingUpgrade || self == .awaitingOpen || self == .awaitingConnect }
    }

    /// What only exists until the connection is authenticated.
    private final class Handshake {
        let startedAt: UInt64
        let userIndex: Int
        /// `Sec-WebSocket-Key`, to check the server's `Sec-WebSocket-Accept`.
        let key: String
        /// The HTTP response head read so far.
        var response: [UInt8] = []
        var timer: TimerHandle?

        init(startedAt: UInt64, userIndex: Int, key: String) {
            self.startedAt = startedAt
            self.userIndex = userIndex
            self.key = key
        }
    }

    /// A frame parser holding a partial frame or message between reads.
    private final class FrameAssembly {
        var parser = WebSocketParser(role: .client)
    }

    /// Largest HTTP response head accepted for the upgrade.
    private static let maxResponseHeadBytes = 16 * 1024
    /// One read buffer for every connection: reads are consumed before the next one.
    private static let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    private static let headTerminator: [UInt8] = Array("\r\n\r\n".utf8)

    private unowned let generator: LoadGenerator
    private var fd: CInt = -1
    private var registration: IORegistration?
    private var phase = Phase.idle
    private var handshake: Handshake?
    private var frames: FrameAssembly?
    /// Output the kernel did not take yet (rare: every write is small).
    private var pendingOutput: [UInt8] = []
    /// Where the unsent part of `pendingOutput` starts.
    private var pendingStart = 0

    init(generator: LoadGenerator) {
        self.generator = generator
    }

    // MARK: Connecting

    /// Creates the socket, binds it to `source` (if any) and starts connecting to `destination`.
    func start(userIndex: Int, source: SocketAddress?, destination: SocketAddress) {
        let state = Handshake(startedAt: MonotonicClock.now(), userIndex: userIndex, key: Base64.encode(SecureRandom.bytes(16)))
        handshake = state
        phase = .connecting
        generator.counters.started += 1
        generator.counters.inFlight += 1
        // A strong capture: the timer is always cancelled or fired, and a weak one would give every
        // connection a side table for life.
        state.timer = EventLoop.shared.schedule(after: generator.options.handshakeTimeout) {
            self.handshakeTimedOut()
        }

        fd = socket(destination.family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return fail(ErrnoName.name(errno)) }
        var one: CInt = 1
        setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        if let source {
            // Without a port, bind() would reserve an ephemeral port per source address for *every*
            // destination; IP_BIND_ADDRESS_NO_PORT defers the choice to connect(), which only needs
            // the 4-tuple to be unique, so each source address yields a full ephemeral range.
            if source.family == AF_INET {
                setsockopt(fd, CInt(IPPROTO_IP), IP_BIND_ADDRESS_NO_PORT, &one, socklen_t(MemoryLayout<CInt>.size))
            }
            let bound = source.withSockAddr { Glibc.bind(fd, $0, $1) }
            guard bound == 0 else { return fail(ErrnoName.name(errno)) }
        }
        let result = destination.withSockAddr { Glibc.connect(fd, $0, $1) }
        let connectErrno = errno
        if result != 0 && connectErrno != EINPROGRESS {
            return fail(ErrnoName.name(connectErrno))
        }
        do {
            registration = try EventLoop.shared.register(fd: fd, interest: result == 0 ? .read : .write, handler: self)
        } catch {
            return fail(ErrnoName.name(error.errno))
        }
        if result == 0 { sendUpgradeRequest() }
    }

    private func finishConnect() {
        var error: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return fail(ErrnoName.name(errno)) }
        if error == EINPROGRESS || error == EALREADY { return }
        guard error == 0 else { return fail(ErrnoName.name(error)) }
        sendUpgradeRequest()
    }

    private func sendUpgradeRequest() {
        guard let handshake else { return }
        phase = .awaitingUpgrade
        let options = generator.options
        let host = options.host.contains(":") ? "[\(options.host)]:\(options.port)" : "\(options.host):\(options.port)"
        let request = "GET \(options.path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(handshake.key)\r\nSec-WebSocket-Version: 13\r\n\r\n"
        send(Array(request.utf8))
        updateInterest()
    }

    private func handshakeTimedOut() {
        handshake?.timer = nil
        if phase.isHandshaking { fail("handshake_timeout") }
    }

    // MARK: Reading

    func handleIO(_ events: IOEvents) {
        if phase == .connecting {
            if events.writable || events.hangup { finishConnect() }
            return
        }
        if events.writable && !pendingOutput.isEmpty { flush() }
        if phase != .closed && (events.readable || events.hangup) { readAvailable() }
    }

    private func readAvailable() {
        // Bounded, so one busy connection cannot starve the others.
        for _ in 0..<4 {
            guard phase != .closed else { return }
            let count = recv(fd, Self.readBuffer.baseAddress, Self.readBuffer.count, 0)
            if count > 0 {
                consume(UnsafeRawBufferPointer(rebasing: Self.readBuffer[0..<count]))
                if count < Self.readBuffer.count { return }
                continue
            }
            if count == 0 { return lost("eof") }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return
            case let code: return lost(ErrnoName.name(code))
            }
        }
    }

    private func consume(_ bytes: UnsafeRawBufferPointer) {
        guard phase == .awaitingUpgrade else { return feedFrames(bytes) }
        guard let handshake else { return }
        let previous = handshake.response.count
        handshake.response.append(contentsOf: bytes)
        // Search from a little before the new bytes, in case the terminator straddles two reads.
        let searchStart = max(0, previous - 3)
        guard let end = Self.find(Self.headTerminator, in: handshake.response, from: searchStart) else {
            if handshake.response.count > Self.maxResponseHeadBytes { fail("upgrade_response_too_large") }
            return
        }
        let headLength = end + Self.headTerminator.count
        let head = handshake.response[..<headLength]
        if let failure = Self.checkUpgradeResponse(head, key: handshake.key) { return fail(failure) }
        let leftover = handshake.response[headLength...]
        handshake.response = []
        phase = .awaitingOpen
        if !leftover.isEmpty {
            Array(leftover).withUnsafeBytes { feedFrames($0) }
        }
    }

    /// nil when the head is a valid 101 for our key, else the failure reason.
    private static func checkUpgradeResponse(_ head: ArraySlice<UInt8>, key: String) -> String? {
        let text = String(decoding: head, as: UTF8.self)
        let lines = text.split(separator: "\r\n", omittingEmptySubsequences: true)
        guard let statusLine = lines.first else { return "bad_upgrade_response" }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else { return "bad_upgrade_response" }
        guard status == 101 else { return "http_\(status)" }
        let expected = WebSocketHandshake.acceptKey(for: key)
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            guard line[..<colon].lowercased() == "sec-websocket-accept" else { continue }
            let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            return value.trimmingTrailingSpaces == expected ? nil : "bad_accept_key"
        }
        return "missing_accept_key"
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = start
        while index + needle.count <= haystack.count {
            if haystack[index] == needle[0] && haystack[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    // MARK: Frames and packets

    private func feedFrames(_ bytes: UnsafeRawBufferPointer) {
        // After the server's close frame nothing more is read but its TCP close.
        guard phase != .awaitingServerClose else { return }
        let assembly = frames ?? FrameAssembly()
        assembly.parser.append(bytes)
        frames = nil
        while phase != .closed && phase != .awaitingServerClose {
            switch assembly.parser.next() {
            case .needMoreData:
                // Idle connections hold no parser: the box is kept only while a frame is partial.
                if !assembly.parser.isIdle { frames = assembly }
                return
            case .message(.text(let text)):
                handleEngineIO(text)
            case .message(.binary):
                protocolFailure("unexpected_binary_frame", closeCode: 1003)
            case .ping(let payload):
                send(WebSocketFrameEncoder.frame(.pong, payload: payload, maskingKey: Self.maskingKey()))
            case .pong:
                break
            case .close(let code, _):
                // The parser stays put after a close: stop reading frames either way.
                if phase == .closing { return closeAcknowledged() }
                send(WebSocketFrameEncoder.frame(.close, payload: Self.closePayload(code ?? 1000), maskingKey: Self.maskingKey()))
                return lost("ws_close_\(code ?? 1005)")
            case .failure(let code, _):
                return protocolFailure("ws_protocol_\(code)", closeCode: code)
            }
        }
    }

    private func handleEngineIO(_ text: String) {
        guard let packet = try? EngineIOPacket.decode(text) else { return protocolFailure("engineio_malformed", closeCode: 1002) }
        switch packet {
        case .open:
            guard phase == .awaitingOpen else { return protocolFailure("unexpected_open", closeCode: 1002) }
            sendConnect()
        case .ping(let payload):
            sendText(EngineIOPacket.pong(payload).encoded)
            generator.counters.pingsAnswered += 1
        case .close:
            lost("engineio_close")
        case .message(let body):
            handleSocketIO(body)
        case .pong, .noop, .upgrade:
            break
        }
    }

    private func sendConnect() {
        guard let handshake else { return }
        phase = .awaitingConnect
        let token = generator.token(forUserIndex: handshake.userIndex)
        // Engine.IO message (4) carrying Socket.IO CONNECT (0) on "/" with the auth payload.
        sendText(#"40{"token":"\#(token)"}"#)
    }

    private func handleSocketIO(_ body: String) {
        guard let packet = try? SocketIOPacket.decode(body) else { return protocolFailure("socketio_malformed", closeCode: 1002) }
        switch phase {
        case .awaitingConnect:
            switch packet.type {
            case .connect: authenticated()
            case .connectError:
                let code = packet.payload?["data"]?["code"]?.stringValue ?? packet.payload?["message"]?.stringValue ?? "unknown"
                refused(code: code)
            default: protocolFailure("unexpected_packet_before_connect", closeCode: 1002)
            }
        case .connected, .closing, .awaitingServerClose:
            if packet.type == .disconnect {
                // Expected while closing; the close frame follows.
                if phase != .connected { return }
                return lost("socketio_disconnect")
            }
            generator.counters.packetsReceived += 1
            if generator.options.messageRate > 0 { messagePacket(packet) }
            if let field = generator.options.latencyField, packet.type == .event,
               let sentAt = packet.payload?.arrayValue?.dropFirst().first?[field]?.int64Value, sentAt > 0 {
                generator.counters.eventsMeasured += 1
                generator.counters.eventLatencies.record(nanoseconds: MonotonicClock.now() &- UInt64(sentAt))
            }
        default:
            protocolFailure("unexpected_packet", closeCode: 1002)
        }
    }

    // MARK: Messages (the messages benchmark)

    /// Intended send times of the messages awaiting their acks, by ack id.
    private var pendingAcks: [Int64: (intended: UInt64, sent: UInt64)] = [:]
    private var nextAckID: Int64 = 0

    /// Where a benchmark message goes.
    enum MessageTarget {
        case user(Int64)
        case room(Int64)
    }

    /// Sends one message with an ack id; its content is its intended send time.
    func sendMessage(to target: MessageTarget, intendedAt: UInt64, clientMsgID: String) {
        guard phase == .connected else {
            generator.counters.messageErrorsByCode["unsent: sender down", default: 0] += 1
            return
        }
        nextAckID += 1
        pendingAcks[nextAckID] = (intendedAt, MonotonicClock.now())
        generator.counters.messagesSent += 1
        let address = switch target {
        case .user(let id): "\"receiverId\":\(id)"
        case .room(let id): "\"roomId\":\(id)"
        }
        sendText("42\(nextAckID)[\"sendMessage\",{\(address),\"content\":\"\(intendedAt)\",\"clientMsgId\":\"\(clientMsgID)\"}]")
    }

    /// An ack of ours (stored, or refused with a code) or a delivered message (`receiveMessage`;
    /// a room's asks for an ack, which confirms the delivery as python-socketio's clients do).
    private func messagePacket(_ packet: SocketIOPacket) {
        let now = MonotonicClock.now()
        if packet.type == .ack, let id = packet.ackID, let (intended, sent) = pendingAcks.removeValue(forKey: id) {
            if let error = packet.payload?.arrayValue?.first?["error"], let code = error["code"]?.stringValue {
                generator.counters.messageErrorsByCode[code, default: 0] += 1
                if let retryAfter = error["retryAfterMs"]?.int64Value { generator.counters.recordRetryAfter(milliseconds: retryAfter) }
            } else {
                generator.counters.messageAcknowledged(latencyNanoseconds: now &- intended, fromSendNanoseconds: now &- sent)
            }
        } else if packet.type == .event, packet.eventName == SocketEvent.receiveMessage.name,
                  let content = packet.eventArguments.first?["content"]?.stringValue, let intended = UInt64(content) {
            generator.counters.messageDelivered(latencyNanoseconds: now &- intended)
            if let ackID = packet.ackID { sendText("43\(ackID)[]") }
        }
    }

    // MARK: Outcomes

    private func authenticated() {
        guard let handshake else { return }
        if let timer = handshake.timer { EventLoop.shared.cancel(timer) }
        self.handshake = nil
        phase = .connected
        generator.counters.recordConnected(latencyNanoseconds: MonotonicClock.now() &- handshake.startedAt)
        if let watched = generator.watchedUsers(ofUserIndex: handshake.userIndex) {
            sendText("42[\"presenceSubscribe\",{\"userIds\":[" + watched.map(String.init).joined(separator: ",") + "]}]")
        }
        generator.connectionResolved()
    }

    private func refused(code: String) {
        endHandshake()
        generator.counters.recordRefused(code: code)
        closeSocket()
        generator.connectionResolved()
    }

    /// A failure before authentication.
    private func fail(_ reason: String) {
        guard phase.isHandshaking else { return lost(reason) }
        endHandshake()
        generator.counters.recordFailed(reason: reason)
        closeSocket()
        generator.connectionResolved()
    }

    /// The connection ended on the peer's initiative (or broke), whatever the phase.
    private func lost(_ reason: String) {
        switch phase {
        case .connecting, .awaitingUpgrade, .awaitingOpen, .awaitingConnect:
            fail(reason)
        case .connected:
            generator.counters.recordDropped(reason: reason)
            closeSocket()
        case .closing:
            // The peer hung up after our close without answering it: closed, but not cleanly.
            finishClosing(graceful: false)
        case .awaitingServerClose:
            closeSocket()
            generator.closingFinished()
        case .idle, .closed:
            break
        }
    }

    private func protocolFailure(_ reason: String, closeCode: UInt16) {
        if phase != .closing && phase != .awaitingServerClose && phase != .closed {
            send(WebSocketFrameEncoder.frame(.close, payload: Self.closePayload(closeCode), maskingKey: Self.maskingKey()))
        }
        lost(reason)
    }

    private func endHandshake() {
        if let timer = handshake?.timer { EventLoop.shared.cancel(timer) }
        handshake = nil
    }

    // MARK: Closing at the end of the run

    /// Starts a graceful close: Socket.IO DISCONNECT, then a WebSocket close 1000. Connections still
    /// handshaking are aborted (counted as failed `aborted`).
    func beginClose() {
        switch phase {
        case .connecting, .awaitingUpgrade, .awaitingOpen, .awaitingConnect:
            fail("aborted")
        case .connected:
            phase = .closing
            generator.closingStarted()
            sendText("41")
            send(WebSocketFrameEncoder.frame(.close, payload: Self.closePayload(1000), maskingKey: Self.maskingKey()))
        case .idle, .closing, .awaitingServerClose, .closed:
            break
        }
    }

    /// Closes a connection whose close handshake did not finish in time.
    func abortClose() {
        switch phase {
        case .closing:
            finishClosing(graceful: false)
        case .awaitingServerClose:
            closeSocket()
            generator.closingFinished()
        default:
            break
        }
    }

    /// The server answered our close frame: a clean close. Its TCP close should follow.
    private func closeAcknowledged() {
        generator.counters.recordClosedByUs(gracefully: true)
        phase = .awaitingServerClose
    }

    private func finishClosing(graceful: Bool) {
        guard phase == .closing else { return }
        generator.counters.recordClosedByUs(gracefully: graceful)
        closeSocket()
        generator.closingFinished()
    }

    private func closeSocket() {
        if let registration { EventLoop.shared.deregister(registration) }
        registration = nil
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
        phase = .closed
        frames = nil
        pendingOutput = []
        pendingStart = 0
    }

    // MARK: Writing

    private func sendText(_ text: String) {
        send(WebSocketFrameEncoder.frame(.text, payload: Array(text.utf8), maskingKey: Self.maskingKey()))
    }

    private func send(_ bytes: [UInt8]) {
        guard fd >= 0, phase != .closed else { return }
        if !pendingOutput.isEmpty {
            pendingOutput.append(contentsOf: bytes)
            return
        }
        let written = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
        if written == bytes.count { return }
        if written < 0 {
            let code = errno
            guard code == EAGAIN || code == EWOULDBLOCK || code == EINTR else { return lost(ErrnoName.name(code)) }
            pendingOutput = bytes
        } else {
            pendingOutput = Array(bytes[written...])
        }
        updateInterest()
    }

    private func flush() {
        let start = pendingStart
        let written = pendingOutput.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + start, $0.count - start, CInt(MSG_NOSIGNAL)) }
        if written < 0 {
            let code = errno
            if code != EAGAIN && code != EWOULDBLOCK && code != EINTR { lost(ErrnoName.name(code)) }
            return
        }
        pendingStart += written
        if pendingStart == pendingOutput.count {
            pendingOutput = []
            pendingStart = 0
        } else if pendingStart >= 1 << 16 && pendingStart * 2 >= pendingOutput.count {
            // Sent bytes are dropped in large steps: a backlog costs linear copying, not a copy per send.
            pendingOutput.removeFirst(pendingStart)
            pendingStart = 0
        }
        updateInterest()
    }

    private func updateInterest() {
        guard let registration, phase != .connecting else { return }
        EventLoop.shared.modify(registration, interest: pendingOutput.isEmpty ? .read : [.read, .write])
    }

    /// RFC 6455 wants unpredictable masks from browsers; a load tool needs them only to be present.
    private static func maskingKey() -> (UInt8, UInt8, UInt8, UInt8) {
        let value = UInt32.random(in: .min ... .max)
        return (UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8),
                UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 24))
    }

    private static func closePayload(_ code: UInt16) -> [UInt8] {
        [UInt8(code >> 8), UInt8(code & 0xFF)]
    }
}

extension Substring {
    fileprivate var trimmingTrailingSpaces: Substring {
        var text = self
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}
