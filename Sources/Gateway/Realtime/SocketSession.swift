import Shared

/// One Socket.IO client on one WebSocket: Engine.IO open and heartbeat, the Socket.IO CONNECT with
/// token authentication, events and acks both ways, token expiry, and delivery of the user's events.
@LoopActor
final class SocketSession: WebSocketConnectionDelegate {
    private enum State {
        /// Open sent; waiting for the Socket.IO CONNECT.
        case awaitingConnect
        /// CONNECT received; checking the token and subscribing.
        case authenticating
        case connected(Principal)
        case closed
    }

    /// The Engine.IO session id (sent in the open packet).
    let engineID: String
    private var socketID = ""
    private let connection: WebSocketConnection
    private unowned let hub: RealtimeHub
    /// A bearer token from the upgrade request's `Authorization` header, used when CONNECT has none.
    private let headerToken: String?
    private var state = State.awaitingConnect
    private var heartbeat: EngineIOHeartbeat
    private var heartbeatTimer: TimerHandle?
    /// Before CONNECT: the connect deadline; after: the token's expiry.
    private var deadlineTimer: TimerHandle?
    private var nextAckID: Int64 = 0
    private var pendingAcks: [Int64: CheckedContinuation<[JSONValue]?, Never>] = [:]
    /// This socket's typing indicators, created by the first `typing` (see `SocketMessaging`).
    var typing: TypingRelay?

    /// Most server→client acks a socket may have outstanding (`requestServerAck`).
    private static let maxPendingAcks = 16
    private static let serverAckTimeoutMilliseconds: Int64 = 10_000

    init(connection: WebSocketConnection, hub: RealtimeHub, headerToken: String?, clientAddress: String) {
        self.connection = connection
        self.clientAddress = clientAddress
        self.hub = hub
        self.headerToken = headerToken
        engineID = SecureRandom.token(byteCount: 15)
        heartbeat = EngineIOHeartbeat(interval: UInt64(hub.configuration.pingIntervalMilliseconds) * 1_000_000,
                                      timeout: UInt64(hub.configuration.pingTimeoutMilliseconds) * 1_000_000)
    }

    /// The user, once connected.
    var userID: Int64? {
        if case .connected(let principal) = state { return principal.userID }
        return nil
    }

    /// The client's address (the peer, or the `X-Forwarded-For` client behind a trusted proxy):
    /// the key of the per-IP socket cap.
    let clientAddress: String

    // MARK: Lifecycle

    func start(leftover: [UInt8]) {
        connection.delegate = self
        let open: JSONValue = [
            "sid": .string(engineID),
            "upgrades": [],
            "pingInterval": .int(hub.configuration.pingIntervalMilliseconds),
            "pingTimeout": .int(hub.configuration.pingTimeoutMilliseconds),
            "maxPayload": .int(Int64(hub.configuration.maxPayloadBytes)),
        ]
        connection.send(text: EngineIOPacket.open(open).encoded)
        perform(heartbeat.start(now: MonotonicClock.now()))
        deadlineTimer = EventLoop.shared.schedule(afterMilliseconds: hub.configuration.connectTimeoutMilliseconds) { [weak self] in
            guard let self, case .awaitingConnect = self.state else { return }
            self.connection.close(code: WebSocketCloseCode.policyViolation, reason: "no Socket.IO CONNECT in time")
        }
        connection.start(leftover: leftover)
    }

    /// Graceful shutdown: WebSocket close 1001 ("going away"), which stock clients treat as a lost
    /// transport and answer by reconnecting (through the load balancer, to another gateway). An
    /// Engine.IO close packet is deliberately not sent first: python-engineio reads it as a server
    /// disconnect and then does not reconnect at all.
    func shutdown() {
        connection.close(code: WebSocketCloseCode.goingAway, reason: "server shutting down")
    }

    // MARK: Sending

    /// The WebSocket frame carrying a Socket.IO packet (inside an Engine.IO message).
    nonisolated static func frame(for packet: SocketIOPacket) -> [UInt8] {
        WebSocketFrameEncoder.text(EngineIOPacket.message(packet.encoded).encoded)
    }

    private func send(_ packet: SocketIOPacket) {
        connection.sendFrame(Self.frame(for: packet))
    }

