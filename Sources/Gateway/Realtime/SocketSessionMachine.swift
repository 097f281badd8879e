import Shared

/// The protocol logic of one Socket.IO client on one Engine.IO WebSocket session, without I/O:
/// Engine.IO and Socket.IO decoding, the CONNECT handshake with token verification, the per-socket
/// event budget, the session's own events (`ping`, `whoami`, `authenticate`, `requestServerAck`),
/// server→client acks, token expiry and revocation. Every input returns the actions the session
/// (`SocketSession`) performs: writes, a close, timers, and the asynchronous checks only it can make.
///
/// Pure and deterministic apart from the clock values passed in, so it is unit-tested without
/// sockets and fuzzed with arbitrary packet sequences and arbitrary (validly signed) token claims.
/// Every number that comes from the client or a token goes through saturating arithmetic or a
/// range check here.
struct SocketSessionMachine {
    struct Configuration: Sendable {
        /// Verifies tokens (algorithm, signature, times, issuer, audience).
        var signer: JWTSigner
        /// Time a socket has to send CONNECT.
        var connectTimeout: Duration
        /// Per-socket event budget; nil admits everything.
        var eventBudget: SocketEventBudget.Configuration?
        /// Most server→client acks a socket may have outstanding (`requestServerAck`).
        var maxPendingServerAcks = 16
        /// Longest wait for a client's ack before `ack_timeout`.
        var serverAckTimeout: Duration = .seconds(10)
        /// Longest timer armed at once: a token valid for years re-arms at this interval.
        var maxTimer: Duration = .seconds(86_400)
        /// The dialects served and the default one (issue 16).
        var dialects = DialectConfiguration()

        /// Clock skew tolerated on the token's expiry.
        var leewaySeconds: Int64 { signer.leewaySeconds }
    }

    /// Clock readings for one input.
    struct Instant: Sendable, Equatable {
        /// Monotonic nanoseconds (budgets).
        var monotonic: UInt64
        /// Milliseconds since the epoch (token times).
        var wallMilliseconds: Int64

        var wallSeconds: Int64 { wallMilliseconds / 1000 }
    }

    enum State: Sendable, Equatable {
        /// Open sent; waiting for the Socket.IO CONNECT.
        case awaitingConnect
        /// CONNECT with a valid token; the session is subscribing and checking revocation.
        case authenticating(Principal)
        case connected(Principal)
        case closed
    }

    /// What a reconnecting Socket.IO 4.6+ client presents in its CONNECT auth: the private session
    /// id and the last offset it got (both as given, bounded; checked by the session's host).
    struct RecoveryRequest: Sendable, Equatable {
        var pid: String
        var offset: String?
    }

    /// A gateway event for the session to route (messaging, presence).
    struct EventRequest: Sendable, Equatable {
        var event: SocketEvent
        var arguments: [JSONValue]
        var ackID: Int64?
        var principal: Principal

        /// The first argument, or null.
        var argument: JSONValue { arguments.first ?? .null }
    }

    enum Action: Sendable, Equatable {
        /// Write an Engine.IO packet.
        case sendEngineIO(EngineIOPacket)
        /// Write a Socket.IO packet (inside an Engine.IO message).
        case send(SocketIOPacket)
        /// The client answered a heartbeat ping.
        case pongReceived
        /// Close the WebSocket.
        case close(code: UInt16, reason: String)
        /// CONNECT carried a valid token: subscribe the user's channel, check revocation and that
        /// the account exists (and recover the session the client names, issue 15), then call
        /// `admitted` or `refused`.
        case admit(Principal, recovery: RecoveryRequest?)
        /// `authenticate` carried a valid token: check revocation, then `reauthenticated` or
        /// `reauthenticationFailed`.
        case confirmToken(Principal, ackID: Int64?)
        /// (Re-)arm the session's one deadline timer (connect deadline, then token expiry).
        case armDeadline(after: Duration)
        /// Count an incoming event (metrics).
        case countEvent(String)
        /// A gateway event to route.
        case dispatch(EventRequest)
        /// The socket is connected as this principal (presence).
        case didConnect(Principal)
        /// Arm the timeout of server ack `id`; on fire call `serverAckTimedOut(id)`.
        case armServerAckTimeout(id: Int64, after: Duration)
        /// The client acknowledged the delivery of room message `messageID` (issue 13).
        case deliveryAcknowledged(messageID: Int64, userID: Int64)
        /// A dialect request with no native event (issue 16), for the host to answer.
        case dispatchDialect(DialectRequest)
        /// Seed 001 (issue 16): a CONNECT without a token is answered, and the socket must send
        /// `auth:login {token}` before anything else: call `awaitLogin(socketID:)`.
        case awaitLogin
    }

