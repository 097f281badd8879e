import Shared

/// One Socket.IO client on one Engine.IO session (a WebSocket, or HTTP long-polling until it
/// upgrades): the I/O shell around `SocketSessionMachine`. It writes
/// what the machine decides, keeps the timers (heartbeat, deadline, server acks), and makes the
/// asynchronous checks the machine asks for (subscription, revocation, the account) through its
/// host (`RealtimeHub` in production).
@LoopActor
final class SocketSession: WebSocketConnectionDelegate {
    /// The Engine.IO session id (sent in the open packet).
    let engineID: String
    /// The transport: a WebSocket, or long-polling until the client upgrades.
    private var link: any EngineLink
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
    /// Whether the session moved from long-polling to a WebSocket (a poll for it is a bad request).
    private(set) var upgraded = false
    /// Set once the transport closed (`transportClosed` runs once).
    private var transportEnded = false
    /// Connection state recovery (issue 15): this socket's chain (`pid`) and the position written
    /// to it; nil while not connected or when recovery is off.
    private(set) var recoveryChain: RecoveryChain?
    /// Published events held while the session is being recovered (written after the replay,
    /// without the ones it covers); nil when events go straight to the client.
    private var held: [Publication]?
    private var heldOverflowed = false
    /// Most events held during a recovery; beyond, the recovery becomes a resync.
    static let maxHeldEvents = 10_000
    /// Seed 003 sockets (issue 16): the other member of each direct conversation named by id.
    var conversationPartners: [Int64: Int64] = [:]
    /// This socket's typing indicators, created by the first `typing` (see `SocketMessaging`).
    var typing: TypingRelay?
    /// Keeps this socket's commands on the stream in the order it sent them; made by the first command.
    var commandLane: CommandLane?

