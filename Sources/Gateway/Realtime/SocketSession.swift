import Shared

/// One Socket.IO client on one WebSocket: the I/O shell around `SocketSessionMachine`. It writes
/// what the machine decides, keeps the timers (heartbeat, deadline, server acks), and makes the
/// asynchronous checks the machine asks for (subscription, revocation, the account) through its
/// host (`RealtimeHub` in production).
@LoopActor
final class SocketSession: WebSocketConnectionDelegate {
    /// The Engine.IO session id (sent in the open packet).
    let engineID: String
    private let connection: WebSocketConnection
    private unowned let host: any SocketSessionHost
    private var machine: SocketSessionMachine
    private var heartbeat: EngineIOHeartbeat
    private var heartbeatTimer: TimerHandle?
    /// Before CONNECT: the connect deadline; after: the token's expiry.
    private var deadlineTimer: TimerHandle?
    private var serverAckTimers: [Int64: TimerHandle] = [:]
    /// The user this socket was admitted as: registered in `UserChannels` and counted by presence
    /// until the socket closes, even when the machine closed it first (a `41`, a revocation).
    private var admittedUserID: Int64?
    /// This socket's typing indicators, created by the first `typing` (see `SocketMessaging`).
    var typing: TypingRelay?
    /// Keeps this socket's commands on the stream in the order it sent them; made by the first command.
    var commandLane: CommandLane?

    init(connection: WebSocketConnection, host: any SocketSessionHost, headerToken: String?, clientAddress: String) {
        self.connection = connection
        self.clientAddress = clientAddress
        self.host = host
        engineID = SecureRandom.token(byteCount: 15)
        machine = SocketSessionMachine(configuration: host.sessionConfiguration, headerToken: headerToken, now: Self.instant(host.clock))
        heartbeat = EngineIOHeartbeat(interval: host.configuration.pingInterval.nanosecondsSaturated,
                                      timeout: host.configuration.pingTimeout.nanosecondsSaturated)
    }

    /// The user, once connected.
    var userID: Int64? { machine.principal?.userID }

    /// The connected user's token, once connected.
    var principal: Principal? { machine.principal }

    /// The client's address (the peer, or the `X-Forwarded-For` client behind a trusted proxy):
    /// the key of the per-IP socket cap.
    let clientAddress: String

    private var clock: any LoopClock { host.clock }

    private func now() -> SocketSessionMachine.Instant { Self.instant(clock) }

    private static func instant(_ clock: any LoopClock) -> SocketSessionMachine.Instant {
        SocketSessionMachine.Instant(monotonic: clock.now(), wallMilliseconds: clock.wallMilliseconds())
    }

    // MARK: Lifecycle

    func start(leftover: [UInt8]) {
        connection.delegate = self
        let open: JSONValue = [
            "sid": .string(engineID),
            "upgrades": [],
            "pingInterval": .int(host.configuration.pingInterval.wholeMilliseconds),
            "pingTimeout": .int(host.configuration.pingTimeout.wholeMilliseconds),
            "maxPayload": .int(Int64(host.configuration.maxPayloadBytes)),
        ]
        connection.send(text: EngineIOPacket.open(open).encoded)
        perform(heartbeat.start(now: clock.now()))
        perform(machine.start())
        connection.start(leftover: leftover)
    }

    /// Graceful shutdown: WebSocket close 1001 ("going away"), which stock clients treat as a lost
    /// transport and answer by reconnecting (through the load balancer, to another gateway). An
    /// Engine.IO close packet is deliberately not sent first: python-engineio reads it as a server
    /// disconnect and then does not reconnect at all.
    func shutdown() {
        connection.close(code: WebSocketCloseCode.goingAway, reason: "server shutting down")
    }

    /// A token or session of this socket's user was revoked.
    func revoke(_ revocation: TokenRevocation) {
        perform(machine.revoke(revocation))
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
    func emit(_ event: SocketEvent, _ data: JSONValue) {
        send(.event(event.name, [data]))
    }

    /// A frame published on the user's channel, already encoded.
    func sendPublished(_ frame: [UInt8]) {
        guard machine.isConnected else { return }
        connection.sendFrame(frame)
    }

    /// Answers the client's event `ackID` with `arguments` (`43<ackID>[...]`).
    func sendAck(_ ackID: Int64, _ arguments: [JSONValue]) {
        guard machine.principal != nil else { return }
        send(.ack(id: ackID, arguments))
    }

    /// Answers the client's event `ackID` with one value.
    func sendAck(_ ackID: Int64, _ value: JSONValue) {
        sendAck(ackID, [value])
    }

    /// A worker's answer to one of this socket's commands (or the timeout standing in for it): the
    /// ack (`[<result>]` or `[{"error": {code, message}}]`) when the socket asked for one, else the
    /// event `error` on failure. Success without an ack says nothing: the events on the user's
    /// channel (`messageSent`, ...) say it all.
    func answer(_ reply: ChatReply) {
        if let ack = reply.reply.ack {
            sendAck(ack, [reply.outcome.ackArgument])
        } else if case .failed(let code, let message, let details) = reply.outcome {
            emitError(ChatErrors.apiError(code: code, message: message, details: details), ackID: nil)
        }
    }

    /// Reports a problem with something the client sent (a refusal, a failed read): as the ack's
    /// `{"error": {code, message}}` when it asked for one, as the event `error` otherwise.
    func emitError(_ error: APIError, ackID: Int64?) {
        send(SocketSessionMachine.errorPacket(error, ackID: ackID))
    }

    // MARK: WebSocketConnectionDelegate

    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        switch message {
        case .binary: perform(machine.receivedBinary())
        case .text(let text):
            // The heartbeat's pong, which every idle socket sends once per interval, goes straight to
            // the heartbeat: no clock pair, no action list (the machine would only say .pongReceived).
            if text.utf8.count == 1, text.utf8.first == UInt8(ascii: "3"), machine.state != .closed {
                return perform(heartbeat.pongReceived(now: clock.now()))
            }
            perform(machine.received(text: text, now: now()))
        }
    }