    /// A dialect client's request that is not a native event (seed 002's `get_chat_history`).
    struct DialectRequest: Sendable, Equatable {
        var inbound: DialectEvents.Inbound
        var ackID: Int64?
        var principal: Principal
    }

    /// Revocations remembered, for tokens whose check was in flight when one arrived.
    private static let rememberedRevocations = 16

    /// Configuration shared by every session of a gateway: one allocation, not one copy per socket.
    final class SharedConfiguration: Sendable {
        let value: Configuration

        init(_ value: Configuration) {
            self.value = value
        }
    }

    private let shared: SharedConfiguration
    var configuration: Configuration { shared.value }
    private(set) var state = State.awaitingConnect
    /// The Socket.IO session id given at CONNECT.
    private(set) var socketID = ""
    /// The recovery pid the CONNECT answer named (issue 15), repeated by a second CONNECT.
    private var pid: String?
    /// The API the client speaks (issue 16): the handshake query's `dialect`, or CONNECT's auth
    /// `dialect`, or the configured default.
    private(set) var dialect = Dialect.native
    /// The handshake query's `dialect`, if any.
    private var queryDialect: String?
    /// Seed 001's login: the CONNECT was answered without a token and `auth:login` is awaited (or
    /// being checked); the answer is `auth:ok` / `auth:error` instead of CONNECT / CONNECT_ERROR.
    private var loginFlow = false
    /// The upgrade request's bearer token, kept only until CONNECT succeeds.
    private var headerToken: String?
    private var budget: SocketEventBudget?
    /// Set when the connect deadline passed while a CONNECT was being checked.
    private var connectDeadlinePassed = false
    /// Outstanding server→client acks: server ack id → the client's request ack id.
    private var serverAcks: [Int64: Int64?] = [:]
    private var nextServerAckID: Int64 = 0
    private var revocations: [TokenRevocation] = []

    init(configuration: SharedConfiguration, headerToken: String?, queryDialect: String? = nil, now: Instant) {
        shared = configuration
        self.headerToken = headerToken
        self.queryDialect = queryDialect
        dialect = configuration.value.dialects.socketDefault
        budget = configuration.value.eventBudget.map { SocketEventBudget(configuration: $0, now: now.monotonic) }
    }

    /// A machine with a configuration of its own (tests, fuzzing).
    init(configuration: Configuration, headerToken: String?, queryDialect: String? = nil, now: Instant) {
        self.init(configuration: SharedConfiguration(configuration), headerToken: headerToken, queryDialect: queryDialect, now: now)
    }

    /// The user, once connected.
    var principal: Principal? {
        if case .connected(let principal) = state { return principal }
        return nil
    }

    /// Whether the socket is connected (as `principal != nil`, without copying the principal).
    var isConnected: Bool {
        if case .connected = state { return true }
        return false
    }

    /// Server acks outstanding.
    var pendingServerAcks: Int { serverAcks.count }

    // MARK: Lifecycle

    /// The session opened: the connect deadline starts.
    mutating func start() -> [Action] {
        guard state == .awaitingConnect else { return [] }
        return [.armDeadline(after: clampTimer(configuration.connectTimeout))]
    }

    /// The WebSocket closed.
    mutating func closed() {
        state = .closed
        serverAcks = [:]
    }