    init(link: any EngineLink, engineID: String, host: any SocketSessionHost, headerToken: String?, queryDialect: String? = nil,
         clientAddress: String) {
        self.link = link
        self.clientAddress = clientAddress
        self.host = host
        self.engineID = engineID
        machine = SocketSessionMachine(configuration: host.sessionConfiguration, headerToken: headerToken, queryDialect: queryDialect,
                                       now: Self.instant(host.clock))
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

    /// Sends the open packet and starts the heartbeat and the connect deadline; a polling session
    /// offers the upgrade to WebSocket. The caller then starts reading the transport.
    func start(upgrades: [String] = []) {
        let open: JSONValue = [
            "sid": .string(engineID),
            "upgrades": .array(upgrades.map { .string($0) }),
            "pingInterval": .int(host.configuration.pingInterval.wholeMilliseconds),
            "pingTimeout": .int(host.configuration.pingTimeout.wholeMilliseconds),
            "maxPayload": .int(Int64(host.configuration.maxPayloadBytes)),
        ]
        link.sendPacket(EngineIOPacket.open(open).encoded)
        perform(heartbeat.start(now: clock.now()))
        perform(machine.start())
    }

    /// The client completed the upgrade from long-polling: the WebSocket carries the session from
    /// now on, starting with the packets that were waiting for a poll.
    func upgraded(to connection: WebSocketConnection, queued: [[UInt8]]) {
        link = connection
        upgraded = true
        connection.delegate = self
        for packet in queued { connection.sendFrame(WebSocketFrameEncoder.frame(.text, payload: packet)) }
    }

    /// Graceful shutdown: the client reconnects, through the load balancer, to another gateway.
    func shutdown() {
        link.goAway()
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
        // A dialect socket gets the dialect's events (issue 16); acks and the rest are as native.
        let dialect = machine.dialect
        guard dialect != .native, packet.type == .event, let name = packet.eventName, DialectEvents.translates(dialect, name) else {
            return link.sendSharedFrame(Self.frame(for: packet))
        }
        for (event, data) in DialectEvents.outbound(dialect, event: name, data: packet.eventArguments.first ?? .null) {
            link.sendSharedFrame(Self.frame(for: .event(event, [data], ackID: packet.ackID)))
        }
    }

    /// Emits an event to this client.
    func emit(_ event: SocketEvent, _ data: JSONValue) {
        send(.event(event.name, [data]))
    }

    /// Emits an event of this socket's dialect (not of the native vocabulary) as it is.
    func emitDialect(_ name: String, _ data: JSONValue) {
        link.sendSharedFrame(Self.frame(for: .event(name, [data])))
    }

    /// The API this socket speaks (issue 16).
    var dialect: Dialect { machine.dialect }

    /// An event published for this socket's user (or a room, or a watched user), encoded once
    /// per dialect; its mark, when it is a message or a change, moves the recovery offset.
    func sendPublished(_ publication: Publication) {
        if held != nil { return hold(publication) }
        guard machine.isConnected else { return }
        write(publication)
        if let mark = publication.mark, advance(mark) { sendOffset() }
    }

    private func write(_ publication: Publication) {
        let dialect = machine.dialect
        if dialect == .native { return link.sendSharedFrame(publication.frame) }
        if dialect == .seed003, let data = conversationNamed(publication) {
            // Seed 003's typing events name the conversation, which only this socket knows.
            for (event, translated) in DialectEvents.outbound(dialect, event: publication.event, data: data) {
                link.sendSharedFrame(Self.frame(for: .event(event, [translated])))
            }
            return
        }
        for frame in publication.frames(for: dialect) { link.sendSharedFrame(frame) }
    }

    /// A direct typing event's data with the `conversationId` this socket joined with its sender.
    private func conversationNamed(_ publication: Publication) -> JSONValue? {
        guard publication.event == SocketEvent.typing.name || publication.event == SocketEvent.stopTyping.name,
              case .object(var fields) = publication.data, fields["roomId"] == nil, let sender = fields["senderId"]?.int64Value,
              let conversation = conversationPartners.first(where: { $0.value == sender })?.key else { return nil }
        fields["conversationId"] = .int(conversation)
        return .object(fields)
    }

    private func hold(_ publication: Publication) {
        guard (held?.count ?? 0) < Self.maxHeldEvents else {
            heldOverflowed = true
            return
        }
        held?.append(publication)
    }

    /// Moves the recovery position past `mark`; true when it moved.
    private func advance(_ mark: DeliveryMark) -> Bool {
        guard var chain = recoveryChain else { return false }
        let moved: Bool
        switch mark {
        case .message(let conversation, let seq): moved = chain.offset.record(conversation: conversation, seq: seq)
        case .change(let conversation, let version): moved = chain.offset.record(conversation: conversation, version: version)
        }
        recoveryChain = chain
        return moved
    }

    /// Whether `mark` is already covered by this socket's position (written before).
    private func covered(_ mark: DeliveryMark) -> Bool {
        guard let offset = recoveryChain?.offset else { return false }
        switch mark {
        case .message(let conversation, let seq): return offset.covers(conversation: conversation, seq: seq)
        case .change(let conversation, let version): return offset.covers(conversation: conversation, version: version)
        }
    }

    /// Writes events held during a recovery or a hand-over, but the messages and changes this
    /// socket's position covers already; true when the position moved (or `moved` already).
    private func writeHeld(_ events: [Publication], moved: Bool) -> Bool {
        var moved = moved
        for publication in events {
            if let mark = publication.mark, covered(mark) { continue }
            write(publication)
            if let mark = publication.mark { moved = advance(mark) || moved }
        }
        return moved
    }

    /// Writes the client's new recovery offset (`recoveryOffset "<offset>"`).
    private func sendOffset() {
        guard var chain = recoveryChain else { return }
        chain.offset.madeAtMilliseconds = clock.wallMilliseconds()
        recoveryChain = chain
        send(.event(SocketEvent.recoveryOffset.name, [.string(chain.offset.encoded)]))
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

    // MARK: Input

    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        switch message {
        case .binary: perform(machine.receivedBinary())
        case .text(let text): receivedText(text)
        }
    }

    /// One Engine.IO packet from the client (a WebSocket message, or one packet of a `POST`).
    func receivedText(_ text: String) {
        // The heartbeat's pong, which every idle socket sends once per interval, goes straight to
        // the heartbeat: no clock pair, no action list (the machine would only say .pongReceived).
        if text.utf8.count == 1, text.utf8.first == UInt8(ascii: "3"), machine.state != .closed {
            return perform(heartbeat.pongReceived(now: clock.now()))
        }
        // Long-polling carries binary as `b<base64>`: refused as a binary WebSocket message is.
        if text.utf8.first == UInt8(ascii: "b") { return perform(machine.receivedBinary()) }
        perform(machine.received(text: text, now: now()))
    }

    func webSocketDidClose(_ connection: WebSocketConnection, code: UInt16) {
        transportClosed()
    }

    /// The transport is gone (called once): timers stop and the gateway forgets the session.
    func transportClosed() {
        end(remember: true)
    }

    private func end(remember: Bool) {
        guard !transportEnded else { return }
        transportEnded = true
        if let heartbeatTimer { clock.cancel(heartbeatTimer) }
        if let deadlineTimer { clock.cancel(deadlineTimer) }
        for timer in serverAckTimers.values { clock.cancel(timer) }
        heartbeatTimer = nil
        deadlineTimer = nil
        serverAckTimers = [:]
        // The typist is gone: its receivers get stopTyping now rather than after the timeout.
        typing?.stopAll()
        typing = nil
        // A socket that closes while this gateway lives may recover within the window.
        if remember, let chain = recoveryChain, let userID = admittedUserID { host.recovery?.remember(pid: chain.pid, userID: userID) }
        held = nil
        machine.closed()
        host.sessionClosed(self, userID: admittedUserID)
        admittedUserID = nil
    }

    // MARK: Hand-over (a WebSocket upgrade that reached another gateway, issue 15)

    /// Whom the session is connected as, for a hand-over; nil until its CONNECT succeeded.
    var handOverPrincipal: Principal? { machine.principal }

    /// The session leaves this gateway: its state for the gateway taking it, and it ends here
    /// without a trace for the client (no close, no recovery record). nil unless connected.
    func handOver() -> JSONObject? {
        guard let principal = machine.principal else { return nil }
        var snapshot: JSONObject = [
            "engineId": .string(engineID), "principal": .object(principal.handOverFields), "socketId": .string(machine.socketID),
        ]
        if let chain = recoveryChain {
            snapshot["pid"] = .string(chain.pid)
            snapshot["offset"] = .string(chain.offset.encoded)
        }
        end(remember: false)
        return snapshot
    }

    /// Holds published events from now on (the user's channels are being subscribed here while
    /// the session still runs on the other gateway).
    func holdForTransfer() {
        held = []
    }

    /// Takes over a session handed over by the gateway that owned it: its state, then the packets
    /// that waited for a poll, then the events held here that the other gateway had not written.
    func adopt(_ snapshot: JSONObject, principal: Principal) {
        let now = now()
        upgraded = true
        perform(machine.transferred(principal, socketID: snapshot["socketId"]?.stringValue ?? SecureRandom.token(byteCount: 15),
                                    pid: snapshot["pid"]?.stringValue, now: now))
        admittedUserID = principal.userID
        if case .string(let pid)? = snapshot["pid"] {
            let offset = snapshot["offset"]?.stringValue.flatMap(RecoveryOffset.init(encoded:))
                ?? RecoveryOffset(madeAtMilliseconds: now.wallMilliseconds)
            recoveryChain = RecoveryChain(pid: pid, offset: offset)
        }
        perform(heartbeat.start(now: clock.now()))
        for packet in snapshot["queued"]?.arrayValue ?? [] {
            if let text = packet.stringValue { link.sendPacket(text) }
        }
        let heldEvents = held ?? []
        held = nil
        if writeHeld(heldEvents, moved: false) { sendOffset() }
    }

    /// The hand-over failed after this session subscribed: it ends here without a trace.
    func abandonTransfer() {
        held = nil
        end(remember: false)
    }

    // MARK: Actions

    private func perform(_ actions: [SocketSessionMachine.Action]) {
        for action in actions { perform(action) }
    }

    private func perform(_ action: SocketSessionMachine.Action) {
        switch action {
        case .sendEngineIO(let packet):
            link.sendPacket(packet.encoded)
        case .send(let packet):
            send(packet)
        case .pongReceived:
            perform(heartbeat.pongReceived(now: clock.now()))
        case .close(let code, let reason):
            link.closeLink(code: code, reason: reason)
        case .admit(let principal, let recovery):
            Task.onLoop { await self.admit(principal, recovery: recovery) }
        case .confirmToken(let principal, let ackID):
            Task.onLoop { await self.confirm(principal, ackID: ackID) }
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
        case .dispatchDialect(let request):
            host.dispatchDialect(request, from: self)
        case .awaitLogin:
            perform(machine.awaitLogin(socketID: SecureRandom.token(byteCount: 15)))
        }
    }

    /// CONNECT with a valid token: subscribe the user's channel first (so a revocation published
    /// from now on reaches this socket), then check revocation and the account. A client that
    /// presents a recovery `pid` gets what it missed: published events are held from the
    /// subscription on, the replay is read from Postgres, then both are written after the CONNECT
    /// answer, the held ones without those the replay covers.
    private func admit(_ principal: Principal, recovery request: SocketSessionMachine.RecoveryRequest?) async {
        let recovery = host.recovery
        if request != nil && recovery != nil { held = [] }
        if let refusal = await host.admit(self, principal: principal) {
            held = nil
            perform(machine.refused(refusal))
            if machine.principal == nil { host.release(self, userID: principal.userID) }
            return
        }
        var pid: String?
        var replay: [SessionRecovery.ReplayedEvent] = []
        var resync: String?
        if let recovery {
            let nowMilliseconds = clock.wallMilliseconds()
            if let request {
                switch await recovery.recover(request, userID: principal.userID, nowMilliseconds: nowMilliseconds) {
                case .recovered(_, let offset, let events) where !heldOverflowed:
                    pid = request.pid
                    recoveryChain = RecoveryChain(pid: request.pid, offset: offset)
                    replay = events
                case .recovered:
                    resync = "too_many_missed_events"
                case .resync(let reason):
                    resync = reason
                }
                GatewayMetrics.recoveries.increment(resync == nil ? "recovered" : "resync")
            }
            if pid == nil {
                let fresh = recovery.newPID(userID: principal.userID, nowMilliseconds: nowMilliseconds)
                pid = fresh
                recoveryChain = RecoveryChain(pid: fresh, offset: RecoveryOffset(madeAtMilliseconds: nowMilliseconds))
            }
        }
        let heldEvents = held ?? []
        held = nil
        heldOverflowed = false
        perform(machine.admitted(socketID: SecureRandom.token(byteCount: 15), pid: pid, now: now()))
        // Refused after all (a revocation arrived during the checks), or closed meanwhile.
        guard machine.principal == principal else {
            recoveryChain = nil
            return host.release(self, userID: principal.userID)
        }
        var moved = false
        for event in replay {
            send(.event(event.event.name, [event.data]))
            moved = advance(event.mark) || moved
        }
        if writeHeld(heldEvents, moved: moved) { sendOffset() }
        if let resync { emit(.resync, ["reason": .string(resync)]) }
        if machine.dialect == .seed004 { emitDialect(DialectEvent.welcome.name, DialectEvents.welcome(userID: principal.userID)) }
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
            link.sendSharedFrame(Self.pingFrame)
            armHeartbeat(deadline)
        case .timedOut:
            heartbeatTimer = nil
            link.closeLink(code: WebSocketCloseCode.goingAway, reason: "ping timeout")
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
