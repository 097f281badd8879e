import Shared

/// The answer to one long-polling request, as HTTP or as a relayed message (`PollingRelay`).
struct PollingAnswer: Sendable, Equatable {
    var status: HTTPStatus
    var contentType: String
    var body: [UInt8]

    /// Packets for the client (`GET`).
    static func packets(_ body: [UInt8]) -> PollingAnswer {
        PollingAnswer(status: .ok, contentType: "text/plain; charset=UTF-8", body: body)
    }

    /// A `POST` taken (`ok`, as the reference server answers).
    static let accepted = PollingAnswer(status: .ok, contentType: "text/html", body: Array("ok".utf8))

    /// The reference server's error shape: `{"code": n, "message": "..."}`.
    static func engineError(_ error: EngineIOServerError, status: HTTPStatus = .badRequest) -> PollingAnswer {
        let body: JSONValue = ["code": .int(Int64(error.rawValue)), "message": .string(error.message)]
        return PollingAnswer(status: status, contentType: "application/json", body: body.serialized())
    }

    var response: HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": contentType, "Cache-Control": "no-store"], body: body)
    }
}

/// The reference server's (engine.io) request errors, with its codes and messages.
enum EngineIOServerError: Int, Sendable {
    case unknownTransport = 0
    case unknownSession = 1
    case badHandshakeMethod = 2
    case badRequest = 3
    case forbidden = 4
    case unsupportedProtocolVersion = 5

    var message: String {
        switch self {
        case .unknownTransport: "Transport unknown"
        case .unknownSession: "Session ID unknown"
        case .badHandshakeMethod: "Bad handshake method"
        case .badRequest: "Bad request"
        case .forbidden: "Forbidden"
        case .unsupportedProtocolVersion: "Unsupported protocol version"
        }
    }
}

/// One session's HTTP long-polling transport: the I/O shell of `PollingMachine`. It holds the one
/// open `GET` (its completion), answers `POST`s by handing their packets to the session, probes a
/// WebSocket of the same session and completes the upgrade (`2probe`/`3probe`, `noop` every
/// 100 ms to a held poll, then `5`), and lingers after a close until the client fetched the close
/// packet (or a ping interval passed).
@LoopActor
final class PollingLink: EngineLink, WebSocketConnectionDelegate {
    private var machine: PollingMachine
    private unowned let hub: RealtimeHub
    let engineID: String
    /// The session this transport feeds; nil once it upgraded or closed.
    weak var session: SocketSession?
    private var heldPoll: (@LoopActor (PollingAnswer) -> Void)?
    private var probe: WebSocketConnection?
    private var upgradeTicker: TimerHandle?
    private var upgradeDeadline: TimerHandle?
    private var lingerTimer: TimerHandle?
    /// A held poll will be answered after the current turn (see `PollingMachine.EnqueueDecision`).
    private var flushScheduled = false
    /// Set while a WebSocket of this session on another gateway is probing (issue 15).
    private var remoteDeadline: TimerHandle?
    private var clock: any LoopClock { hub.clock }

    init(engineID: String, hub: RealtimeHub, configuration: PollingMachine.Configuration) {
        self.engineID = engineID
        self.hub = hub
        machine = PollingMachine(configuration: configuration)
    }

    var state: PollingMachine.State { machine.state }

    // MARK: Requests

    /// A `GET`: answered now, or held until a packet is sent.
    func poll(_ completion: @escaping @LoopActor (PollingAnswer) -> Void) {
        switch machine.poll() {
        case .answer(let body):
            completion(.packets(body))
            if machine.state == .closed { finish() }
        case .hold:
            heldPoll = completion
        case .overlap(let heldBody):
            answerHeld(heldBody)
            completion(.engineError(.badRequest))
            hub.logger.info("polling session closed: a second poll while one was open", ["sid": .string(engineID)])
            sessionFailed()
        case .gone:
            completion(.engineError(machine.state == .upgraded ? .badRequest : .unknownSession))
        }
    }