    /// The deadline timer fired: no CONNECT in time, or the token may have expired.
    mutating func deadlineFired(now: Instant) -> [Action] {
        switch state {
        case .awaitingConnect:
            return close(WebSocketCloseCode.policyViolation, loginFlow ? "no auth:login in time" : "no Socket.IO CONNECT in time")
        case .authenticating:
            connectDeadlinePassed = true
            return []
        case .connected(let principal):
            let remaining = principal.millisecondsUntilExpiry(nowMilliseconds: now.wallMilliseconds,
                                                               leewaySeconds: configuration.leewaySeconds)
            guard remaining <= 0 else { return [.armDeadline(after: clampTimer(.milliseconds(remaining)))] }
            return end(.tokenExpired, message: "the access token expired; reconnect with a fresh token", reason: "token expired")
        case .closed:
            return []
        }
    }

    // MARK: Input

    /// A text WebSocket message: one Engine.IO packet.
    mutating func received(text: String, now: Instant) -> [Action] {
        guard state != .closed else { return [] }
        let packet: EngineIOPacket
        do {
            packet = try EngineIOPacket.decode(text)
        } catch {
            return protocolViolation("malformed Engine.IO packet")
        }
        switch packet {
        case .message(let body): return receivedSocketIO(body, now: now)
        case .pong: return [.pongReceived]
        case .ping(let probe): return [.sendEngineIO(.pong(probe))]
        case .close: return close(WebSocketCloseCode.normalClosure, "")
        case .noop, .upgrade: return []
        case .open: return protocolViolation("clients do not send open packets")
        }
    }

    /// A binary WebSocket message (not supported: Socket.IO binary events need attachments).
    mutating func receivedBinary() -> [Action] {
        guard state != .closed else { return [] }
        return [error(.binaryNotSupported, ackID: nil)]
    }

    private mutating func receivedSocketIO(_ body: String, now: Instant) -> [Action] {
        let packet: SocketIOPacket
        do {
            packet = try SocketIOPacket.decode(body)
        } catch {
            return protocolViolation("malformed Socket.IO packet")
        }
        if packet.type == .connect { return connect(packet, now: now) }
        if packet.type == .connectError { return protocolViolation("clients do not send CONNECT_ERROR") }
        guard packet.namespace == "/" else { return otherNamespace(packet, now: now) }
        switch packet.type {
        case .event:
            if let refusal = spend(now: now, ackID: packet.ackID) { return refusal }
            if loginFlow, state == .awaitingConnect {
                // Seed 001: nothing but `auth:login` until it succeeded.
                guard packet.eventName == DialectEvent.seed001AuthLogin.name else { return [error(.notConnected, ackID: packet.ackID)] }
                return login(packet.eventArguments.first ?? .null, now: now)
            }
            guard case .connected(let principal) = state else {
                return [error(.notConnected, ackID: packet.ackID)]
            }
            return event(packet, principal: principal, now: now)
        case .ack:
            guard let id = packet.ackID else { return [] }
            if let requestAckID = serverAcks.removeValue(forKey: id) { return serverAckAnswered(requestAckID, .array(packet.eventArgumentsForAck)) }
            guard case .connected(let principal) = state, let messageID = Self.messageID(deliveryAckID: id) else { return [] }
            return [.deliveryAcknowledged(messageID: messageID, userID: principal.userID)]
        case .disconnect:
            return close(WebSocketCloseCode.normalClosure, "")
        case .binaryEvent, .binaryAck:
            if packet.type == .binaryEvent, let refusal = spend(now: now, ackID: packet.ackID) { return refusal }
            return [error(.binaryNotSupported, message: "binary events are not supported; send JSON", ackID: packet.ackID)]
        case .connect, .connectError:
            return []
        }
    }

    /// A packet for a namespace this socket never joined (only `/` exists): not handled. Events
    /// are refused with `invalid_namespace` on `/`; acks and disconnects for it change nothing.
    private mutating func otherNamespace(_ packet: SocketIOPacket, now: Instant) -> [Action] {
        guard packet.type == .event || packet.type == .binaryEvent else { return [] }
        if let refusal = spend(now: now, ackID: nil) { return refusal }
        return [error(.invalidNamespace, message: "not connected to namespace \(packet.namespace); only / exists", ackID: nil)]
    }

    // MARK: CONNECT

