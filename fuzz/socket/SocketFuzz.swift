// libFuzzer target for the real socket stack: ONE `SocketSession` (Gateway/Realtime) on a real
// `WebSocketConnection` over an `InMemoryConnection`, every timer on a `ManualClock`, hosted by a
// stand-in `SocketSessionHost` whose answers (admission, revocation check, event replies) come from
// the input. The input is a little program: text packets from templates (CONNECT with a validly
// signed token whose claims are fuzzed, events with and without acks, client acks, Engine.IO
// control packets, other namespaces, raw text), arbitrary masked frames of any opcode and
// fragmentation, raw bytes straight onto the wire in arbitrary pieces, clock advances (small, huge),
// a peer that stops and resumes reading, EOF, revocations, worker answers and published frames, and
// the gateway's drain. The pure protocol machine has its own harness (fuzz/session); this one
// checks the shell: timers, the async checks, the write path and the close path.
// Invariants (a violation is a crash libFuzzer reports):
// - everything the server writes parses as server WebSocket frames (unmasked, valid lengths, valid
//   close codes); every text frame is an Engine.IO packet, and every message a Socket.IO packet;
// - nothing is written after the server's close frame;
// - the host hears `sessionConnected` at most once and never after `sessionClosed`;
// - `sessionClosed` comes exactly once: when the transport has closed at the latest, and after it
//   the transport takes no more writes;
// - the clock's live timers stay bounded (heartbeat, deadline, close, server acks);
// - after the end of the program (connection dropped, clock run far ahead) no timer is left.
// Built by fuzz/run-socket-fuzz.sh with -sanitize=fuzzer,address.
import Glibc
import Shared