    /// A `POST`: its packets go to the session in order.
    func post(_ body: [UInt8]) -> PollingAnswer {
        guard machine.state == .open || machine.state == .upgrading else {
            return .engineError(machine.state == .upgraded ? .badRequest : .unknownSession)
        }
        switch machine.post(body) {
        case .failure(let error):
            hub.logger.info("polling session closed: malformed payload", ["sid": .string(engineID), "error": .string(error.message)])
            sessionFailed()
            return .engineError(.badRequest)
        case .success(let packets):
            for packet in packets {
                guard let session, machine.state == .open || machine.state == .upgrading else { break }
                session.receivedText(packet)
            }
            return .accepted
        }
    }

    // MARK: EngineLink

    func sendPacket(_ text: String) { enqueue(text.utf8) }

    func sendSharedFrame(_ frame: [UInt8]) {
        guard let payload = WebSocketFrameEncoder.payload(ofUnmaskedFrame: frame) else { return }
        enqueue(payload)
    }

    private func enqueue(_ packet: some Collection<UInt8>) {
        switch machine.enqueue(packet) {
        case .pollWaiting:
            guard !flushScheduled else { break }
            flushScheduled = true
            Task.onLoop { [weak self] in
                guard let self else { return }
                self.flushScheduled = false
                if let body = self.machine.flushHeld() { self.answerHeld(body) }
            }
        case .queued, .dropped: break
        case .overflow:
            hub.logger.info("polling session closed: the client does not poll (queue full)", ["sid": .string(engineID)])
            sessionFailed()
        }
    }

    func closeLink(code: UInt16, reason: String) {
        // Once: a second close (the session's, after the link's own) changes nothing.
        guard machine.state == .open || machine.state == .upgrading else { return }
        if let body = machine.close() { answerHeld(body) }
        endProbe()
        if machine.state == .closed { return finishSession() }
        // The close packet waits for the client's next poll, for at most one ping interval. The
        // session hears of the close after the actions it is performing.
        let session = self.session
        self.session = nil
        Task.onLoop { session?.transportClosed() }
        lingerTimer = clock.schedule(after: hub.configuration.pingInterval) { [weak self] in self?.finish() }
    }

    func goAway() {
        let held = machine.abandon()
        if held, let heldPoll {
            self.heldPoll = nil
            heldPoll(.engineError(.unknownSession, status: .serviceUnavailable))
        }
        endProbe()
        finishSession()
    }

    /// The transport failed (overlapping polls, a malformed payload, a full queue): the session
    /// closes without a close packet.
    private func sessionFailed() {
        if machine.abandon(), let heldPoll {
            self.heldPoll = nil
            heldPoll(.packets(PollingMachine.closePacket))
        }
        endProbe()
        finishSession()
    }

    private func finishSession() {
        let session = self.session
        self.session = nil
        finish()
        Task.onLoop { session?.transportClosed() }
    }

    private func finish() {
        if let lingerTimer { clock.cancel(lingerTimer) }
        lingerTimer = nil
        hub.pollingLinkFinished(self)
    }

    private func answerHeld(_ body: [UInt8]) {
        guard let heldPoll else { return }
        self.heldPoll = nil
        heldPoll(.packets(body))
    }

    // MARK: Upgrade

    /// Whether a WebSocket may start probing this session now.
    var canUpgrade: Bool { machine.state == .open && probe == nil && remoteDeadline == nil && session != nil }

    /// A WebSocket of this session (`transport=websocket&sid=...`) was accepted: it probes, then
    /// upgrades, within `upgradeTimeout`.
    func beginUpgrade(_ transport: any Transport, leftover: [UInt8], release: @escaping @LoopActor () -> Void) {
        let connection = WebSocketConnection(transport: transport, configuration: hub.configuration.webSocket, clock: clock,
                                             release: release)
        probe = connection
        connection.delegate = self
        upgradeDeadline = clock.schedule(after: Self.upgradeTimeout) { [weak self] in
            guard let self, let probe = self.probe else { return }
            self.upgradeDeadline = nil
            probe.close(code: WebSocketCloseCode.policyViolation, reason: "upgrade timeout")
        }
        connection.start(leftover: leftover)
    }