    private mutating func connect(_ packet: SocketIOPacket, now: Instant) -> [Action] {
        guard packet.namespace == "/" else {
            return [.send(.connectError(message: "unknown namespace \(packet.namespace)", code: ErrorCode.invalidNamespace.name,
                                        namespace: packet.namespace))]
        }
        switch state {
        case .awaitingConnect: break
        case .connected: return [.send(.connect(sid: socketID, pid: pid))]  // idempotent
        case .authenticating, .closed: return []
        }
        var token = headerToken
        if case .object(let auth)? = packet.payload, case .string(let given)? = auth["token"] { token = given }
        var askedDialect = queryDialect
        if case .object(let auth)? = packet.payload, case .string(let given)? = auth["dialect"] { askedDialect = given }
        guard let chosen = configuration.dialects.dialect(named: askedDialect) else {
            return [.send(.connectError(message: ErrorCode.dialectUnsupported.defaultMessage, code: ErrorCode.dialectUnsupported.name))]
        }
        dialect = chosen
        guard let token, !token.isEmpty else {
            if dialect == .seed001 && !loginFlow { return [.awaitLogin] }
            return [.send(.connectError(message: "send the access token as auth {token} or an Authorization: Bearer header",
                                        code: ErrorCode.tokenMissing.name))]
        }
        let principal: Principal
        do {
            principal = try verify(token, now: now)
        } catch {
            return [.send(.connectError(message: error.message, code: error.code.name))]
        }
        state = .authenticating(principal)
        return [.admit(principal, recovery: Self.recoveryRequest(packet.payload))]
    }

    /// `pid` and `offset` of a CONNECT auth object, when they are strings of sane length.
    private static func recoveryRequest(_ payload: JSONValue?) -> RecoveryRequest? {
        guard case .object(let auth)? = payload, case .string(let pid)? = auth["pid"],
              !pid.isEmpty, pid.utf8.count <= RecoveryPID.maxEncodedLength else { return nil }
        var offset: String?
        if case .string(let given)? = auth["offset"], given.utf8.count <= RecoveryOffset.maxEncodedLength { offset = given }
        return RecoveryRequest(pid: pid, offset: offset)
    }

    /// Seed 001: the CONNECT without a token is answered with `socketID`; `auth:login` must follow
    /// before the connect deadline.
    mutating func awaitLogin(socketID: String) -> [Action] {
        guard state == .awaitingConnect, !loginFlow else { return [] }
        loginFlow = true
        self.socketID = socketID
        return [.send(.connect(sid: socketID))]
    }

    /// Seed 001's `auth:login {token}`: the token is checked as a CONNECT's would be.
    private mutating func login(_ argument: JSONValue, now: Instant) -> [Action] {
        guard case .string(let token)? = argument["token"], !token.isEmpty else {
            return [.send(.event(DialectEvent.seed001AuthError.name, [["message": "send {token}", "code": .string(ErrorCode.tokenMissing.name)]]))]
        }
        do {
            let principal = try verify(token, now: now)
            state = .authenticating(principal)
            return [.admit(principal, recovery: nil)]
        } catch {
            return [.send(.event(DialectEvent.seed001AuthError.name, [["message": .string(error.message), "code": .string(error.code.name)]]))]
        }
    }

    /// The checks of `admit` passed: the socket is connected (its CONNECT answer names `pid` when
    /// the session can be recovered later).
    mutating func admitted(socketID: String, pid: String? = nil, now: Instant) -> [Action] {
        guard case .authenticating(let principal) = state else { return [] }
        if isRevoked(principal) {
            return refused(APIError(.tokenRevoked))
        }
        state = .connected(principal)
        headerToken = nil
        // Seed 001's login: the CONNECT was answered already (with its socket id); `auth:ok` says
        // the login succeeded.
        let answer: SocketIOPacket
        if loginFlow {
            answer = .event(DialectEvent.seed001AuthOk.name, [["userId": .int(principal.userID)]])
        } else {
            self.socketID = socketID
            self.pid = pid
            answer = .connect(sid: socketID, pid: pid)
        }
        let remaining = principal.millisecondsUntilExpiry(nowMilliseconds: now.wallMilliseconds, leewaySeconds: configuration.leewaySeconds)
        return [.armDeadline(after: clampTimer(.milliseconds(remaining))), .send(answer), .didConnect(principal)]
    }

