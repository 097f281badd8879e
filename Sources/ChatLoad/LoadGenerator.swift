import Glibc
import Shared

/// Drives a run: starts connections at the configured rate (bounded in flight), reports once a
/// second, holds, closes everything gracefully and stops the loop with the exit status.
@LoopActor
final class LoadGenerator {
    /// The run of this process, kept alive until it exits.
    static var current: LoadGenerator?

    /// How often new connections are started; each tick starts what the rate allows since the ramp began.
    private static let pacingInterval = Duration.milliseconds(5)
    private static let reportInterval = Duration.seconds(1)

    let options: LoadOptions
    var counters = LoadCounters()
    private let destination: SocketAddress
    /// Where odd connections go in the messages benchmark (`--receiver-url`); nil: `destination`.
    private let receiverDestination: SocketAddress?
    /// The messages benchmark: when sending began, messages scheduled so far, the total.
    private var messagesStartedAt: UInt64 = 0
    private var messagesScheduled = 0
    private var messagesTotal = 0
    /// Makes this run's clientMsgIds its own (a rerun against the same users is not deduplicated).
    private let runID = SecureRandom.token(byteCount: 6)
    private static let messageTick = Duration.milliseconds(1)
    /// After the last send, how long acks and deliveries are waited for.
    private static let messageDrain = Duration.seconds(15)
    private let sources: [SocketAddress]
    private let signer: JWTSigner
    private var connections: [LoadConnection] = []
    private let startedAt = MonotonicClock.now()
    /// RSS before any connection, so the summary can tell the cost per connection.
    private let baselineResidentBytes = ProcessMemory.residentBytes()
    private var rampCompletedAt: UInt64?
    private var peakOpen = 0
    private var holdTimer: TimerHandle?
    private var closeTimer: TimerHandle?
    private var reportTimer: TimerHandle?
    private var stage = Stage.ramping
    private var closingCount = 0

    private enum Stage {
        case ramping
        case holding
        /// Close handshakes in progress.
        case closing
        case done
    }

    /// Fails when an address in `options` is not numeric (options parsing already checks this).
    init(options: LoadOptions) throws(LoadOptionsError) {
        self.options = options
        guard let destination = SocketAddress(host: options.host, port: options.port) else {
            throw .invalidValue("--url", options.host, "a numeric address")
        }
        self.destination = destination
        if let receiverHost = options.receiverHost {
            guard let address = SocketAddress(host: receiverHost, port: options.receiverPort) else {
                throw .invalidValue("--receiver-url", receiverHost, "a numeric address")
            }
            receiverDestination = address
        } else {
            receiverDestination = nil
        }
        var sources: [SocketAddress] = []
        for host in options.sourceAddresses {
            guard let address = SocketAddress(host: host, port: 0) else {
                throw .invalidValue("--source-ips", host, "a numeric address")
            }
            sources.append(address)
        }
        self.sources = sources
        signer = JWTSigner(secret: Array(options.jwtSecret.utf8), issuer: options.jwtIssuer, audience: options.jwtAudience)
        connections.reserveCapacity(options.connections)
        counters.connectLatencies.reserveCapacity(options.connections)
    }

    /// Begins the ramp and the reporting.
    func start() {
        let sourceText = sources.isEmpty ? "kernel-chosen" : "\(sources.count) (\(options.sourceAddresses.first ?? "")...\(options.sourceAddresses.last ?? ""))"
        emit("chatload: target=\(options.connections) url=ws://\(destination)\(options.path) rate=\(options.rate)/s "
            + "max-in-flight=\(options.maxInFlight) source-addresses=\(sourceText) "
            + "hold=\(options.holdSeconds.map { "\($0)s" } ?? "until signal") users=\(options.userBase)...\(options.userBase + Int64(options.connections) - 1) "
            + "baseline-rss=\(baselineResidentBytes.map { String($0) } ?? "?")B")
        pace()
        scheduleReport()
    }

    /// A fresh token for connection `index` (user `userBase + index`).
    /// The users connection `index` subscribes to the presence of (`--watch`); nil for none.
    func watchedUsers(ofUserIndex index: Int) -> [Int64]? {
        guard options.watch > 0 else { return nil }
        let base = options.watchBase ?? options.userBase
        let count = Int64(options.watchCount ?? options.connections)
        let own = options.userBase + Int64(index) - base
        return (1...Int64(options.watch)).map { base + ((own + $0) % count + count) % count }
    }