    /// How long a probing WebSocket has to complete the upgrade (the reference server's default).
    static let upgradeTimeout = Duration.seconds(10)
    /// How often a held poll is answered while the client pauses polling to upgrade.
    static let upgradeTick = Duration.milliseconds(100)

    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        guard connection === probe, case .text(let text) = message else { return }
        switch try? EngineIOPacket.decode(text) {
        case .ping("probe")?:
            connection.send(text: EngineIOPacket.pong("probe").encoded)
            if let body = machine.upgradeProbed() { answerHeld(body) }
            scheduleUpgradeTick()
        case .upgrade?:
            completeUpgrade(connection)
        default:
            break  // Nothing else belongs on a probing WebSocket.
        }
    }

    func webSocketDidClose(_ connection: WebSocketConnection, code: UInt16) {
        guard connection === probe else { return }
        probe = nil
        cancelUpgradeTimers()
        machine.upgradeAbandoned()
    }

    private func scheduleUpgradeTick() {
        guard upgradeTicker == nil, machine.state == .upgrading else { return }
        upgradeTicker = clock.schedule(after: Self.upgradeTick) { [weak self] in
            guard let self else { return }
            self.upgradeTicker = nil
            if let body = self.machine.releaseHeldPoll() { self.answerHeld(body) }
            self.scheduleUpgradeTick()
        }
    }

    private func completeUpgrade(_ connection: WebSocketConnection) {
        guard let session, let (queued, heldBody) = machine.upgraded() else { return }
        probe = nil
        cancelUpgradeTimers()
        if let heldBody { answerHeld(heldBody) }
        self.session = nil
        session.upgraded(to: connection, queued: queued)
        finish()
    }

    // MARK: Upgrade on another gateway

    /// A WebSocket of this session reached another gateway and was probed (relayed `probe`): polls
    /// are released as for a local probe, and the answer says whom the session is connected as,
    /// so that gateway can subscribe the user's channels before the client switches. A session
    /// that is not connected yet answers "retry".
    func remoteProbe() -> JSONObject {
        guard canUpgrade, let session else { return ["ok": false] }
        // Until its CONNECT succeeded the session stays here (the client keeps polling meanwhile):
        // the other gateway must subscribe the user's channels before the client switches.
        guard let principal = session.handOverPrincipal else { return ["ok": false, "retry": true] }
        if let body = machine.upgradeProbed() { answerHeld(body) }
        scheduleUpgradeTick()
        remoteDeadline = clock.schedule(after: Self.upgradeTimeout) { [weak self] in
            guard let self else { return }
            self.remoteDeadline = nil
            self.cancelUpgradeTimers()
            self.machine.upgradeAbandoned()
        }
        return ["ok": true, "principal": .object(principal.handOverFields)]
    }

    /// The client sent the upgrade packet on that WebSocket (relayed `transfer`): the session
    /// leaves this gateway, with the packets still waiting for a poll.
    func remoteTransfer() -> JSONObject {
        guard remoteDeadline != nil, let session, var snapshot = session.handOver() else { return ["ok": false] }
        guard let (queued, heldBody) = machine.upgraded() else { return ["ok": false] }
        if let remoteDeadline { clock.cancel(remoteDeadline) }
        remoteDeadline = nil
        cancelUpgradeTimers()
        if let heldBody { answerHeld(heldBody) }
        self.session = nil
        finish()
        snapshot["queued"] = .array(queued.map { .string(String(decoding: $0, as: UTF8.self)) })
        return ["ok": true, "session": .object(snapshot)]
    }

    private func endProbe() {
        if let remoteDeadline { clock.cancel(remoteDeadline) }
        remoteDeadline = nil
        cancelUpgradeTimers()
        guard let probe else { return }
        self.probe = nil
        probe.delegate = nil
        probe.close(code: WebSocketCloseCode.goingAway, reason: "session closed")
    }

    private func cancelUpgradeTimers() {
        if let upgradeTicker { clock.cancel(upgradeTicker) }
        if let upgradeDeadline { clock.cancel(upgradeDeadline) }
        upgradeTicker = nil
        upgradeDeadline = nil
    }
}