    /// A session connected on another gateway and handed over here when its client upgraded to a
    /// WebSocket that reached this gateway (issue 15): connected as `principal` from the start.
    mutating func transferred(_ principal: Principal, socketID: String, pid: String?, now: Instant) -> [Action] {
        guard state == .awaitingConnect else { return [] }
        state = .connected(principal)
        self.socketID = socketID
        self.pid = pid
        headerToken = nil
        let remaining = principal.millisecondsUntilExpiry(nowMilliseconds: now.wallMilliseconds, leewaySeconds: configuration.leewaySeconds)
        return [.armDeadline(after: clampTimer(.milliseconds(remaining)))]
    }

    /// The checks of `admit` failed: CONNECT_ERROR, and the socket may try again (until the connect
    /// deadline, which closes it if it already passed).
    mutating func refused(_ refusal: APIError) -> [Action] {
        guard case .authenticating = state else { return [] }
        state = .awaitingConnect
        var actions: [Action] = loginFlow
            ? [.send(.event(DialectEvent.seed001AuthError.name, [["message": .string(refusal.message), "code": .string(refusal.code.name)]]))]
            : [.send(.connectError(message: refusal.message, code: refusal.code.name))]
        if connectDeadlinePassed { actions += close(WebSocketCloseCode.policyViolation, "no Socket.IO CONNECT in time") }
        return actions
    }

    // MARK: Events

    /// Spends one unit of the event budget; the refusal's actions when there is none left.
    private mutating func spend(now: Instant, ackID: Int64?) -> [Action]? {
        guard var budget else { return nil }
        let decision = budget.admit(now: now.monotonic)
        self.budget = budget
        switch decision {
        case .admitted:
            return nil
        case .refused(let wait):
            let summary = "\(budget.configuration.ratePerSecond)/s, burst \(budget.configuration.burst)"
            let refusal = APIError.rateLimited(limit: Self.eventBudgetLimit, retryAfter: wait,
                                               message: "too many events on this socket (\(summary)); retry in \(max(1, wait.millisecondsRoundedUp)) ms")
            return [Self.errorAction(refusal, ackID: ackID)]
        case .flood:
            return end(.eventFlood, reason: "event flood")
        }
    }

    /// The `limit` named in refusals by the per-socket budget.
    static let eventBudgetLimit = "socket_events"

    private mutating func event(_ packet: SocketIOPacket, principal: Principal, now: Instant) -> [Action] {
        guard let name = packet.eventName else { return protocolViolation("event without a name") }
        var arguments = packet.eventArguments
        var first = arguments.first ?? .null
        var actions: [Action] = [.countEvent(name)]
        let event: SocketEvent
        let inbound: DialectEvents.Inbound = dialect == .native
            ? SocketEvent(client: name).map({ .native($0, first) }) ?? .unknown
            : DialectEvents.inbound(dialect, name: name, argument: first)
        switch inbound {
        case .native(let native, let argument):
            event = native
            if dialect != .native {
                first = argument
                arguments = [argument]
            }
        case .ignored:
            if let ackID = packet.ackID { actions.append(.send(.ack(id: ackID, [["ok": true]]))) }
            return actions
        case .unknown:
            actions.append(error(.unknownEvent, message: "unknown event '\(name)'", ackID: packet.ackID))
            return actions
        case let request:
            actions.append(.dispatchDialect(DialectRequest(inbound: request, ackID: packet.ackID, principal: principal)))
            return actions
        }
        switch event {
        case .ping:
            var reply: JSONObject = ["pong": true, "time": .int(now.wallMilliseconds)]
            if !arguments.isEmpty { reply["echo"] = first }
            actions.append(answer(packet.ackID, event: .pong, .object(reply)))
        case .whoami:
            actions.append(answer(packet.ackID, event: .whoami, ["userId": .int(principal.userID), "socketId": .string(socketID)]))
        case .authenticate:
            actions += reauthenticate(first, ackID: packet.ackID, current: principal, now: now)
        case .requestServerAck:
            actions += requestServerAck(first, ackID: packet.ackID)
        default:
            actions.append(.dispatch(EventRequest(event: event, arguments: arguments, ackID: packet.ackID, principal: principal)))
        }
        return actions
    }