    func webSocketDidClose(_ connection: WebSocketConnection, code: UInt16) {
        if let heartbeatTimer { clock.cancel(heartbeatTimer) }
        if let deadlineTimer { clock.cancel(deadlineTimer) }
        for timer in serverAckTimers.values { clock.cancel(timer) }
        heartbeatTimer = nil
        deadlineTimer = nil
        serverAckTimers = [:]
        // The typist is gone: its receivers get stopTyping now rather than after the timeout.
        typing?.stopAll()
        typing = nil
        machine.closed()
        host.sessionClosed(self, userID: admittedUserID)
        admittedUserID = nil
    }

    // MARK: Actions

    private func perform(_ actions: [SocketSessionMachine.Action]) {
        for action in actions { perform(action) }
    }

    private func perform(_ action: SocketSessionMachine.Action) {
        switch action {
        case .sendEngineIO(let packet):
            connection.send(text: packet.encoded)
        case .send(let packet):
            send(packet)
        case .pongReceived:
            perform(heartbeat.pongReceived(now: clock.now()))
        case .close(let code, let reason):
            connection.close(code: code, reason: reason)
        case .admit(let principal):
            Task { @LoopActor in await self.admit(principal) }
        case .confirmToken(let principal, let ackID):
            Task { @LoopActor in await self.confirm(principal, ackID: ackID) }
        case .armDeadline(let delay):
            if let deadlineTimer { clock.cancel(deadlineTimer) }
            deadlineTimer = clock.schedule(after: delay) { [weak self] in
                guard let self else { return }
                self.deadlineTimer = nil
                self.perform(self.machine.deadlineFired(now: self.now()))
            }
        case .countEvent(let name):
            GatewayMetrics.socketEventsIn.increment(GatewayMetrics.eventLabel(name))
        case .dispatch(let request):
            host.dispatch(request, from: self)
        case .didConnect(let principal):
            // Writing the CONNECT answer may have closed the socket already (a full output queue).
            guard machine.principal != nil else { break }
            admittedUserID = principal.userID
            host.sessionConnected(self, userID: principal.userID)
        case .armServerAckTimeout(let id, let delay):
            serverAckTimers[id] = clock.schedule(after: delay) { [weak self] in
                guard let self else { return }
                self.serverAckTimers[id] = nil
                self.perform(self.machine.serverAckTimedOut(id))
            }
        case .deliveryAcknowledged(let messageID, let userID):
            host.deliveryAcknowledged(messageID, userID: userID)
        }
    }

    /// CONNECT with a valid token: subscribe the user's channel first (so a revocation published
    /// from now on reaches this socket), then check revocation and the account.
    private func admit(_ principal: Principal) async {
        if let refusal = await host.admit(self, principal: principal) {
            perform(machine.refused(refusal))
            if machine.principal == nil { host.release(self, userID: principal.userID) }
            return
        }
        perform(machine.admitted(socketID: SecureRandom.token(byteCount: 15), now: now()))
        // Refused after all (a revocation arrived during the checks), or closed meanwhile.
        if machine.principal != principal { host.release(self, userID: principal.userID) }
    }

    private func confirm(_ principal: Principal, ackID: Int64?) async {
        do {
            try await host.checkNotRevoked(principal)
            perform(machine.reauthenticated(principal, ackID: ackID, now: now()))
        } catch {
            let refusal = APIError.from(error)
            perform(machine.reauthenticationFailed(refusal, ackID: ackID))
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
        if let heartbeatTimer { clock.cancel(heartbeatTimer) }
        let grain = Self.heartbeatGrainNanoseconds
        let rounded = deadline.addingSaturated(grain - 1) / grain * grain
        heartbeatTimer = clock.schedule(after: MonotonicClock.duration(until: rounded, from: clock.now())) { [weak self] in
            guard let self else { return }
            self.perform(self.heartbeat.timerFired(now: self.clock.now()))
        }
    }
}

extension ChatReply.Outcome {
    /// The Socket.IO ack argument: the result, or `{"error": {code, message}}`.
    var ackArgument: JSONValue {
        switch self {
        case .ok(let result): result
        case .failed(let code, let message, let details): ["error": APIError.errorObject(code: code, message: message, details: details)]
        }
    }
}
