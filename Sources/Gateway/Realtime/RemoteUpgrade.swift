import Shared

/// A WebSocket upgrade that reached a gateway other than the one owning the polling session
/// (issue 15; a load balancer without sticky sessions sends the probe anywhere). Instead of
/// refusing it (the client would then poll forever, every request relayed), this gateway takes
/// the session over:
///
/// 1. `2probe` arrives: the owner is asked (relayed `probe`) to prepare once the session is
///    connected; it releases the client's polls (`noop`) and says whom the session is connected as. This gateway subscribes that user's
///    channels (holding the events that arrive from now on), then answers `3probe`.
/// 2. `5` arrives (the client paused polling): the owner hands the session over (relayed
///    `transfer`) with the packets still waiting for a poll and its recovery position, and ends it
///    without a trace. This gateway writes those packets, then the held events the owner had not
///    written (messages and changes are de-duplicated by `seq` and `version`), and the session
///    lives here, costing what any WebSocket session costs.
///
/// Anything going wrong before `5` closes this WebSocket: the client goes on polling. After `5`
/// the client has left polling; a failed transfer closes the WebSocket and the client reconnects.
@LoopActor
final class RemoteUpgrade: WebSocketConnectionDelegate {
    private unowned let hub: RealtimeHub
    private let relay: PollingRelay
    private let connection: WebSocketConnection
    private let sid: String
    private let owner: String
    private let clientAddress: String
    private var session: SocketSession?
    private var principal: Principal?
    private var probing = false
    private var transferring = false
    private var done = false
    private var deadline: TimerHandle?
    /// What the client sent after `5`, while the session is being handed over (bounded).
    private var input: [WebSocketMessage] = []
    private static let maxInput = 1_000

    /// Relayed requests wait this long for the owner.
    static let relayDeadline = Duration.seconds(3)
    /// A probe is retried while the owner is checking the session's CONNECT, this many times, this often.
    static let probeRetries = 30
    static let probeRetryInterval = Duration.milliseconds(100)

    init(hub: RealtimeHub, relay: PollingRelay, connection: WebSocketConnection, sid: String, owner: String, clientAddress: String) {
        self.hub = hub
        self.relay = relay
        self.connection = connection
        self.sid = sid
        self.owner = owner
        self.clientAddress = clientAddress
    }

    func start(leftover: [UInt8]) {
        connection.delegate = self
        deadline = hub.clock.schedule(after: PollingLink.upgradeTimeout) { [weak self] in
            guard let self, !self.done else { return }
            self.fail("upgrade timeout")
        }
        hub.remoteUpgradeStarted(self)
        connection.start(leftover: leftover)
    }

    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        guard !done, case .text(let text) = message else { return }
        switch try? EngineIOPacket.decode(text) {
        case .ping("probe")? where !probing:
            probing = true
            probe(attempt: 0)
        case .upgrade? where probing && !transferring:
            transferring = true
            transfer()
        default:
            // After `5` the client writes to this WebSocket: kept for the session.
            guard transferring else { break }
            guard input.count < Self.maxInput else { return fail("too much input during the hand-over") }
            input.append(message)
        }
    }

    func webSocketDidClose(_ connection: WebSocketConnection, code: UInt16) {
        guard !done else { return }
        done = true
        cleanUp()
    }

    // MARK: Steps

    private func probe(attempt: Int) {
        relay.request("probe", sid: sid, owner: owner, deadline: Self.relayDeadline) { [weak self] answer in
            guard let self, !self.done else { return }
            guard let answer, answer["ok"]?.boolValue == true else {
                if answer?["retry"]?.boolValue == true, attempt < Self.probeRetries {
                    self.hub.clock.schedule(after: Self.probeRetryInterval) { [weak self] in self?.probe(attempt: attempt + 1) }
                    return
                }
                return self.fail("the session cannot be upgraded here")
            }
            guard case .object(let fields)? = answer["principal"], let principal = Principal(handOverFields: fields) else {
                return self.fail("malformed hand-over")
            }
            Task.onLoop { await self.subscribe(principal) }
        }
    }

    /// Subscribes the user's channels here (events held in the session) before the client switches.
    private func subscribe(_ principal: Principal) async {
        let session = SocketSession(link: connection, engineID: sid, host: hub, headerToken: nil, clientAddress: clientAddress)
        session.holdForTransfer()
        self.session = session
        self.principal = principal
        do {
            try await hub.channels.register(session, userID: principal.userID)
            try await hub.channels.registerRooms(of: principal.userID)
        } catch {
            return fail("cannot subscribe the user's channels")
        }
        guard !done else { return }
        // Counted online here before the owner lets go, so contacts see no offline blip.
        hub.presence.registry.add(principal.userID)
        answerProbe()
    }

    private func answerProbe() {
        connection.send(text: EngineIOPacket.pong("probe").encoded)
    }

    private func transfer() {
        relay.request("transfer", sid: sid, owner: owner, deadline: Self.relayDeadline) { [weak self] answer in
            guard let self, !self.done else { return }
            guard let answer, answer["ok"]?.boolValue == true, case .object(let snapshot)? = answer["session"] else {
                return self.fail("the session could not be handed over")
            }
            // The session is the user's whose channels were subscribed at the probe (its token may
            // have been renewed since by `authenticate`).
            guard case .object(let fields)? = snapshot["principal"], let principal = Principal(handOverFields: fields),
                  principal.userID == self.principal?.userID, let session = self.session else {
                return self.fail("malformed hand-over")
            }
            self.done = true
            self.cancelDeadline()
            self.hub.adoptTransferred(session, from: self)
            self.connection.delegate = session
            session.adopt(snapshot, principal: principal)
            for message in self.input { session.webSocket(self.connection, didReceive: message) }
            self.input = []
        }
    }

    private func fail(_ reason: String) {
        guard !done else { return }
        done = true
        cleanUp()
        connection.close(code: WebSocketCloseCode.policyViolation, reason: reason)
    }

    private func cleanUp() {
        cancelDeadline()
        hub.remoteUpgradeEnded(self)
        guard let session else { return }
        self.session = nil
        if let principal {
            hub.channels.unregister(session, userID: principal.userID)
            hub.presence.registry.remove(principal.userID)
        }
        session.abandonTransfer()
    }

    private func cancelDeadline() {
        if let deadline { hub.clock.cancel(deadline) }
        deadline = nil
    }
}