    /// The ack when asked for, else `event`.
    private func answer(_ ackID: Int64?, event: SocketEvent, _ value: JSONValue) -> Action {
        if let ackID { return .send(.ack(id: ackID, [value])) }
        return .send(.event(event.name, [value]))
    }

    // MARK: authenticate

    private mutating func reauthenticate(_ argument: JSONValue, ackID: Int64?, current: Principal, now: Instant) -> [Action] {
        guard case .object(let body) = argument, case .string(let token)? = body["token"] else {
            return [error(.validationFailed, message: "field 'token' is required", ackID: ackID)]
        }
        let principal: Principal
        do {
            principal = try verify(token, now: now)
        } catch {
            return [Self.errorAction(error, ackID: ackID)]
        }
        guard principal.userID == current.userID else {
            return [error(.tokenUserMismatch, ackID: ackID)]
        }
        return [.confirmToken(principal, ackID: ackID)]
    }

    /// The token of `authenticate` is not revoked: it becomes the socket's token.
    mutating func reauthenticated(_ principal: Principal, ackID: Int64?, now: Instant) -> [Action] {
        guard case .connected(let current) = state else { return [] }
        guard principal.userID == current.userID else {
            return [error(.tokenUserMismatch, ackID: ackID)]
        }
        if isRevoked(principal) {
            return [error(.tokenRevoked, ackID: ackID)]
        }
        state = .connected(principal)
        let remaining = principal.millisecondsUntilExpiry(nowMilliseconds: now.wallMilliseconds, leewaySeconds: configuration.leewaySeconds)
        var actions: [Action] = [.armDeadline(after: clampTimer(.milliseconds(remaining)))]
        if let ackID { actions.append(.send(.ack(id: ackID, [["ok": true, "expiresAt": .int(principal.expiresAtMilliseconds)]]))) }
        return actions
    }

    /// The token of `authenticate` was refused by the asynchronous check.
    mutating func reauthenticationFailed(_ refusal: APIError, ackID: Int64?) -> [Action] {
        guard case .connected = state else { return [] }
        return [Self.errorAction(refusal, ackID: ackID)]
    }

    // MARK: Revocation

    /// A token or login session was revoked (published on the user's channel): a socket running on
    /// it gets `error {code: "token_revoked"}` and is disconnected; one still being checked is
    /// refused when its check completes.
    mutating func revoke(_ revocation: TokenRevocation) -> [Action] {
        revocations.append(revocation)
        if revocations.count > Self.rememberedRevocations { revocations.removeFirst() }
        guard case .connected(let principal) = state, principal.isRevoked(by: revocation) else { return [] }
        return end(.tokenRevoked, reason: "token revoked")
    }

    private func isRevoked(_ principal: Principal) -> Bool {
        revocations.contains { principal.isRevoked(by: $0) }
    }

    // MARK: Server → client acks

    /// `requestServerAck {event, data}`: emits `event` with an ack id to this client; the request's
    /// own ack carries what the client acknowledged (`{"clientAck": [...]}`) or `ack_timeout`. The
    /// slot is reserved here, synchronously, so a burst in one read cannot exceed the cap.
    private mutating func requestServerAck(_ argument: JSONValue, ackID: Int64?) -> [Action] {
        guard case .object(let body) = argument, case .string(let event)? = body["event"], !event.isEmpty else {
            return [error(.validationFailed, message: "field 'event' is required", ackID: ackID)]
        }
        // Found by fuzzing: a lifecycle name (`disconnect`, ...) would make a packet clients refuse.
        guard !SocketIOPacket.reservedEventNames.contains(event) else {
            return [error(.validationFailed, message: "field 'event' must not be a name Socket.IO reserves (\(event))", ackID: ackID)]
        }
        guard serverAcks.count < configuration.maxPendingServerAcks else {
            return [error(.tooManyPendingAcks, ackID: ackID)]
        }
        // Even: odd ack ids name room messages (`deliveryAckID`).
        nextServerAckID = nextServerAckID.addingSaturated(2) & ~1
        let id = nextServerAckID
        serverAcks[id] = ackID
        return [.send(.event(event, [body["data"] ?? .null], ackID: id)),
                .armServerAckTimeout(id: id, after: clampTimer(configuration.serverAckTimeout))]
    }

