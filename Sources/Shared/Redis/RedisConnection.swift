import CHiredis
import Glibc
import Runtime

/// One Redis connection on the process's epoll loop: our own socket (and, for `rediss://`, an
/// OpenSSL session over it), RESP written here, replies parsed by hiredis's reader.
///
/// Lifecycle: `open()` resolves the host off the loop, connects with a deadline (TCP, then TLS
/// when configured, verifying the server), then pipelines the handshake (`AUTH`, `SELECT`,
/// `CLIENT SETNAME`, `PING`). A connection is used either for commands (`send`, `pipeline`) or for
/// pub/sub (`subscribe`, `unsubscribe`, `onMessage`), never both: once subscribed, Redis accepts
/// nothing else. It never reconnects; `RedisClient` and `RedisSubscriber` replace dead connections.
///
/// Every request waits in one FIFO (Redis answers in order, pub/sub confirmations included). When the
/// oldest entry is past its deadline the connection is torn down and everything pending fails with
/// `.timeout`: Redis cannot cancel a command, and a late reply would otherwise be matched to the wrong
/// request. Task cancellation does not cancel a sent command for the same reason.
///
/// Commands written in one loop turn leave together: they are appended to the output buffer and
/// flushed when the socket is next writable (the loop's next wait), so a burst of callers shares
/// one write, as hiredis's async context did before TLS needed the socket to be ours (issue 18).
@LoopActor
package final class RedisConnection: IOHandler {
    /// Where the connection stands.
    package enum State: Sendable, Equatable {
        /// Created; `open()` not called.
        case initial
        /// Resolving the host or waiting for TCP connect.
        case connecting
        /// Connected; handshake commands outstanding.
        case handshaking
        /// Usable.
        case ready
        /// Gone for good (failed, timed out, lost or closed).
        case closed
    }

    /// Channels per SUBSCRIBE command, so resubscribing thousands of channels stays in modest frames.
    package static let maxChannelsPerCommand = 512

    /// What the next reply in the FIFO must be.
    private enum Expectation {
        case reply
        case subscribed(String)
        case unsubscribed(String)
    }

    private struct Entry {
        let expectation: Expectation
        let group: PendingGroup
        /// Monotonic nanoseconds after which the reply is late.
        let deadline: UInt64
    }

    /// The requests of one `send`/`pipeline`/`subscribe` call: resumed once, when every reply is in
    /// or the connection dies.
    private final class PendingGroup {
        private var continuation: CheckedContinuation<Result<[RedisValue], RedisError>, Never>?
        private var values: [RedisValue] = []
        private var remaining: Int

        init(count: Int, continuation: CheckedContinuation<Result<[RedisValue], RedisError>, Never>) {
            remaining = count
            values.reserveCapacity(count)
            self.continuation = continuation
        }

        func receive(_ value: RedisValue?) {
            if let value { values.append(value) }
            remaining -= 1
            if remaining == 0 { finish(.success(values)) }
        }

        func fail(_ error: RedisError) {
            finish(.failure(error))
        }

        private func finish(_ result: Result<[RedisValue], RedisError>) {
            guard let continuation else { return }
            self.continuation = nil
            continuation.resume(returning: result)
        }
    }

    /// The settings this connection was made with.
    package let configuration: RedisConfiguration
    /// Current state.
    package private(set) var state: State = .initial
    /// Why the last connect attempt or the connection failed, for logs (never contains the password).
    package internal(set) var failureReason: String?
    /// Called once when a `ready` connection dies (not when `open()` fails: it throws instead).
    package var onClose: (@LoopActor (RedisError) -> Void)?
    /// Pub/sub messages: `(channel, payload)`.
    package var onMessage: (@LoopActor (String, [UInt8]) -> Void)?
    /// Channels Redis confirmed as subscribed on this connection.
    package private(set) var subscribedChannels: Set<String> = []

    /// The socket, once created (-1 before and after).
    private var fd: CInt = -1
    private var registration: IORegistration?
    private var interest: IOInterest = []
    /// Where the socket is, below `state`.
    private enum Link {
        case none
        case connectingTCP
        case handshakingTLS
        case open
    }
    private var link = Link.none
    /// The TLS session (`rediss://`).
    private var tls: RedisTLSSession?
    /// What TLS needs to go on (a read may need the socket writable and the reverse).
    private var tlsWantsWrite = false
    /// hiredis's RESP parser for this connection's replies.
    private var reader: UnsafeMutablePointer<redisReader>?
    /// Commands written and not yet sent: `output[outputStart...]`.
    private var output: [UInt8] = []
    private var outputStart = 0
    /// A SUBSCRIBE went out: from now on replies are pub/sub frames.
    private var subscribedMode = false
    private var queue = RedisFIFO<Entry>()
    private var timeoutTimer: TimerHandle?
    private var armedDeadline: UInt64 = 0
    private var connectTimer: TimerHandle?
    private var connectWaiter: CheckedContinuation<Result<Void, RedisError>, Never>?
    /// The first reason this connection is going away; later ones do not overwrite it.
    private var closeReason: RedisError?
    /// Depth of `handleIO` (replies being dispatched): closing there is deferred to its end.
    private var ioDepth = 0
    private var teardownDeferred = false
    /// Per channel: SUBSCRIBE/UNSUBSCRIBE sent but not confirmed, and whether the last one sent subscribes.
    private var subscriptionChanges: [String: (pending: Int, lastSubscribes: Bool)] = [:]
    /// Where every connection reads into: one buffer for the process, since reads happen on the
    /// loop thread one at a time and each is parsed before the next (no allocation per read).
    private static let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 1)

    /// A connection for `configuration`; nothing happens until `open()`.
    package init(configuration: RedisConfiguration) {
        self.configuration = configuration
    }

    /// Whether commands can be sent.
    package var isReady: Bool { state == .ready }

    /// Replies owed by Redis (commands plus pub/sub confirmations).
    package var pendingReplyCount: Int { queue.count }

    // MARK: Opening

    /// Resolves, connects and runs the handshake within `connectTimeout`.
    ///
    /// Throws `.unavailable` (cannot resolve or connect, TLS refused, or closed meanwhile), `.timeout`,
    /// `.server` (AUTH/SELECT/CLIENT SETNAME refused) or `.connectionLost` (dropped during the handshake).
    /// `failureReason` then says why.
    package func open() async throws(RedisError) {
        guard state == .initial else { throw .unavailable }
        state = .connecting
        let timeout = max(.milliseconds(1), configuration.connectTimeout)
        let deadline = MonotonicClock.deadline(after: timeout, from: MonotonicClock.now())

        let resolved = await RedisHostResolver.resolve(configuration.host, timeout: timeout)
        guard state == .connecting else { throw closeReason ?? .unavailable }
        let address: String
        switch resolved {
        case .success(let numeric): address = numeric
        case .failure(let failure):
            failureReason = failure.reason
            state = .closed
            throw .unavailable
        }

        try startConnecting(to: address)
        let connected: Result<Void, RedisError> = await withCheckedContinuation { continuation in
            connectWaiter = continuation
            connectTimer = EventLoop.shared.schedule(after: Self.remaining(until: deadline)) { [weak self] in
                self?.connectTimedOut()
            }
        }
        try connected.get()
        guard state == .connecting else { throw closeReason ?? .unavailable }

        state = .handshaking
        let replies = try await submit(handshakeCommands(), deadline: deadline).get()
        for reply in replies {
            if case .error(let text) = reply {
                failureReason = "\(configuration.endpointDescription): handshake refused: \(text)"
                teardown(.server(text))
                throw .server(text)
            }
        }
        guard state == .handshaking else { throw closeReason ?? .connectionLost }
        if let connectTimer { EventLoop.shared.cancel(connectTimer) }
        connectTimer = nil
        state = .ready
    }

    private func handshakeCommands() -> [RedisCommand] {
        var commands: [RedisCommand] = []
        if let password = configuration.password {
            commands.append(.auth(username: configuration.username, password: password))
        }
        if configuration.database != 0 {
            commands.append(.select(database: configuration.database))
        }
        if let name = configuration.clientName {
            commands.append(.clientSetName(name))
        }
        // Proves the server answers (not just that the kernel accepted the TCP connection).
        commands.append(.ping())
        return commands
    }

    private func startConnecting(to address: String) throws(RedisError) {
        guard (1...65_535).contains(configuration.port), let destination = SocketAddress(host: address, port: UInt16(configuration.port)) else {
            failureReason = "\(configuration.endpointDescription): not a usable address or port"
            state = .closed
            throw .unavailable
        }
        let socketFD = socket(destination.family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard socketFD >= 0 else {
            failureReason = "\(configuration.endpointDescription): \(String(cString: strerror(errno)))"
            state = .closed
            throw .unavailable
        }
        var one: CInt = 1
        _ = setsockopt(socketFD, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        let result = destination.withSockAddr { Glibc.connect(socketFD, $0, $1) }
        let connectErrno = errno
        guard result == 0 || connectErrno == EINPROGRESS else {
            Glibc.close(socketFD)
            failureReason = "\(configuration.endpointDescription): \(String(cString: strerror(connectErrno)))"
            state = .closed
            throw .unavailable
        }
        do {
            registration = try EventLoop.shared.register(fd: socketFD, interest: .write, handler: self)
        } catch {
            Glibc.close(socketFD)
            failureReason = "\(configuration.endpointDescription): \(error)"
            state = .closed
            throw .unavailable
        }
        fd = socketFD
        interest = .write
        link = .connectingTCP
        reader = redisReaderCreate()
    }

    /// The socket became writable (or failed) while connecting.
    private func finishTCPConnect() {
        var error: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { error = errno }
        if error == EINPROGRESS || error == EALREADY { return }
        guard error == 0 else {
            failureReason = "\(configuration.endpointDescription): \(String(cString: strerror(error)))"
            return teardown(.unavailable)
        }
        if configuration.keepAliveSeconds > 0 {
            Self.enableKeepAlive(fd: fd, idleSeconds: configuration.keepAliveSeconds)
        }
        guard let tlsConfiguration = configuration.tls else { return linkOpened() }
        switch RedisTLSSession.make(fd: fd, host: configuration.host, configuration: tlsConfiguration) {
        case .success(let session):
            tls = session
            link = .handshakingTLS
            continueTLSHandshake()
        case .failure(let failure):
            failureReason = "\(configuration.endpointDescription): \(failure.reason)"
            teardown(.unavailable)
        }
    }

    private func continueTLSHandshake() {
        guard let tls else { return }
        switch tls.handshake() {
        case .done: linkOpened()
        case .wantsRead: setInterest(.read)
        case .wantsWrite: setInterest(.write)
        case .failed(let reason):
            failureReason = "\(configuration.endpointDescription): \(reason)"
            teardown(.unavailable)
        }
    }

    private func linkOpened() {
        link = .open
        updateInterest()
        resumeConnectWaiter(.success(()))
    }

    private func connectTimedOut() {
        connectTimer = nil
        guard state == .connecting || state == .handshaking else { return }
        failureReason = "\(configuration.endpointDescription): no connection within \(configuration.connectTimeout.wholeMilliseconds) ms"
        teardown(.timeout)
    }

    private func resumeConnectWaiter(_ result: Result<Void, RedisError>) {
        guard let waiter = connectWaiter else { return }
        connectWaiter = nil
        waiter.resume(returning: result)
    }

    // MARK: Commands

    /// Sends one command and returns its reply. An error reply is thrown as `.server(message)`.
    package func send(_ command: RedisCommand) async throws(RedisError) -> RedisValue {
        let replies = try await submitChecked([command]).get()
        guard let reply = replies.first else { throw .protocolError("no reply") }
        if case .error(let text) = reply { throw .server(text) }
        return reply
    }

    /// Sends one command of text arguments, e.g. `["INCR", key]`.
    package func send(_ arguments: [String]) async throws(RedisError) -> RedisValue {
        try await send(RedisCommand(arguments))
    }

    /// Sends one command of byte-string arguments.
    package func send(_ arguments: [[UInt8]]) async throws(RedisError) -> RedisValue {
        try await send(RedisCommand(arguments))
    }

    /// Writes all commands in one go and returns their replies in order. Error replies come back as
    /// `.error` values in place; only connection-level failures throw.
    package func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [RedisValue] {
        try await submitChecked(commands).get()
    }

    /// `pipeline` with text arguments.
    package func pipeline(_ commands: [[String]]) async throws(RedisError) -> [RedisValue] {
        try await pipeline(commands.map { RedisCommand($0) })
    }

    /// `pipeline` with byte-string arguments.
    package func pipeline(_ commands: [[[UInt8]]]) async throws(RedisError) -> [RedisValue] {
        try await pipeline(commands.map { RedisCommand($0) })
    }

    /// Refuses commands that would switch hiredis into pub/sub or monitor mode: their replies do not
    /// come back through the command FIFO.
    private func submitChecked(_ commands: [RedisCommand]) async -> Result<[RedisValue], RedisError> {
        guard state == .ready else { return .failure(.unavailable) }
        for command in commands {
            guard let name = command.name else {
                return .failure(.protocolError("a command needs at least one argument"))
            }
            if Self.switchesMode(name) {
                return .failure(.protocolError("\(String(decoding: name, as: UTF8.self)) is not allowed here; use RedisSubscriber for pub/sub"))
            }
        }
        return await submit(commands, deadline: nil)
    }

    private static let modeSwitchingCommands: Set<[UInt8]> = Set(
        ["SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "MONITOR"].map { Array($0.utf8) })

    /// Case-insensitive match without allocating for the common command names (by length first).
    private static func switchesMode(_ name: ArraySlice<UInt8>) -> Bool {
        switch name.count {
        case 7, 9, 10, 11, 12:
            return modeSwitchingCommands.contains(name.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 })
        default:
            return false
        }
    }

    private func submit(_ commands: [RedisCommand], deadline: UInt64?) async -> Result<[RedisValue], RedisError> {
        guard fd >= 0, link == .open, state == .ready || state == .handshaking else { return .failure(.unavailable) }
        if commands.isEmpty { return .success([]) }
        if subscribedMode {
            return .failure(.protocolError("this connection is subscribed; it only accepts SUBSCRIBE/UNSUBSCRIBE"))
        }
        guard queue.count + commands.count <= configuration.maxPendingReplies else { return .failure(.unavailable) }
        // Bytes not written yet: a stalled socket must not grow memory without bound.
        guard output.count - outputStart <= configuration.maxOutputBufferBytes else { return .failure(.unavailable) }
        let due = deadline ?? Self.deadline(after: configuration.commandTimeout)
        return await withCheckedContinuation { continuation in
            let group = PendingGroup(count: commands.count, continuation: continuation)
            for command in commands {
                write(command)
                queue.append(Entry(expectation: .reply, group: group, deadline: due))
            }
            armTimeoutTimer()
        }
    }

    /// Appends `command` to the output and asks the loop to tell us when the socket can take it.
    private func write(_ command: RedisCommand) {
        command.appendRESP(to: &output)
        if !interest.contains(.write) { updateInterest() }
    }

    /// A command reply (the FIFO's head expects one).
    private func didReceive(reply: UnsafeMutablePointer<redisReply>) {
        let value = RedisValue(reply: reply)
        guard let head = queue.first, case .reply = head.expectation else {
            teardown(.protocolError("a reply arrived that no command is waiting for"))
            return
        }
        _ = queue.removeFirst()
        if timeoutTimer != nil && !queue.isEmpty { armTimeoutTimer() }
        head.group.receive(value)
        // A primary demoted by a failover keeps its connections but refuses writes: drop this one,
        // so reconnecting finds the new primary (through the sentinels, with redis+sentinel://).
        if case .error(let text) = value, text.hasPrefix("READONLY") {
            failureReason = "\(configuration.endpointDescription): the server is a replica now (READONLY)"
            teardown(.connectionLost)
        }
    }

    // MARK: Pub/sub
    //
    // Once a SUBSCRIBE went out every reply is a pub/sub frame: a message (any time) or a
    // (un)subscribe confirmation, matched to its request through the FIFO (Redis confirms in
    // request order).

    /// Subscribes to `channels` and returns once Redis confirmed every one of them. Channels already
    /// confirmed (with no change in flight) are skipped.
    package func subscribe(_ channels: [String]) async throws(RedisError) {
        var seen = Set<String>()
        let needed = channels.filter { channel in
            seen.insert(channel).inserted && !(subscriptionChanges[channel] == nil && subscribedChannels.contains(channel))
        }
        try await changeSubscriptions(needed, subscribe: true)
    }

    /// Unsubscribes from `channels` and returns once Redis confirmed it. Channels not subscribed (or
    /// already being unsubscribed) are skipped; on a dead connection there is nothing to undo.
    package func unsubscribe(_ channels: [String]) async throws(RedisError) {
        guard state == .ready else { return }
        var seen = Set<String>()
        // Only channels subscribed (or being subscribed): Redis confirms an UNSUBSCRIBE of an
        // unknown channel too, but there is no reason to send one.
        let needed = channels.filter { channel in
            seen.insert(channel).inserted && (subscriptionChanges[channel]?.lastSubscribes ?? subscribedChannels.contains(channel))
        }
        try await changeSubscriptions(needed, subscribe: false)
    }

    private func changeSubscriptions(_ channels: [String], subscribe: Bool) async throws(RedisError) {
        guard state == .ready, fd >= 0 else { throw .unavailable }
        if channels.isEmpty { return }
        subscribedMode = true
        // No maxPendingReplies check: the channel count is bounded by the owner's own state (one per
        // local user), and refusing a resubscription would silently lose those users' messages.
        let due = Self.deadline(after: configuration.commandTimeout)
        let result: Result<[RedisValue], RedisError> = await withCheckedContinuation { continuation in
            let group = PendingGroup(count: channels.count, continuation: continuation)
            var start = 0
            while start < channels.count {
                let chunk = channels[start..<min(start + Self.maxChannelsPerCommand, channels.count)]
                start += chunk.count
                write(subscribe ? .subscribe(chunk) : .unsubscribe(chunk))
                for channel in chunk {
                    let expectation: Expectation = subscribe ? .subscribed(channel) : .unsubscribed(channel)
                    queue.append(Entry(expectation: expectation, group: group, deadline: due))
                    let pending = subscriptionChanges[channel]?.pending ?? 0
                    subscriptionChanges[channel] = (pending + 1, subscribe)
                }
            }
            armTimeoutTimer()
        }
        _ = try result.get()
    }

    /// A pub/sub frame: a message, or a (un)subscribe confirmation. Read straight from the hiredis
    /// reply: messages are the hot path, so no intermediate `RedisValue` tree.
    private func didReceive(push raw: UnsafeMutablePointer<redisReply>) {
        let reply = raw.pointee
        guard reply.type == REDIS_REPLY_ARRAY, reply.elements >= 3, let elements = reply.element,
              let kindReply = elements[0], let channelReply = elements[1], let third = elements[2],
              kindReply.pointee.type == REDIS_REPLY_STRING, channelReply.pointee.type == REDIS_REPLY_STRING else {
            teardown(.protocolError("malformed pub/sub frame"))
            return
        }
        let kind = Self.bytes(of: kindReply.pointee)
        let channel = String(decoding: Self.bytes(of: channelReply.pointee), as: UTF8.self)
        if kind.elementsEqual("message".utf8) {
            guard third.pointee.type == REDIS_REPLY_STRING else {
                teardown(.protocolError("pub/sub message without a payload"))
                return
            }
            let payload = Array(Self.bytes(of: third.pointee))
            onMessage?(channel, payload)
            return
        }
        let subscribed = kind.elementsEqual("subscribe".utf8)
        guard subscribed || kind.elementsEqual("unsubscribe".utf8) else {
            teardown(.protocolError("unexpected pub/sub frame \(String(decoding: kind, as: UTF8.self))"))
            return
        }
        guard let head = queue.first else {
            teardown(.protocolError("unrequested confirmation for \(channel)"))
            return
        }
        switch head.expectation {
        case .subscribed(let expected) where subscribed && expected == channel:
            subscribedChannels.insert(channel)
        case .unsubscribed(let expected) where !subscribed && expected == channel:
            subscribedChannels.remove(channel)
        default:
            teardown(.protocolError("confirmation for \(channel) out of order"))
            return
        }
        _ = queue.removeFirst()
        if let change = subscriptionChanges[channel] {
            subscriptionChanges[channel] = change.pending > 1 ? (change.pending - 1, change.lastSubscribes) : nil
        }
        head.group.receive(nil)
    }

    private static func bytes(of reply: redisReply) -> UnsafeRawBufferPointer {
        guard let str = reply.str, reply.len > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: str, count: reply.len)
    }

    // MARK: Closing

    /// Closes the connection; pending requests fail with `.connectionLost`. `onClose` is not called.
    package func close() {
        onClose = nil
        if state == .initial || (state == .connecting && fd < 0) {
            // Not connected yet (or still resolving): `open()` notices the state when it resumes.
            if closeReason == nil { closeReason = .unavailable }
            state = .closed
            return
        }
        teardown(.connectionLost)
    }

    /// Closes the socket (now, or when the current `handleIO` returns) and fails what is pending.
    private func teardown(_ reason: RedisError) {
        guard fd >= 0 else { return }
        if closeReason == nil { closeReason = reason }
        if ioDepth > 0 {
            teardownDeferred = true
            return
        }
        let wasReady = state == .ready
        let finalReason = closeReason ?? reason
        if let registration { EventLoop.shared.deregister(registration) }
        registration = nil
        tls = nil  // SSL_free before the descriptor goes
        Glibc.close(fd)
        fd = -1
        link = .none
        if let reader { redisReaderFree(reader) }
        reader = nil
        output = []
        outputStart = 0
        state = .closed
        if let timeoutTimer { EventLoop.shared.cancel(timeoutTimer) }
        timeoutTimer = nil
        if let connectTimer { EventLoop.shared.cancel(connectTimer) }
        connectTimer = nil
        if failureReason == nil { failureReason = "\(configuration.endpointDescription): connection closed" }
        for entry in queue.removeAll() { entry.group.fail(finalReason) }
        subscribedChannels.removeAll()
        subscriptionChanges.removeAll()
        resumeConnectWaiter(.failure(finalReason))
        let closeHandler = onClose
        onClose = nil
        onMessage = nil
        if wasReady { closeHandler?(finalReason) }
    }

    // MARK: Timeouts

    /// One timer for the whole FIFO, aimed at the oldest entry (commands share one timeout, so later
    /// entries are due later). It is re-aimed only when an earlier deadline appears, e.g. the first
    /// command after a handshake that ran under the longer connect timeout.
    private func armTimeoutTimer() {
        guard let head = queue.first else { return }
        if let timer = timeoutTimer {
            if armedDeadline <= head.deadline { return }
            EventLoop.shared.cancel(timer)
        }
        armedDeadline = head.deadline
        timeoutTimer = EventLoop.shared.schedule(after: Self.remaining(until: head.deadline)) { [weak self] in
            self?.timeoutTimerFired()
        }
    }

    private func timeoutTimerFired() {
        timeoutTimer = nil
        guard let head = queue.first else { return }
        if MonotonicClock.now() >= head.deadline {
            // The handshake's commands carry the connect deadline: that is the timeout that ran out.
            if state == .handshaking { return connectTimedOut() }
            failureReason = "\(configuration.endpointDescription): no reply within \(configuration.commandTimeout.wholeMilliseconds) ms"
            teardown(.timeout)
        } else {
            armTimeoutTimer()
        }
    }

    private static func deadline(after timeout: Duration) -> UInt64 {
        MonotonicClock.deadline(after: max(.milliseconds(1), timeout), from: MonotonicClock.now())
    }

    private static func remaining(until deadline: UInt64) -> Duration {
        MonotonicClock.duration(until: deadline, from: MonotonicClock.now())
    }

    // MARK: Loop integration

    /// Drives the socket from epoll readiness (called by the loop).
    package func handleIO(_ events: IOEvents) {
        guard fd >= 0 else { return }
        ioDepth += 1
        switch link {
        case .none:
            break
        case .connectingTCP:
            finishTCPConnect()
        case .handshakingTLS:
            continueTLSHandshake()
        case .open:
            if events.readable || events.hangup || (tls != nil && tlsWantsWrite && events.writable) {
                // Every reply of this read is handled in one scope: a pub/sub fan-out that reaches a
                // socket several times sends its frames together (`WriteCoalescing`).
                WriteCoalescing.perform { readAvailable() }
            }
            if fd >= 0, !teardownDeferred, events.writable || outputStart < output.count {
                flush()
            }
            if fd >= 0, !teardownDeferred { updateInterest() }
        }
        ioDepth -= 1
        if teardownDeferred && ioDepth == 0 {
            teardownDeferred = false
            teardown(closeReason ?? .connectionLost)
        }
    }

    /// Reads until the socket has nothing more, feeding the parser and dispatching each reply.
    private func readAvailable() {
        let buffer = Self.readBuffer
        while fd >= 0, !teardownDeferred {
            let count: Int
            if let tls {
                let (read, progress) = tls.read(into: buffer)
                switch progress {
                case .done:
                    tlsWantsWrite = false
                    count = read
                case .wantsRead:
                    tlsWantsWrite = false
                    return
                case .wantsWrite:
                    tlsWantsWrite = true
                    return
                case .failed(let reason):
                    failureReason = "\(configuration.endpointDescription): \(reason)"
                    return teardown(.connectionLost)
                }
            } else {
                count = Glibc.read(fd, buffer.baseAddress, buffer.count)
                if count < 0 {
                    let code = errno
                    if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return }
                    failureReason = "\(configuration.endpointDescription): \(String(cString: strerror(code)))"
                    return teardown(.connectionLost)
                }
            }
            if count == 0 {
                failureReason = "\(configuration.endpointDescription): connection closed by the server"
                return teardown(.connectionLost)
            }
            guard let reader, redisReaderFeed(reader, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), count) == REDIS_OK else {
                return teardown(.protocolError("cannot buffer the reply"))
            }
            dispatchReplies()
            if count < buffer.count && tls == nil { return }  // drained (a TLS session may hold more)
        }
    }

    private func dispatchReplies() {
        while fd >= 0, !teardownDeferred, let reader {
            var raw: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
                let text = withUnsafeBytes(of: reader.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                return teardown(.protocolError("malformed reply: \(text)"))
            }
            guard let raw else { return }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            defer { freeReplyObject(raw) }
            if subscribedMode, queue.first.map({ if case .reply = $0.expectation { false } else { true } }) ?? true {
                didReceive(push: reply)
            } else if subscribedMode, Self.isMessage(reply.pointee) {
                didReceive(push: reply)
            } else {
                didReceive(reply: reply)
            }
        }
    }

    /// A pub/sub `message` frame (it can arrive between a command and its reply only once
    /// subscribed, which commands are not allowed to be).
    private static func isMessage(_ reply: redisReply) -> Bool {
        guard reply.type == REDIS_REPLY_ARRAY, reply.elements >= 1, let first = reply.element?[0] else { return false }
        return first.pointee.type == REDIS_REPLY_STRING && bytes(of: first.pointee).elementsEqual("message".utf8)
    }

    /// Writes what the socket takes of the output buffer.
    private func flush() {
        while outputStart < output.count, fd >= 0 {
            let written: Int = output.withUnsafeBytes { all in
                let pending = UnsafeRawBufferPointer(rebasing: all[outputStart...])
                if let tls {
                    let (count, progress) = tls.write(pending)
                    switch progress {
                    case .done: return count
                    case .wantsRead, .wantsWrite: return 0
                    case .failed(let reason):
                        failureReason = "\(configuration.endpointDescription): \(reason)"
                        return -2
                    }
                }
                let count = Glibc.send(fd, pending.baseAddress, pending.count, CInt(MSG_NOSIGNAL))
                if count >= 0 { return count }
                let code = errno
                if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return 0 }
                failureReason = "\(configuration.endpointDescription): \(String(cString: strerror(code)))"
                return -2
            }
            if written < 0 { return teardown(.connectionLost) }
            if written == 0 { break }
            outputStart += written
        }
        if outputStart == output.count {
            output.removeAll(keepingCapacity: output.capacity <= 1 << 20)
            outputStart = 0
        } else if outputStart >= 64 * 1024 && outputStart * 2 >= output.count {
            output.removeFirst(outputStart)
            outputStart = 0
        }
    }

    /// Read always; write while output waits (or TLS needs it).
    private func updateInterest() {
        var wanted: IOInterest = .read
        if outputStart < output.count || tlsWantsWrite { wanted.insert(.write) }
        setInterest(wanted)
    }

    private func setInterest(_ wanted: IOInterest) {
        guard let registration, wanted != interest else { return }
        interest = wanted
        EventLoop.shared.modify(registration, interest: wanted)
    }

    /// Probes an idle connection after `idleSeconds`, then every third of that, three times: a peer
    /// that vanished (host down, cable cut) is detected even on a connection that never writes.
    private static func enableKeepAlive(fd: CInt, idleSeconds: CInt) {
        var on: CInt = 1
        var idle = idleSeconds
        var interval = max(1, idleSeconds / 3)
        var count: CInt = 3
        let size = socklen_t(MemoryLayout<CInt>.size)
        _ = setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, size)
        _ = setsockopt(fd, CInt(IPPROTO_TCP), TCP_KEEPIDLE, &idle, size)
        _ = setsockopt(fd, CInt(IPPROTO_TCP), TCP_KEEPINTVL, &interval, size)
        _ = setsockopt(fd, CInt(IPPROTO_TCP), TCP_KEEPCNT, &count, size)
    }
}