    /// Emits an event to this client.
    func emit(_ event: String, _ data: JSONValue) {
        send(.event(event, [data]))
    }

    /// A frame published on the user's channel, already encoded.
    func sendPublished(_ frame: [UInt8]) {
        guard case .connected = state else { return }
        connection.sendFrame(frame)
    }

    /// Answers the client's event `ackID` with `arguments` (`43<ackID>[...]`).
    func sendAck(_ ackID: Int64, _ arguments: [JSONValue]) {
        guard case .connected = state else { return }
        send(.ack(id: ackID, arguments))
    }

    /// Answers the client's event `ackID` with one value.
    func sendAck(_ ackID: Int64, _ value: JSONValue) {
        sendAck(ackID, [value])
    }

    /// Reports a problem with something the client sent: as the ack's `{"error": {code, message}}`
    /// when it asked for one, as the event `error` otherwise.
    func emitError(code: String, message: String, details: JSONObject = [:], ackID: Int64?) {
        let error = ChatReply.errorObject(code: code, message: message, details: details)
        if let ackID {
            send(.ack(id: ackID, [["error": error]]))
        } else {
            emit("error", error)
        }
    }

    // MARK: WebSocketConnectionDelegate

    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        switch message {
        case .binary:
            emitError(code: "binary_not_supported", message: "binary packets are not supported; send JSON text", ackID: nil)
        case .text(let text):
            let packet: EngineIOPacket
            do {
                packet = try EngineIOPacket.decode(text)
            } catch {
                return protocolViolation("malformed Engine.IO packet")
            }
            switch packet {
            case .message(let body): handleSocketIO(body)
            case .pong: perform(heartbeat.pongReceived(now: MonotonicClock.now()))
            case .ping(let probe): connection.send(text: EngineIOPacket.pong(probe).encoded)
            case .close: connection.close(code: WebSocketCloseCode.normalClosure)
            case .noop, .upgrade: break
            case .open: protocolViolation("clients do not send open packets")
            }
        }
    }

    func webSocketDidClose(_ connection: WebSocketConnection, code: UInt16) {
        if let heartbeatTimer { EventLoop.shared.cancel(heartbeatTimer) }
        if let deadlineTimer { EventLoop.shared.cancel(deadlineTimer) }
        heartbeatTimer = nil
        deadlineTimer = nil
        let acks = pendingAcks
        pendingAcks = [:]
        for continuation in acks.values { continuation.resume(returning: nil) }
        // The typist is gone: its receivers get stopTyping now rather than after the timeout.
        typing?.stopAll()
        typing = nil
        let userID = self.userID
        state = .closed
        hub.sessionClosed(self, userID: userID)
    }

    private func protocolViolation(_ reason: String) {
        connection.close(code: WebSocketCloseCode.protocolError, reason: reason)
    }

    // MARK: Socket.IO

    private func handleSocketIO(_ body: String) {
        let packet: SocketIOPacket
        do {
            packet = try SocketIOPacket.decode(body)
        } catch {
            return protocolViolation("malformed Socket.IO packet")
        }
        switch packet.type {
        case .connect:
            handleConnect(packet)
        case .event:
            guard case .connected(let principal) = state else {
                return emitError(code: "not_connected", message: "send CONNECT first", ackID: packet.ackID)
            }
            handleEvent(packet, principal: principal)
        case .ack:
            if let id = packet.ackID, let continuation = pendingAcks.removeValue(forKey: id) {
                continuation.resume(returning: packet.eventArgumentsForAck)
            }
        case .disconnect:
            connection.close(code: WebSocketCloseCode.normalClosure)
        case .binaryEvent, .binaryAck:
            emitError(code: "binary_not_supported", message: "binary events are not supported; send JSON", ackID: packet.ackID)
        case .connectError:
            protocolViolation("clients do not send CONNECT_ERROR")
        }
    }

    private func handleConnect(_ packet: SocketIOPacket) {
        guard packet.namespace == "/" else {
            return send(.connectError(message: "unknown namespace \(packet.namespace)", code: "invalid_namespace",
                                      namespace: packet.namespace))
        }
        switch state {
        case .awaitingConnect: break
        case .connected: return send(.connect(sid: socketID))  // idempotent
        case .authenticating, .closed: return
        }
        var token = headerToken
        if case .object(let auth)? = packet.payload, case .string(let given)? = auth["token"] { token = given }
        guard let token, !token.isEmpty else {
            return send(.connectError(message: "send the access token as auth {token} or an Authorization: Bearer header", code: "token_missing"))
        }
        state = .authenticating
        Task { @LoopActor in await self.authenticate(token) }
    }

    private func authenticate(_ token: String) async {
        do {
            let principal = try await hub.authenticate(token)
            guard case .authenticating = state else { return }
            try await hub.channels.register(self, userID: principal.userID)
            guard case .authenticating = state else {
                // Closed while subscribing.
                return hub.channels.unregister(self, userID: principal.userID)
            }
            state = .connected(principal)
            socketID = SecureRandom.token(byteCount: 15)
            scheduleExpiry(principal)
            send(.connect(sid: socketID))
            hub.presence?.socketConnected(self, userID: principal.userID)
        } catch {
            guard case .authenticating = state else { return }
            state = .awaitingConnect
            let (code, message) = Self.describe(error)
            send(.connectError(message: message, code: code))
        }
    }

    private static func describe(_ error: any Error) -> (code: String, message: String) {
        switch error {
        case let error as APIError: (error.code, error.message)
        case let error as RedisError: ("redis_unavailable", error.message)
        default: ("internal_error", "authentication failed")
        }
    }

    private func scheduleExpiry(_ principal: Principal) {
        if let deadlineTimer { EventLoop.shared.cancel(deadlineTimer) }
        let expiresAtMilliseconds = (principal.expiresAt + hub.leewaySeconds) * 1000
        let delay = max(0, expiresAtMilliseconds - WallClock.milliseconds())
        deadlineTimer = EventLoop.shared.schedule(afterMilliseconds: delay) { [weak self] in
            self?.tokenExpired()
        }
    }

    private func tokenExpired() {
        deadlineTimer = nil
        guard case .connected = state else { return }
        emit("error", ["code": "token_expired", "message": "the access token expired; reconnect with a fresh token"])
        send(.disconnect)
        connection.close(code: WebSocketCloseCode.policyViolation, reason: "token expired")
    }

    // MARK: Events

    private func handleEvent(_ packet: SocketIOPacket, principal: Principal) {
        guard let name = packet.eventName else { return protocolViolation("event without a name") }
        GatewayMetrics.socketEventsIn.increment(GatewayMetrics.eventLabel(name))
        let arguments = packet.eventArguments
        let first = arguments.first ?? .null
        switch name {
        case "ping":
            var reply: JSONObject = ["pong": true, "time": .int(WallClock.milliseconds())]
            if !arguments.isEmpty { reply["echo"] = first }
            if let ackID = packet.ackID { send(.ack(id: ackID, [.object(reply)])) } else { emit("pong", .object(reply)) }
        case "whoami":
            let reply: JSONValue = ["userId": .int(principal.userID), "socketId": .string(socketID)]
            if let ackID = packet.ackID { send(.ack(id: ackID, [reply])) } else { emit("whoami", reply) }
        case "authenticate":
            reauthenticate(first, ackID: packet.ackID, current: principal)
        case "requestServerAck":
            requestServerAck(first, ackID: packet.ackID)
        case "getOnlineUsers":
            guard let presence = hub.presence else {
                return emitError(code: "presence_unavailable", message: "presence is not available on this gateway", ackID: packet.ackID)
            }
            let ackID = packet.ackID
            Task { @LoopActor in
                guard let list = await presence.onlineContacts(of: principal.userID) else {
                    return self.emitError(code: "database_unavailable", message: "the database is unavailable, retry shortly", ackID: ackID)
                }
                if let ackID { self.sendAck(ackID, list) } else { self.emit("onlineUsers", list) }
            }
        case _ where SocketMessaging.events.contains(name):
            guard let messaging = hub.messaging else {
                return emitError(code: "messaging_unavailable", message: "messaging is not available on this gateway", ackID: packet.ackID)
            }
            messaging.handle(name, first, ackID: packet.ackID, session: self, userID: principal.userID)
        default:
            emitError(code: "unknown_event", message: "unknown event '\(name)'", ackID: packet.ackID)
        }
    }

    /// `authenticate {token}`: a fresh token for the same user extends the socket's life.
    private func reauthenticate(_ argument: JSONValue, ackID: Int64?, current: Principal) {
        guard case .object(let body) = argument, case .string(let token)? = body["token"] else {
            return emitError(code: "validation_failed", message: "field 'token' is required", ackID: ackID)
        }
        Task { @LoopActor in
            do {
                let principal = try await hub.authenticate(token)
                guard case .connected = state else { return }
                guard principal.userID == current.userID else {
                    return emitError(code: "token_user_mismatch", message: "the token belongs to another user", ackID: ackID)
                }
                state = .connected(principal)
                scheduleExpiry(principal)
                if let ackID { send(.ack(id: ackID, [["ok": true, "expiresAt": .int(principal.expiresAt * 1000)]])) }
            } catch {
                let (code, message) = Self.describe(error)
                emitError(code: code, message: message, ackID: ackID)
            }
        }
    }

    /// Diagnostic of server→client acks: emits `{event}` with an ack id to this client and answers
    /// the request's own ack with what the client acknowledged (`{"clientAck": [...]}`).
    private func requestServerAck(_ argument: JSONValue, ackID: Int64?) {
        guard case .object(let body) = argument, case .string(let event)? = body["event"], !event.isEmpty else {
            return emitError(code: "validation_failed", message: "field 'event' is required", ackID: ackID)
        }
        guard pendingAcks.count < Self.maxPendingAcks else {
            return emitError(code: "too_many_pending_acks", message: "wait for earlier acks", ackID: ackID)
        }
        Task { @LoopActor in
            let answer = await self.emitWithAck(event, body["data"] ?? .null)
            guard let ackID else { return }
            if let answer {
                self.send(.ack(id: ackID, [["clientAck": .array(answer)]]))
            } else {
                self.send(.ack(id: ackID, [["error": ["code": "ack_timeout", "message": "the client did not acknowledge in time"]]]))
            }
        }
    }

    /// Emits an event asking for an ack; nil on timeout or close.
    func emitWithAck(_ event: String, _ data: JSONValue) async -> [JSONValue]? {
        guard case .connected = state else { return nil }
        nextAckID += 1
        let id = nextAckID
        send(.event(event, [data], ackID: id))
        return await withCheckedContinuation { continuation in
            pendingAcks[id] = continuation
            EventLoop.shared.schedule(afterMilliseconds: Self.serverAckTimeoutMilliseconds) { [weak self] in
                self?.pendingAcks.removeValue(forKey: id)?.resume(returning: nil)
            }
        }
    }

    // MARK: Heartbeat

    private func perform(_ action: EngineIOHeartbeat.Action) {
        switch action {
        case .none:
            break
        case .schedule(let deadline):
            armHeartbeat(deadline)
        case .ping(let deadline):
            connection.sendFrame(Self.pingFrame)
            armHeartbeat(deadline)
        case .timedOut:
            heartbeatTimer = nil
            connection.close(code: WebSocketCloseCode.goingAway, reason: "ping timeout")
        }
    }

    /// The Engine.IO ping, encoded once.
    private static let pingFrame = WebSocketFrameEncoder.text(EngineIOPacket.ping(nil).encoded)
    /// Heartbeat deadlines are rounded up to this grain, so one loop wake-up serves every socket
    /// due in the same slice instead of one wake-up per socket.
    private static let heartbeatGrainNanoseconds: UInt64 = 100_000_000

    private func armHeartbeat(_ deadline: UInt64) {
        if let heartbeatTimer { EventLoop.shared.cancel(heartbeatTimer) }
        let grain = Self.heartbeatGrainNanoseconds
        let rounded = (deadline + grain - 1) / grain * grain
        let now = MonotonicClock.now()
        let milliseconds = rounded > now ? Int64((rounded - now + 999_999) / 1_000_000) : 0
        heartbeatTimer = EventLoop.shared.schedule(afterMilliseconds: milliseconds) { [weak self] in
            guard let self else { return }
            self.perform(self.heartbeat.timerFired(now: MonotonicClock.now()))
        }
    }
}

extension SocketIOPacket {
    /// The arguments of an ACK packet.
    var eventArgumentsForAck: [JSONValue] {
        if case .array(let values)? = payload { return values }
        return []
    }
}