    /// The ack id of a room message's frame: odd (the ids of `requestServerAck` are even), the
    /// same for every socket. Nil for an id that does not fit (JavaScript clients read ack ids as
    /// numbers: exact below 2^53).
    nonisolated static func deliveryAckID(messageID: Int64) -> Int64? {
        guard messageID > 0, messageID < 1 << 52 else { return nil }
        return messageID * 2 + 1
    }

    /// The room message an odd ack id names.
    nonisolated static func messageID(deliveryAckID id: Int64) -> Int64? {
        id > 1 && id & 1 == 1 ? id / 2 : nil  // message ids start at 1: ack id 3
    }

    /// Server ack `id` got no answer in time.
    mutating func serverAckTimedOut(_ id: Int64) -> [Action] {
        guard case .connected = state, let requestAckID = serverAcks.removeValue(forKey: id) else { return [] }
        guard let requestAckID else { return [] }
        return [Self.errorAction(APIError(.ackTimeout), ackID: requestAckID)]
    }

    private func serverAckAnswered(_ requestAckID: Int64?, _ arguments: JSONValue) -> [Action] {
        guard case .connected = state, let requestAckID else { return [] }
        return [.send(.ack(id: requestAckID, [["clientAck": arguments]]))]
    }

    // MARK: Helpers

    /// Verifies an access token and reads the user from it.
    private func verify(_ token: String, now: Instant) throws(APIError) -> Principal {
        let claims: JWTClaims
        do {
            claims = try configuration.signer.verify(token, now: now.wallSeconds)
        } catch {
            throw APIError.unauthorized(error)
        }
        return try Principal(verified: claims)
    }

    /// An error for something the client sent: the ack's `{"error": {...}}` when it asked for one,
    /// else the event `error`.
    private func error(_ code: ErrorCode, message: String? = nil, ackID: Int64?) -> Action {
        Self.errorAction(APIError(code, message: message), ackID: ackID)
    }

    /// See `error(_:message:ackID:)`.
    static func errorAction(_ error: APIError, ackID: Int64?) -> Action {
        .send(errorPacket(error, ackID: ackID))
    }

    /// The packet reporting an error: `43<ackID>[{"error": {...}}]` or `42["error", {...}]`.
    static func errorPacket(_ error: APIError, ackID: Int64?) -> SocketIOPacket {
        if let ackID { return .ack(id: ackID, [["error": error.json]]) }
        return .event(SocketEvent.error.name, [error.json])
    }

    /// Ends a connected session for a reason the client should know: the `error` event, a
    /// Socket.IO DISCONNECT, then WebSocket close 1008.
    private mutating func end(_ code: ErrorCode, message: String? = nil, reason: String) -> [Action] {
        let actions: [Action] = [error(code, message: message, ackID: nil), .send(.disconnect)]
        return actions + close(WebSocketCloseCode.policyViolation, reason)
    }

    private mutating func close(_ code: UInt16, _ reason: String) -> [Action] {
        state = .closed
        serverAcks = [:]
        return [.close(code: code, reason: reason)]
    }

    private mutating func protocolViolation(_ reason: String) -> [Action] {
        close(WebSocketCloseCode.protocolError, reason)
    }

    private func clampTimer(_ delay: Duration) -> Duration {
        min(max(.zero, delay), max(.milliseconds(1), configuration.maxTimer))
    }
}

extension SocketIOPacket {
    /// The arguments of an ACK packet.
    var eventArgumentsForAck: [JSONValue] {
        if case .array(let values)? = payload { return values }
        return []
    }
}