    func token(forUserIndex index: Int) -> String {
        if options.peerTokens {
            // The seeds' stack (../shared/peer): HS256 with the user in an integer `id` claim.
            let header = Base64URL.encode(#"{"alg":"HS256","typ":"JWT"}"#.utf8)
            let payload = Base64URL.encode(JSONValue.object([
                "id": .int(options.userBase + Int64(index)),
                "exp": .int(WallClock.seconds() + options.tokenLifetimeSeconds),
            ]).serialized())
            let input = header + "." + payload
            return input + "." + Base64URL.encode(HMACSHA256.authenticationCode(key: Array(options.jwtSecret.utf8), message: input.utf8))
        }
        let claims = signer.makeClaims(subject: String(options.userBase + Int64(index)), issuedAt: WallClock.seconds(),
                                       lifetimeSeconds: options.tokenLifetimeSeconds)
        return signer.sign(claims)
    }

    // MARK: Ramp

    private func pace() {
        guard stage == .ramping else { return }
        let elapsed = Double(MonotonicClock.now() &- startedAt) / 1e9
        // +1 so the first connection starts at once.
        let due = min(options.connections, Int(elapsed * Double(options.rate)) + 1)
        while connections.count < due && counters.inFlight < options.maxInFlight {
            let index = connections.count
            let connection = LoadConnection(generator: self)
            connections.append(connection)
            let target = index % 2 == 1 && options.messageRate > 0 ? receiverDestination ?? destination : destination
            connection.start(userIndex: index, source: sources.isEmpty ? nil : sources[index % sources.count], destination: target)
            if stage != .ramping { return }
        }
        if connections.count < options.connections {
            EventLoop.shared.schedule(after: Self.pacingInterval) { [self] in pace() }
        }
    }

    /// A connection was authenticated, refused or failed (each connection reports exactly once).
    func connectionResolved() {
        peakOpen = max(peakOpen, counters.open)
        guard stage == .ramping, rampCompletedAt == nil,
              counters.connected + counters.refused + counters.failed >= options.connections else { return }
        let now = MonotonicClock.now()
        rampCompletedAt = now
        stage = .holding
        let seconds = Double(now &- startedAt) / 1e9
        emit("ramp complete: connected=\(counters.connected) refused=\(counters.refused) failed=\(counters.failed) "
            + "in \(LoadReport.format(seconds, decimals: 2))s (\(LoadReport.format(Double(counters.connected) / max(seconds, 1e-9), decimals: 0))/s)")
        if options.messageRate > 0 { return startMessages() }
        if let hold = options.holdSeconds {
            holdTimer = EventLoop.shared.schedule(after: .milliseconds(Int64(hold) * 1000)) { [self] in finish(reason: "hold elapsed") }
        }
    }

    // MARK: Messages

    /// Open loop: message k is due at `start + k / rate`, whatever happened to the earlier ones; its
    /// latencies count from that intended time. Pairs: sent by pair `k mod pairs`. Rooms: to room
    /// `k mod rooms`, by its members in turn.
    private func startMessages() {
        messagesStartedAt = MonotonicClock.now()
        messagesTotal = options.messageRate * options.messageSeconds
        if options.roomSize > 0 {
            emit("messages: \(options.messageRate)/s for \(options.messageSeconds)s to \(connections.count / options.roomSize) rooms of \(options.roomSize) members")
        } else {
            emit("messages: \(options.messageRate)/s for \(options.messageSeconds)s over \(connections.count / 2) sender/receiver pairs")
        }
        if options.intervalSeconds > 0 {
            counters.startInterval()
            scheduleIntervalReport(index: 1)
        }
        sendDueMessages()
    }

    /// Deliveries one acknowledged message makes: its receiver, or the room's other members.
    var deliveriesPerMessage: Int { options.roomSize > 0 ? options.roomSize - 1 : 1 }

    private func sendDueMessages() {
        guard stage == .holding else { return }
        let now = MonotonicClock.now()
        let elapsed = Double(now &- messagesStartedAt) / 1e9
        let due = min(messagesTotal, Int(elapsed * Double(options.messageRate)) + 1)
        while messagesScheduled < due {
            let k = messagesScheduled
            let intended = messagesStartedAt &+ UInt64(Double(k) * 1e9 / Double(options.messageRate))
            let clientMsgID = "\(runID)-\(k)"
            if options.roomSize > 0 {
                let rooms = connections.count / options.roomSize
                let room = k % rooms
                let member = (k / rooms) % options.roomSize
                connections[room * options.roomSize + member].sendMessage(to: .room(options.roomBase + Int64(room)),
                                                                           intendedAt: intended, clientMsgID: clientMsgID)
            } else {
                let pair = k % (connections.count / 2)
                connections[2 * pair].sendMessage(to: .user(options.userBase + Int64(2 * pair + 1)), intendedAt: intended,
                                                  clientMsgID: clientMsgID)
            }
            messagesScheduled += 1
        }
        if messagesScheduled < messagesTotal {
            EventLoop.shared.schedule(after: Self.messageTick) { [self] in sendDueMessages() }
        } else {
            awaitMessages(until: MonotonicClock.deadline(after: Self.messageDrain, from: now))
        }
    }

    /// One JSON line per `--interval`: what was acknowledged and delivered in it, and its latencies.
    private func scheduleIntervalReport(index: Int) {
        let due = messagesStartedAt &+ UInt64(index) &* UInt64(options.intervalSeconds) &* 1_000_000_000
        let now = MonotonicClock.now()
        EventLoop.shared.schedule(after: .nanoseconds(Int64(clamping: due > now ? due - now : 0))) { [self] in
            guard stage == .holding else { return }
            emit(LoadReport.intervalLine(index: index, seconds: options.intervalSeconds, counters: counters))
            counters.startInterval()
            scheduleIntervalReport(index: index + 1)
        }
    }

    /// Ends the run once every message is answered and every stored one delivered, or at `deadline`.
    private func awaitMessages(until deadline: UInt64) {
        let answered = counters.messages.acknowledged + counters.messageErrors >= counters.messagesSent
        let delivered = counters.messages.delivered >= counters.messages.acknowledged * deliveriesPerMessage
        if (answered && delivered) || MonotonicClock.now() >= deadline {
            let seconds = Double(MonotonicClock.now() &- messagesStartedAt) / 1e9
            emit("messages done: sent=\(counters.messagesSent) acknowledged=\(counters.messages.acknowledged) "
                + "errors=\(counters.messageErrors) delivered=\(counters.messages.delivered) in \(LoadReport.format(seconds, decimals: 2))s")
            return finish(reason: "messages sent")
        }
        EventLoop.shared.schedule(after: .milliseconds(50)) { [self] in awaitMessages(until: deadline) }
    }

    // MARK: Ending

    /// Ends the hold (or the ramp, on a signal): closes every connection gracefully, then exits.
    func finish(reason: String) {
        switch stage {
        case .ramping, .holding:
            break
        case .closing:
            // A second signal: stop waiting for close handshakes.
            emit("chatload: \(reason) again, closing the remaining sockets now")
            abortClosing()
            return
        case .done:
            return
        }
        if let holdTimer { EventLoop.shared.cancel(holdTimer) }
        holdTimer = nil
        emit("chatload: \(reason), closing \(counters.open) connections")
        report()
        stage = .closing
        for connection in connections { connection.beginClose() }
        if closingCount == 0 { return complete() }
        closeTimer = EventLoop.shared.schedule(after: options.closeTimeout) { [self] in abortClosing() }
    }

    func closingStarted() { closingCount += 1 }

    func closingFinished() {
        closingCount -= 1
        if closingCount == 0 && stage == .closing { complete() }
    }

    private func abortClosing() {
        guard stage == .closing else { return }
        for connection in connections { connection.abortClose() }
        if stage == .closing { complete() }
    }

    private func complete() {
        guard stage != .done else { return }
        stage = .done
        if let closeTimer { EventLoop.shared.cancel(closeTimer) }
        if let reportTimer { EventLoop.shared.cancel(reportTimer) }
        report()
        let allHeld = counters.connected == options.connections && counters.dropped == 0
        let status: Int32 = allHeld ? 0 : 1
        let rampSeconds = rampCompletedAt.map { Double($0 &- startedAt) / 1e9 }
        emit(LoadReport.summary(options: options, counters: counters, rampSeconds: rampSeconds,
                                totalSeconds: Double(MonotonicClock.now() &- startedAt) / 1e9, peakOpen: peakOpen,
                                baselineResidentBytes: baselineResidentBytes, residentBytes: ProcessMemory.residentBytes(),
                                peakResidentBytes: ProcessMemory.peakResidentBytes(), exitStatus: status))
        ProcessExitStatus.set(status)
        EventLoop.shared.stop()
    }

    // MARK: Reporting

    private func scheduleReport() {
        reportTimer = EventLoop.shared.schedule(after: Self.reportInterval) { [self] in
            report()
            scheduleReport()
        }
    }

    private func report() {
        peakOpen = max(peakOpen, counters.open)
        emit(LoadReport.statusLine(elapsedSeconds: Double(MonotonicClock.now() &- startedAt) / 1e9, target: options.connections,
                                   counters: counters, residentBytes: ProcessMemory.residentBytes()))
    }

    /// One line on stdout, written at once (unbuffered), so a script tailing the output sees it.
    private func emit(_ line: String) { Self.writeLine(line) }

    /// Writes `line` and a newline to standard output, unbuffered (a benchmark script tails it).
    nonisolated static func writeLine(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }
}