private func fail(_ message: String) -> Never {
    let bytes = Array(("socket fuzz invariant: " + message + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    abort()
}

/// Settings the realtime configuration reads, at values the fuzzer may shrink.
private func realtimeConfiguration(_ input: inout FuzzInput) -> RealtimeConfiguration {
    let environment: [String: String] = [
        "SOCKETIO_PING_INTERVAL_MS": String(input.pick([25_000, 100, 1_000, 600_000])),
        "SOCKETIO_PING_TIMEOUT_MS": String(input.pick([20_000, 100, 5_000])),
        "SOCKETIO_CONNECT_TIMEOUT_MS": String(input.pick([45_000, 100, 600_000])),
        "SOCKETIO_MAX_PAYLOAD_BYTES": String(input.pick([1_000_000, 1024, 4096])),
        "MAX_CONNECTIONS_PER_IP": "100",
        "WS_MAX_PENDING_BYTES": String(input.pick([1 << 20, 4096, 16_384])),
        "ALLOWED_ORIGINS": "*",
        "SOCKET_EVENT_RATE": String(input.pick([50, 1, 1_000])),
        "SOCKET_EVENT_BURST": String(input.pick([100, 1, 3])),
        "SOCKET_EVENT_FLOOD_CLOSE": String(input.pick([200, 0, 1, 5])),
        "SOCKET_DIALECT": input.pick(Dialect.allCases.map(\.rawValue)),
    ]
    let settings = RealtimeConfiguration.settings + [
        Setting("SOCKETIO_PING_INTERVAL_MS", nil, ""), Setting("SOCKETIO_PING_TIMEOUT_MS", nil, ""),
        Setting("SOCKETIO_CONNECT_TIMEOUT_MS", nil, ""), Setting("SOCKETIO_MAX_PAYLOAD_BYTES", nil, ""),
        Setting("MAX_CONNECTIONS_PER_IP", nil, ""), Setting("WS_MAX_PENDING_BYTES", nil, ""), Setting("ALLOWED_ORIGINS", nil, ""),
    ]
    do {
        return try RealtimeConfiguration(reader: SettingsReader(settings: settings, environment: environment), isDevelopment: true)
    } catch {
        fail("fuzz configuration refused: \(error)")
    }
}

/// The session's host, answering from the input.
@LoopActor
private final class FuzzHost: SocketSessionHost {
    let configuration: RealtimeConfiguration
    let sessionConfiguration: SocketSessionMachine.SharedConfiguration
    let clock: any LoopClock
    /// Answers to the asynchronous checks, read when asked.
    var answers: FuzzInput
    var connectedCount = 0
    var closedCount = 0
    /// Gateway events dispatched and not answered yet.
    var dispatched: [SocketSessionMachine.EventRequest] = []

    init(configuration: RealtimeConfiguration, signer: JWTSigner, clock: any LoopClock, answers: FuzzInput) {
        self.configuration = configuration
        self.clock = clock
        self.answers = answers
        sessionConfiguration = SocketSessionMachine.SharedConfiguration(SocketSessionMachine.Configuration(
            signer: signer, connectTimeout: configuration.connectTimeout,
            eventBudget: configuration.eventBudget))
    }

    private func refusal() -> APIError? {
        switch answers.below(5) {
        case 0: APIError(.tokenRevoked)
        case 1: APIError(.redisUnavailable, message: "fuzz")
        case 2: APIError(.tokenRevoked, message: "account gone")
        default: nil
        }
    }

    func admit(_ session: SocketSession, principal: Principal) async -> APIError? {
        // Sometimes the answer takes a few hops, as a Redis round trip would.
        for _ in 0..<answers.below(3) { await Task.yield() }
        return refusal()
    }

    func checkNotRevoked(_ principal: Principal) async throws {
        await Task.yield()
        if let refusal = refusal() { throw refusal }
    }

    func dispatch(_ request: SocketSessionMachine.EventRequest, from session: SocketSession) {
        dispatched.append(request)
    }

    /// Connection state recovery needs Postgres and Redis: off in this harness.
    var recovery: SessionRecovery? { nil }

    func deliveryAcknowledged(_ messageID: Int64, userID: Int64) {}

    func dispatchDialect(_ request: SocketSessionMachine.DialectRequest, from session: SocketSession) {}

    func sessionConnected(_ session: SocketSession, userID: Int64) {
        if closedCount > 0 { fail("sessionConnected after sessionClosed") }
        connectedCount += 1
        if connectedCount > 1 { fail("sessionConnected twice") }
    }

    func release(_ session: SocketSession, userID: Int64) {}

    func sessionClosed(_ session: SocketSession, userID: Int64?) {
        closedCount += 1
        if closedCount > 1 { fail("sessionClosed twice") }
        if userID != nil && connectedCount == 0 { fail("closed as connected but never connected") }
    }
}

/// Reads what the server wrote, checking each frame.
private struct WireChecker {
    var parser = WebSocketParser(role: .client, limits: WebSocketLimits())
    var sawClose = false

    mutating func check(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        if sawClose { fail("\(bytes.count) bytes written after the close frame") }
        parser.append(bytes)
        while true {
            switch parser.next() {
            case .needMoreData:
                return
            case .message(.text(let text)):
                let packet: EngineIOPacket
                do { packet = try EngineIOPacket.decode(text) } catch { fail("server wrote a bad Engine.IO packet: \(text.prefix(200))") }
                if case .message(let payload) = packet {
                    do { _ = try SocketIOPacket.decode(payload) } catch { fail("server wrote a bad Socket.IO packet: \(payload.prefix(200))") }
                }
            case .message(.binary):
                fail("server wrote a binary message")
            case .ping, .pong:
                continue
            case .close:
                // The parser stops at the close frame; later writes are checked by `sawClose`.
                sawClose = true
                return
            case .failure(let code, let reason):
                fail("server wrote an invalid frame (\(code)): \(reason)")
            }
        }
    }
}

private let eventNames = ["sendMessage", "sync", "typing", "stopTyping", "messageRead", "markAllAsRead", "getOnlineUsers",
                          "authenticate", "requestServerAck", "whoami", "error", "disconnect", "unknownEvent", ""]

@LoopActor
private func runProgram(_ bytes: [UInt8]) async {
    var input = FuzzInput(bytes)
    var setup = input.chunk()
    let configuration = realtimeConfiguration(&setup)
    let signer = JWTSigner(secret: fuzzSecret, issuer: nil, audience: nil, leewaySeconds: setup.pick([5, 0, 60]))
    let clock = ManualClock(wallMilliseconds: normalNow * 1000)
    let host = FuzzHost(configuration: configuration, signer: signer, clock: clock, answers: input.chunk())
    let transport = InMemoryConnection()
    let connection = WebSocketConnection(transport: transport, configuration: configuration.webSocket, clock: clock, release: {})
    let headerToken: String? = setup.bool() ? TokenForge.token(payloadJSON: setup.claimsJSON(now: normalNow)) : nil
    var session: SocketSession? = SocketSession(link: connection, engineID: "fuzz.session", host: host, headerToken: headerToken,
                                                clientAddress: "10.0.0.1")
    var wire = WireChecker()
    session?.start()
    connection.delegate = session
    connection.start(leftover: [])
    wire.check(transport.takeOutput())
    var ackCounter: Int64 = 0

    func sendText(_ text: String, _ step: inout FuzzInput) {
        let payload = Array(text.utf8)
        if step.bool() || payload.count < 2 {
            transport.receive(WebSocketFrameEncoder.frame(.text, payload: payload, maskingKey: (1, 2, 3, 4)))
        } else {
            // Fragmented: a text frame and a continuation.
            let cut = step.below(payload.count)
            transport.receive(WebSocketFrameEncoder.frame(.text, payload: Array(payload[..<cut]), fin: false, maskingKey: (5, 6, 7, 8)))
            transport.receive(WebSocketFrameEncoder.frame(.continuation, payload: Array(payload[cut...]), maskingKey: (5, 6, 7, 8)))
        }
    }

    var steps = 0
    while !input.isAtEnd && steps < 64 {
        steps += 1
        var step = input.chunk()
        switch step.below(14) {
        case 0, 1:
            // CONNECT, usually with a validly signed token.
            let token = TokenForge.token(payloadJSON: step.claimsJSON(now: normalNow))
            let auth = step.pick(["{\"token\":\(JSONValue.string(token).jsonString)}", "", "{}", "{\"token\":7}", "[1]"]) { $0.text(maximum: 40) }
            sendText(step.pick(["40", "40/admin,"]) + auth, &step)
        case 2, 3:
            // An event, with or without an ack id.
            let name = step.pick(eventNames) { $0.text(maximum: 12) }
            let argument: String
            if name == "authenticate" {
                argument = JSONValue.object(["token": .string(TokenForge.token(payloadJSON: step.claimsJSON(now: normalNow)))]).jsonString
            } else if name == "requestServerAck" {
                argument = step.pick(["{\"event\":\"probe\"}", "{\"event\":\"disconnect\"}", "{}", "7"])
            } else {
                argument = step.pick(["{\"receiverId\":2,\"content\":\"hi\"}", "{}", "null", "[]", "\"x\""]) { $0.text(maximum: 64) }
            }
            ackCounter &+= 1
            let ack = step.bool() ? String(step.pick([ackCounter, 0, -1, Int64.max])) : ""
            sendText("42" + ack + "[" + JSONValue.string(name).jsonString + "," + argument + "]", &step)
        case 4:
            // A client ack, an Engine.IO control packet, a disconnect, or raw text.
            let text = step.pick(["430[\"ok\"]", "431[]", "43999[1]", "2", "3", "2probe", "1", "6", "5", "41", "4", "0{}", "",
                                  "44{}", "42", "b"]) { $0.text(maximum: 80) }
            sendText(text, &step)
        case 5:
            // An arbitrary masked frame (any opcode, fin, payload).
            let opcode = step.pick([WebSocketOpcode.text, .binary, .continuation, .ping, .pong, .close])
            // The encoder refuses control frames over 125 bytes (raw bytes, case 6, cover invalid frames).
            let isControl = opcode == .ping || opcode == .pong || opcode == .close
            transport.receive(WebSocketFrameEncoder.frame(opcode, payload: step.data(maximum: isControl ? 125 : 300),
                                                          fin: isControl || step.bool(),
                                                          maskingKey: (step.byte(), step.byte(), step.byte(), step.byte())))
        case 6:
            // Raw bytes in pieces.
            transport.receive(step.data(maximum: 300), chunkSize: 1 + step.below(32))
        case 7:
            clock.advance(by: .milliseconds(step.pick([1, 100, 1_000, 20_000, 25_100, 45_100, 3_600_000, 86_400_000 * 2])))
        case 8:
            if step.bool() { transport.peerStopsReading() } else { transport.peerResumesReading() }
        case 9:
            transport.peerClosesInput()
        case 10:
            session?.revoke(TokenRevocation(tokenID: step.pick(["jti-0", "jti-1", "x"]), sessionID: step.pick(["sid-0", "sid-1", nil])))
        case 11:
            // The host answers a dispatched event, or publishes to the user.
            if !host.dispatched.isEmpty, step.bool() {
                let request = host.dispatched.removeFirst()
                if let ackID = request.ackID, step.bool() {
                    session?.sendAck(ackID, step.pick([JSONValue.object(["ok": true]), .null, .array([])]))
                } else {
                    session?.emitError(APIError(.validationFailed, message: "fuzz"), ackID: request.ackID)
                }
            } else if step.bool() {
                session?.sendPublished(Publication(event: "receiveMessage", data: ["id": 1, "conversationId": 2, "seq": 3],
                                                   mark: .message(conversation: 2, seq: 3)))
            } else {
                let outcome: ChatReply.Outcome = step.bool() ? .ok(["id": 3]) : .failed(code: ErrorCode.rateLimited.name, message: "slow down",
                                                                                       details: ["retryAfterMs": .int(step.int64())])
                session?.answer(ChatReply(reply: ReplyAddress(gateway: "g", engineSession: session?.engineID, ack: step.bool() ? 1 : nil),
                                          outcome: outcome))
            }
        case 12:
            session?.shutdown()
        default:
            // Let the asynchronous checks run.
            for _ in 0..<(1 + step.below(4)) { await Task.yield() }
        }
        wire.check(transport.takeOutput())
        if clock.pendingTimers > 64 { fail("\(clock.pendingTimers) live timers") }
        if transport.isClosed {
            for _ in 0..<4 { await Task.yield() }
            if host.closedCount != 1 { fail("transport closed but sessionClosed called \(host.closedCount) times") }
        }
        // The WebSocket is closed before its transport finishes flushing, never the other way round.
        if host.closedCount == 1 && transport.isWritable { fail("sessionClosed but the transport still takes writes") }
    }

    // The end: the peer goes away; every timer runs out; nothing may be left.
    transport.peerResumesReading()
    wire.check(transport.takeOutput())
    transport.closeNow()
    for _ in 0..<4 { await Task.yield() }
    if host.closedCount != 1 { fail("dropped transport: sessionClosed called \(host.closedCount) times") }
    clock.advance(by: .milliseconds(86_400_000 * 30))
    for _ in 0..<4 { await Task.yield() }
    if clock.pendingTimers != 0 { fail("\(clock.pendingTimers) timers left after the socket closed") }
    session = nil
    // The gateway's hub outlives its sessions; a check still in flight may reach this host later.
    retiredHosts.append(host)
    if retiredHosts.count > 64 { retiredHosts.removeFirst() }
}

@LoopActor private var retiredHosts: [AnyObject] = []

private let started: Bool = {
    EventLoop.shared.startInBackground()
    return true
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSocket(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    _ = started
    let bytes = data.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
    let done = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    sem_init(done, 0, 0)
    let doneAddress = UInt(bitPattern: done)
    Task { @LoopActor in
        await runProgram(bytes)
        sem_post(UnsafeMutablePointer<sem_t>(bitPattern: doneAddress)!)
    }
    while sem_wait(done) != 0 {}
    sem_destroy(done)
    done.deallocate()
    return 0
}
