import CHiredis
import Glibc
import Runtime

/// One hiredis async connection driven by the process's epoll loop.
///
/// Lifecycle: `open()` resolves the host off the loop, connects with a deadline, then pipelines the
/// handshake (`AUTH`, `SELECT`, `CLIENT SETNAME`, `PING`). A connection is used either for commands
/// (`send`, `pipeline`) or for pub/sub (`subscribe`, `unsubscribe`, `onMessage`), never both: a
/// subscribed hiredis context accepts nothing else. It never reconnects; `RedisClient` and
/// `RedisSubscriber` replace dead connections.
///
/// Every request waits in one FIFO (Redis answers in order, pub/sub confirmations included). When the
/// oldest entry is past its deadline the connection is torn down and everything pending fails with
/// `.timeout`: Redis cannot cancel a command, and a late reply would otherwise be matched to the wrong
/// request. Task cancellation does not cancel a sent command for the same reason.
///
/// Memory safety with hiredis: the context points back at this object unretained. That is sound
/// because the loop registration (made before any hook can run, removed in the `cleanup` hook) keeps
/// the object alive as long as the context exists, and hiredis only calls back from inside calls this
/// object makes. Call `close()` when done; a connection dropped without it lives until the server
/// closes it.
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
    package private(set) var failureReason: String?
    /// Called once when a `ready` connection dies (not when `open()` fails: it throws instead).
    package var onClose: (@LoopActor (RedisError) -> Void)?
    /// Pub/sub messages: `(channel, payload)`.
    package var onMessage: (@LoopActor (String, [UInt8]) -> Void)?
    /// Channels Redis confirmed as subscribed on this connection.
    package private(set) var subscribedChannels: Set<String> = []

    private var context: UnsafeMutablePointer<redisAsyncContext>?
    private var registration: IORegistration?
    private var interest: IOInterest = []
    private var queue = RedisFIFO<Entry>()
    private var timeoutTimer: TimerHandle?
    private var armedDeadline: UInt64 = 0
    private var connectTimer: TimerHandle?
    private var connectWaiter: CheckedContinuation<Result<Void, RedisError>, Never>?
    /// The first reason this connection is going away; later ones do not overwrite it.
    private var closeReason: RedisError?
    /// Depth of calls into hiredis that may run callbacks: freeing the context there is deferred.
    private var hiredisDepth = 0
    private var teardownDeferred = false
    /// Per channel: SUBSCRIBE/UNSUBSCRIBE sent but not confirmed, and whether the last one sent subscribes.
    private var subscriptionChanges: [String: (pending: Int, lastSubscribes: Bool)] = [:]

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
    /// Throws `.unavailable` (cannot resolve or connect, or closed meanwhile), `.timeout`,
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
        guard (1...65_535).contains(configuration.port) else {
            failureReason = "\(configuration.endpointDescription): the port must be 1...65535"
            state = .closed
            throw .unavailable
        }
        guard let ac = redisAsyncConnect(address, CInt(configuration.port)) else {
            failureReason = "\(configuration.endpointDescription): out of memory"
            state = .closed
            throw .unavailable
        }
        if ac.pointee.err != 0 {
            failureReason = "\(configuration.endpointDescription): \(Self.errorText(ac.pointee.errstr))"
            redisAsyncFree(ac)
            state = .closed
            throw .unavailable
        }
        let fd = ac.pointee.c.fd
        // hiredis does not set close-on-exec; a child process must not inherit the Redis socket.
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        do {
            registration = try EventLoop.shared.register(fd: fd, interest: [], handler: self)
        } catch {
            failureReason = "\(configuration.endpointDescription): \(error)"
            redisAsyncFree(ac)  // no hooks installed yet: nothing calls back
            state = .closed
            throw .unavailable
        }
        context = ac
        let me = Unmanaged.passUnretained(self).toOpaque()
        ac.pointee.data = me
        // All hooks before the connect callback: setting it asks for write interest at once.
        ac.pointee.ev.data = me
        ac.pointee.ev.addRead = { RedisConnection.withConnection($0) { $0.changeInterest(adding: .read) } }
        ac.pointee.ev.delRead = { RedisConnection.withConnection($0) { $0.changeInterest(removing: .read) } }
        ac.pointee.ev.addWrite = { RedisConnection.withConnection($0) { $0.changeInterest(adding: .write) } }
        ac.pointee.ev.delWrite = { RedisConnection.withConnection($0) { $0.changeInterest(removing: .write) } }
        ac.pointee.ev.cleanup = { RedisConnection.withConnection($0) { $0.contextDidCleanUp() } }
        hiredisDepth += 1
        _ = redisAsyncSetConnectCallback(ac) { context, status in
            guard let context else { return }
            RedisConnection.withConnection(context.pointee.data) { $0.didConnect(status: status) }
        }
        hiredisDepth -= 1
    }

    private func didConnect(status: CInt) {
        guard let ac = context else { return }
        if status == REDIS_OK {
            if configuration.keepAliveSeconds > 0 {
                Self.enableKeepAlive(fd: ac.pointee.c.fd, idleSeconds: configuration.keepAliveSeconds)
            }
            resumeConnectWaiter(.success(()))
        } else {
            failureReason = "\(configuration.endpointDescription): \(Self.errorText(ac.pointee.errstr))"
            if closeReason == nil { closeReason = .unavailable }
            // hiredis frees the context right after this callback; the cleanup hook resumes the waiter.
        }
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
        guard let ac = context, state == .ready || state == .handshaking else { return .failure(.unavailable) }
        if commands.isEmpty { return .success([]) }
        if ac.pointee.c.flags & REDIS_SUBSCRIBED != 0 {
            return .failure(.protocolError("this connection is subscribed; it only accepts SUBSCRIBE/UNSUBSCRIBE"))
        }
        guard queue.count + commands.count <= configuration.maxPendingReplies else { return .failure(.unavailable) }
        // Bytes hiredis has not written yet: a stalled socket must not grow memory without bound.
        if let output = ac.pointee.c.obuf, sdslen(output) > configuration.maxOutputBufferBytes {
            return .failure(.unavailable)
        }
        let due = deadline ?? Self.deadline(after: configuration.commandTimeout)
        return await withCheckedContinuation { continuation in
            let group = PendingGroup(count: commands.count, continuation: continuation)
            for command in commands {
                let status = command.withArgv { argc, argv, lengths in
                    redisAsyncCommandArgv(ac, { context, reply, _ in
                        // A NULL reply means the context is being freed; the cleanup hook fails the entry.
                        guard let context, let reply else { return }
                        RedisConnection.withConnection(context.pointee.data) { $0.didReceive(reply: reply) }
                    }, nil, argc, argv, lengths)
                } ?? REDIS_ERR
                guard status == REDIS_OK else {
                    // hiredis refuses commands only while the context is going away (or out of memory).
                    group.fail(.connectionLost)
                    teardown(.connectionLost)
                    return
                }
                queue.append(Entry(expectation: .reply, group: group, deadline: due))
            }
            armTimeoutTimer()
        }
    }

    private func didReceive(reply: UnsafeMutableRawPointer) {
        guard !teardownDeferred, state == .ready || state == .handshaking else { return }
        let value = RedisValue(reply: reply.assumingMemoryBound(to: redisReply.self))
        guard let head = queue.first, case .reply = head.expectation else {
            teardown(.protocolError("a reply arrived that no command is waiting for"))
            return
        }
        _ = queue.removeFirst()
        if timeoutTimer != nil && !queue.isEmpty { armTimeoutTimer() }
        head.group.receive(value)
    }

    // MARK: Pub/sub
    //
    // hiredis 0.14 keeps one callback per channel and calls it for the SUBSCRIBE confirmation, every
    // message, the UNSUBSCRIBE confirmation, and with NULL at teardown. All of ours are the same
    // function, so the channel is read from the frame itself; confirmations are matched to requests
    // through the FIFO (Redis confirms in request order).

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
        // Only channels hiredis knows: an UNSUBSCRIBE confirmation for an unknown channel can be
        // dropped by hiredis 0.14, which would leave our FIFO waiting for it.
        let needed = channels.filter { channel in
            seen.insert(channel).inserted && (subscriptionChanges[channel]?.lastSubscribes ?? subscribedChannels.contains(channel))
        }
        try await changeSubscriptions(needed, subscribe: false)
    }

    private func changeSubscriptions(_ channels: [String], subscribe: Bool) async throws(RedisError) {
        guard state == .ready, let ac = context else { throw .unavailable }
        if channels.isEmpty { return }
        // No maxPendingReplies check: the channel count is bounded by the owner's own state (one per
        // local user), and refusing a resubscription would silently lose those users' messages.
        let due = Self.deadline(after: configuration.commandTimeout)
        let result: Result<[RedisValue], RedisError> = await withCheckedContinuation { continuation in
            let group = PendingGroup(count: channels.count, continuation: continuation)
            var start = 0
            while start < channels.count {
                let chunk = channels[start..<min(start + Self.maxChannelsPerCommand, channels.count)]
                start += chunk.count
                let command: RedisCommand = subscribe ? .subscribe(chunk) : .unsubscribe(chunk)
                let status = command.withArgv { argc, argv, lengths in
                    redisAsyncCommandArgv(ac, { context, reply, _ in
                        guard let context, let reply else { return }
                        RedisConnection.withConnection(context.pointee.data) { $0.didReceive(push: reply) }
                    }, nil, argc, argv, lengths)
                } ?? REDIS_ERR
                guard status == REDIS_OK else {
                    group.fail(.connectionLost)
                    teardown(.connectionLost)
                    return
                }
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
    private func didReceive(push raw: UnsafeMutableRawPointer) {
        guard !teardownDeferred, state == .ready else { return }
        let reply = raw.assumingMemoryBound(to: redisReply.self).pointee
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
        if state == .initial || (state == .connecting && context == nil) {
            // Not connected yet (or still resolving): `open()` notices the state when it resumes.
            if closeReason == nil { closeReason = .unavailable }
            state = .closed
            return
        }
        teardown(.connectionLost)
    }

    /// Frees the context (now, or when the current hiredis call returns). The cleanup hook does the rest.
    private func teardown(_ reason: RedisError) {
        guard let ac = context else { return }
        if closeReason == nil { closeReason = reason }
        if hiredisDepth > 0 {
            teardownDeferred = true
            return
        }
        hiredisDepth += 1
        redisAsyncFree(ac)
        hiredisDepth -= 1
    }

    /// hiredis is about to close the fd and free the context: deregister, then fail what is pending.
    private func contextDidCleanUp() {
        guard let ac = context else { return }
        let wasReady = state == .ready
        if closeReason == nil {
            closeReason = .connectionLost
            if ac.pointee.err != 0 {
                failureReason = "\(configuration.endpointDescription): \(Self.errorText(ac.pointee.errstr))"
            } else {
                failureReason = "\(configuration.endpointDescription): connection closed"
            }
        }
        let reason = closeReason ?? .connectionLost
        context = nil
        if let registration { EventLoop.shared.deregister(registration) }
        registration = nil
        state = .closed
        if let timeoutTimer { EventLoop.shared.cancel(timeoutTimer) }
        timeoutTimer = nil
        if let connectTimer { EventLoop.shared.cancel(connectTimer) }
        connectTimer = nil
        for entry in queue.removeAll() { entry.group.fail(reason) }
        subscribedChannels.removeAll()
        subscriptionChanges.removeAll()
        resumeConnectWaiter(.failure(reason))
        let closeHandler = onClose
        onClose = nil
        onMessage = nil
        if wasReady { closeHandler?(reason) }
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

    /// Drives hiredis from epoll readiness (called by the loop).
    package func handleIO(_ events: IOEvents) {
        guard let ac = context else { return }
        hiredisDepth += 1
        if events.readable || events.hangup {
            // Every reply of this read is handled in one scope: a pub/sub fan-out that reaches a
            // socket several times sends its frames together (`WriteCoalescing`).
            WriteCoalescing.perform { redisAsyncHandleRead(ac) }
        }
        // The read may have freed the context (cleanup cleared `context`): check before writing.
        if events.writable, let ac = context {
            redisAsyncHandleWrite(ac)
        }
        hiredisDepth -= 1
        if teardownDeferred && hiredisDepth == 0 {
            teardownDeferred = false
            teardown(closeReason ?? .connectionLost)
        }
    }

    private func changeInterest(adding: IOInterest = [], removing: IOInterest = []) {
        guard let registration else { return }
        interest.formUnion(adding)
        interest.subtract(removing)
        EventLoop.shared.modify(registration, interest: interest)
    }

    /// Enters Swift from a hiredis callback whose privdata is this object.
    nonisolated private static func withConnection(
        _ privdata: UnsafeMutableRawPointer?, _ body: @LoopActor (RedisConnection) -> Void
    ) {
        guard let privdata else { return }
        let connection = Unmanaged<RedisConnection>.fromOpaque(privdata).takeUnretainedValue()
        LoopActor.assumeIsolated { body(connection) }
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

    private static func errorText(_ text: UnsafeMutablePointer<CChar>?) -> String {
        guard let text else { return "unknown error" }
        let message = String(cString: text)
        return message.isEmpty ? "unknown error" : message
    }
}
