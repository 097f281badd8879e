// libFuzzer target for one Socket.IO session: the input is a little program whose steps drive ONE
// `SocketSessionMachine` (Gateway/Realtime) the way `SocketSession` does: text frames (raw input
// bytes, or templates such as CONNECT with a validly signed token whose claims are fuzzed, session
// events, acks, other namespaces, Engine.IO control packets, gateway events with fuzzed JSON),
// binary frames, the results of the asynchronous checks (`admitted` / `refused` after `.admit`,
// `reauthenticated` / `reauthenticationFailed` after `.confirmToken`), timers, revocations and the
// close, at clock values taken from the input (extremes, going backwards). Every `.dispatch` argument
// is also fed to the gateway's pure validators (`MessagePayload`, `SyncCursor`).
// Invariants (a violation is a crash libFuzzer reports):
// - pending server acks never exceed `maxPendingServerAcks`;
// - every timer armed is within 0...`maxTimer`;
// - after `.close` (or `closed()`) the state is `.closed` and every later input returns no action;
// - `.didConnect(p)` only comes from `admitted`, with the principal `.admit` announced;
// - a principal being admitted or connected has token times inside `JWTSigner.timestampRange`;
// - every packet the machine sends decodes back (Socket.IO and Engine.IO) to the same packet;
// - the validators accept only what their rules say (positive ids, not oneself, bounded cursors).
// Built by fuzz/run-session-fuzz.sh (Shared as its own module) with -sanitize=fuzzer,address.
import Glibc
import Shared

/// `SESSION_FUZZ_TRACE=1 fuzz/bin/session-fuzz <input>` prints every machine input and its actions
/// (to stderr, unbuffered, so the lines before a crash are not lost).
private let tracing = getenv("SESSION_FUZZ_TRACE") != nil

private func trace(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

typealias Machine = SocketSessionMachine
typealias Action = SocketSessionMachine.Action
typealias Instant = SocketSessionMachine.Instant

/// Which machine input produced an action list (`.didConnect` may only come from `admitted`).
private enum Call: Equatable {
    case start, received, receivedBinary, admitted, refused, reauthenticated, reauthenticationFailed
    case deadlineFired, serverAckTimedOut, revoke
}

private let gatewayEventNames = ["sendMessage", "sync", "typing", "stopTyping", "messageRead", "markAllAsRead",
                                 "getOnlineUsers", "getConversations", "joinRoom", "error", "message", "ping ",
                                 "Ping", "whoami\u{0}", "connect", "disconnect", "newListener", "0", "", "\u{1F600}"]

extension FuzzInput {
    mutating func configuration() -> Machine.Configuration {
        let leeway = pick([5, 0, 60, Int64.max, Int64.min, 253_402_300_799])
        let signer: JWTSigner
        switch below(4) {
        case 3: signer = JWTSigner(secret: fuzzSecret, issuer: fuzzIssuer, audience: fuzzAudience, leewaySeconds: leeway)
        default: signer = JWTSigner(secret: fuzzSecret, issuer: nil, audience: nil, leewaySeconds: leeway)
        }
        var budget: SocketEventBudget.Configuration?
        switch below(4) {
        case 0: budget = .default
        case 1: budget = nil
        default:
            budget = SocketEventBudget.Configuration(
                ratePerSecond: pick([1, 2, 10, 50, 1_000_000, 0, -1, Int.max, Int.min]),
                burst: pick([1, 3, 100, 1_000_000, 0, -5, Int.max]),
                floodRefusals: pick([0, 1, 5, 200, 100_000_000, -1, Int.max]))
        }
        var configuration = Machine.Configuration(
            signer: signer,
            connectTimeout: .milliseconds(pick([100, 0, 1, 10_000, -1, Int64.max, Int64.min])),
            eventBudget: budget)
        configuration.maxPendingServerAcks = pick([16, 0, 1, 3, 64])
        configuration.serverAckTimeout = .milliseconds(pick([10_000, 0, 1, -1, Int64.max, Int64.min, 86_400_001]))
        configuration.maxTimer = .milliseconds(pick([86_400_000, 1, 1000, Int64.max]))
        return configuration
    }

    /// A clock reading: usually a small step from `previous`, sometimes an extreme or a jump back.
    mutating func instant(after previous: Instant, expiry: Int64?) -> Instant {
        var next = previous
        switch below(10) {
        case 0...3:
            let milliseconds = Int64(byte()) * pick([1, 10, 1000])
            next.monotonic = next.monotonic.addingSaturated(UInt64(milliseconds) * 1_000_000)
            next.wallMilliseconds = next.wallMilliseconds.addingSaturated(milliseconds)
        case 4:
            next.monotonic = next.monotonic.addingSaturated(UInt64(byte()) * 1000)
        case 5:
            // Backwards.
            next.monotonic = next.monotonic.subtractingSaturated(UInt64(byte()) * 100_000_000)
            next.wallMilliseconds = next.wallMilliseconds.subtractingSaturated(Int64(byte()) * 1000)
        case 6:
            next.monotonic = pick([0, 1, .max, .max - 1, UInt64(Int64.max), uint64()])
        case 7:
            next.wallMilliseconds = pick([.min, .max, 0, -1, normalNow * 1000, int64()])
        case 8:
            // Around the token's expiry (plus the leeway), where the deadline decides.
            next.wallMilliseconds = int64(near: expiry.map { $0.multipliedSaturated(by: 1000) } ?? normalNow * 1000)
        default:
            next.monotonic = next.monotonic.addingSaturated(SocketEventBudget.Configuration.floodWindowNanoseconds)
        }
        return next
    }

    /// A JSON id as clients send it: positive, zero, negative, extreme, a digit string, odd types.
    mutating func idJSON(near anchor: Int64) -> String {
        switch below(8) {
        case 0...2: return String(anchor.addingSaturated(pick([0, 1, -1, 2, -2])))
        case 3: return String(pick(extremeInt64s))
        case 4: return JSONValue.string(String(int64(near: anchor))).jsonString
        case 5: return pick(["\"0042\"", "\"42 \"", "\"\"", "\"1e3\"", "\"999999999999999999\"", "\"9999999999999999999\"",
                             "\"-1\"", "\"+7\"", "\"\u{0661}\""])
        case 6: return numberText(near: anchor)
        default: return pick(["null", "true", "[]", "{}", "[7]", "{\"id\":7}"])
        }
    }

    /// A JSON value of any shape, from the input.
    mutating func jsonValue(depth: Int = 0) -> JSONValue {
        switch below(depth > 3 ? 6 : 8) {
        case 0: return .null
        case 1: return .bool(bool())
        case 2: return .int(int64(near: 7))
        case 3: return .double(pick([0.5, -0.0, 1e300, -1e-300, 4.5e15, 9.223372036854775807e18, .greatestFiniteMagnitude]))
        case 4, 5: return .string(text(maximum: 24))
        case 6: return .array((0..<below(4)).map { _ in jsonValue(depth: depth + 1) })
        default:
            var object = JSONObject()
            for _ in 0..<below(4) {
                let key = pick(["receiverId", "content", "since", "messageId", "senderId", "token", "event", "data"]) { $0.text(maximum: 6) }
                object[key] = jsonValue(depth: depth + 1)
            }
            return .object(object)
        }
    }

    /// The first argument of a gateway event, shaped like what that event takes (fields fuzzed), or
    /// any JSON, or raw input text (which may not be JSON at all).
    mutating func eventArgument(for name: String, userID: Int64) -> String {
        switch below(10) {
        case 8: return jsonValue().jsonString
        case 9: return text(maximum: 96)
        default: break
        }
        let other = userID.addingSaturated(1)
        switch name {
        case "sendMessage":
            var members = ["\"receiverId\":" + idJSON(near: pick([other, userID]))]
            switch below(10) {
            case 0...3: members.append("\"content\":\"hi\"")
            case 4: members.append("\"content\":" + JSONValue.string(text(maximum: 48)).jsonString)
            case 5: members.append("\"content\":" + pick(["\" \"", "\"\\u0000\"", "\"\"", "1", "null", "\"\\u2028\"", "\"a\\u0000\""]))
            case 6: members.append("\"content\":" + JSONValue.string(String(repeating: pick(["é", "a", "👍🏽"]), count: pick([4000, 4001]))).jsonString)
            case 7: break
            default: members.append("\"content\":" + JSONValue.string(text(maximum: 8) + "x").jsonString)
            }
            if bool() { members.append("\"type\":" + pick(["\"text\"", "\"image\"", "\"file\"", "\"voice\"", "\"TEXT\"", "null", "3"])) }
            if bool() {
                members.append("\"attachmentUrl\":" + pick(["\"https://example.com/a.png\"", "\"http://\"", "\"https:///x\"", "\"ftp://x\"",
                                                             "\"HTTP://X\"", "\"https://a b\""]) { JSONValue.string("https://" + $0.text(maximum: 16)).jsonString })
            }
            if bool() {
                members.append("\"clientMsgId\":" + pick(["\"c-1\"", "\"\"", "\"a b\"", JSONValue.string(String(repeating: "x", count: 65)).jsonString,
                                                           "7"]) { JSONValue.string($0.text(maximum: 12)).jsonString })
            }
            return "{" + members.joined(separator: ",") + "}"
        case "sync":
            var pairs: [String] = []
            for _ in 0..<below(6) {
                let key = pick(["0", "-1", "007", "", "1e3", "9999999999999999999", "12"]) { String($0.int64(near: 12)) }
                pairs.append(JSONValue.string(below(2) == 0 ? String(below(20) + 1) : key).jsonString + ":" + idJSON(near: Int64(below(50))))
            }
            if below(16) == 15 { pairs += Array(repeating: "\"1\":1", count: 2) }
            let since = below(8) == 7 ? pick(["null", "[]", "1", "\"12:40\""]) : "{" + pairs.joined(separator: ",") + "}"
            return "{\"since\":" + since + "}"
        case "typing", "stopTyping":
            return "{\"receiverId\":" + idJSON(near: pick([other, userID])) + "}"
        case "messageRead":
            return "{\"messageId\":" + idJSON(near: 100) + "}"
        case "markAllAsRead":
            return "{\"senderId\":" + idJSON(near: pick([other, userID])) + "}"
        default:
            return pick(["{}", "{\"userIds\":[1,2,3]}", "[]", "null"]) { $0.jsonValue().jsonString }
        }
    }
}

/// The session, its clock, and what the asynchronous side of `SocketSession` would know.
///
/// The input is `<configuration chunk> (<step byte> <chunk>)*`, a chunk being a length and that
/// many bytes (see `FuzzInput.chunk`); a step reads its parameters from its own chunk only, zeros
/// past its end, and zero always picks the ordinary choice. So `[1, 0]` is a CONNECT with a valid
/// token and `[14, 0]` its admission, and changing one step's bytes leaves the others as they were.
private struct SessionProgram {
    /// The steps.
    var program: FuzzInput
    /// The parameters of the configuration, then of the current step.
    var input: FuzzInput
    var machine: Machine
    let configuration: Machine.Configuration
    var now: Instant
    /// Announced by `.admit`, waiting for `admitted` or `refused`.
    var admitting: Principal?
    /// Seed 001 (issue 16): the machine asked for its CONNECT to be answered without a token.
    var pendingLogin = false
    /// Announced by `.confirmToken`, waiting for `reauthenticated` or `reauthenticationFailed`.
    var confirming: [(principal: Principal, ackID: Int64?)] = []
    /// Ids of `.armServerAckTimeout` actions.
    var armedServerAcks: [Int64] = []
    /// Principals seen (for revocations and `authenticate` tokens of the same user).
    var principals: [Principal] = []
    var isClosed = false
    var nextClientAckID: Int64 = 0

    init(input: FuzzInput) {
        program = input
        self.input = program.chunk()
        configuration = self.input.configuration()
        now = Instant(monotonic: self.input.pick([1_000_000_000, 0, .max - 5]),
                      wallMilliseconds: self.input.pick([normalNow * 1000, 0, .max, .min]))
        var headerToken: String?
        switch self.input.below(4) {
        case 1: headerToken = TokenForge.token(payloadJSON: self.input.claimsJSON(now: Self.tokenTime(now)))
        case 2: headerToken = self.input.text(maximum: 64)
        default: headerToken = nil
        }
        machine = Machine(configuration: configuration, headerToken: headerToken, now: now)
    }

    /// Token times are drawn around `now` when it is a sane time, else around 2023.
    static func tokenTime(_ now: Instant) -> Int64 {
        JWTSigner.timestampRange.contains(now.wallSeconds) ? now.wallSeconds : normalNow
    }

    var userID: Int64 { machine.principal?.userID ?? admitting?.userID ?? 42 }

    mutating func signedToken(subject: String? = nil) -> String {
        let subject = subject ?? input.pick([String(userID), "42", "43", "0"]) { String($0.int64(near: 42)) }
        return TokenForge.token(payloadJSON: input.claimsJSON(now: Self.tokenTime(now), subject: subject))
    }

    mutating func ackIDText() -> String {
        switch input.below(6) {
        case 0, 1: return ""
        case 2, 3:
            nextClientAckID += 1
            return String(nextClientAckID)
        case 4: return input.pick(["0", "999999999999999999", "9999999999999999999", "00", "-1"])
        default: return String(input.int64(near: 3).magnitude % 1_000_000_000_000_000_000)
        }
    }

    // MARK: Steps

    mutating func run() {
        apply(machine.start(), from: .start)
        var steps = 0
        while !program.isAtEnd && steps < 4096 {
            steps += 1
            let operation = Int(program.byte()) % 24
            input = program.chunk()
            step(operation)
        }
    }

    mutating func step(_ operation: Int) {
        switch operation {
        case 0: receive(String(decoding: input.rest(), as: UTF8.self))
        case 1, 2: connect()
        case 3: receive(input.bool() ? "42\(ackIDText())[\"ping\",\(input.jsonValue().jsonString)]" : "42[\"ping\"]")
        case 4: receive("42\(ackIDText())[\"whoami\"]")
        case 5:
            let token = input.below(8) == 7 ? JSONValue.string(input.text(maximum: 48)).jsonString : JSONValue.string(signedToken()).jsonString
            receive("42\(ackIDText())[\"authenticate\",{\"token\":\(token)}]")
        case 6:
            // A burst in one read: the cap must hold however many arrive before any answer.
            let count = input.pick([1, 3, 17, 200])
            let event = input.pick(["e", "", "connect", "disconnect", "error", "0"]) { $0.text(maximum: 8) }
            for _ in 0..<count {
                receive("42\(ackIDText())[\"requestServerAck\",{\"event\":\(JSONValue.string(event).jsonString),\"data\":\(input.jsonValue().jsonString)}]")
            }
        case 7:
            let id = armedServerAcks.isEmpty || input.bool() ? ackIDText() : String(input.pick(armedServerAcks))
            receive("43\(id.isEmpty ? "1" : id)\(input.pick(["[]", "[1]", "[{\"ok\":true}]"]) { $0.jsonValue().jsonString })")
        case 8:
            receive(input.pick(["42/admin,[\"x\"]", "41/admin,", "40/admin,", "40/admin,{\"token\":\"t\"}", "43/admin,1[]",
                                "42/admin,7[\"sendMessage\",{}]", "452-/admin,[\"x\",{\"_placeholder\":true,\"num\":0}]", "40/,"]))
        case 9:
            receive(input.pick(["41", "2", "3", "2probe", "3probe", "6", "5", "1", "4", "0{}", "44{\"message\":\"x\"}",
                                "451-[\"x\",{\"_placeholder\":true,\"num\":0}]", "461-1[]", "b4AQID", "", "40", "40{}", "40{\"token\":7}",
                                "40{\"dialect\":\"seed001\"}", "40{\"dialect\":\"seed004\"}", "40{\"dialect\":\"nope\"}",
                                "42[\"auth:login\",{\"token\":\"x\"}]", "42[\"private_message\",{\"receiverId\":2,\"message\":\"m\"}]",
                                "42[\"get_chat_history\",{\"otherUserId\":2}]", "42[\"join_conversation\",{\"conversationId\":1}]"])
                    { "4" + $0.text(maximum: 24) })
        case 10, 11, 12:
            let name = input.pick(gatewayEventNames)
            receive("42\(ackIDText())[\(JSONValue.string(name).jsonString),\(input.eventArgument(for: name, userID: userID))]")
        case 13: apply(machine.receivedBinary(), from: .receivedBinary)
        case 14:
            let socketID = input.pick(["sock-1", ""]) { $0.text(maximum: 16) }
            admitting = nil
            apply(machine.admitted(socketID: socketID, now: now), from: .admitted)
        case 15:
            admitting = nil
            let code = input.pick([ErrorCode.tokenRevoked, .redisUnavailable, .databaseUnavailable]) {
                ErrorCode($0.text(maximum: 12), .internalServerError, "fuzzed")
            }
            apply(machine.refused(APIError(code, message: input.text(maximum: 24))), from: .refused)
        case 16:
            guard !confirming.isEmpty else { return connect() }
            let (principal, ackID) = confirming.remove(at: input.below(confirming.count))
            if input.below(4) == 3 {
                apply(machine.reauthenticationFailed(APIError(.tokenRevoked, message: input.text(maximum: 16)), ackID: ackID),
                      from: .reauthenticationFailed)
            } else {
                apply(machine.reauthenticated(principal, ackID: ackID, now: now), from: .reauthenticated)
            }
        case 17: apply(machine.deadlineFired(now: now), from: .deadlineFired)
        case 18:
            let id = armedServerAcks.isEmpty || input.below(4) == 3 ? input.pick([0, -1, .max]) { $0.int64() } : input.pick(armedServerAcks)
            apply(machine.serverAckTimedOut(id), from: .serverAckTimedOut)
        case 19:
            let known = principals.isEmpty ? nil : input.pick(principals)
            let revocation: TokenRevocation
            switch input.below(5) {
            case 0: revocation = TokenRevocation(tokenID: known?.tokenID ?? machine.principal?.tokenID)
            case 1: revocation = TokenRevocation(sessionID: known?.sessionID ?? machine.principal?.sessionID)
            case 2: revocation = TokenRevocation()
            case 3: revocation = TokenRevocation(tokenID: input.text(maximum: 8), sessionID: input.pick([nil, "sid-1"]) { $0.text(maximum: 8) })
            default: revocation = TokenRevocation(tokenID: known?.tokenID, sessionID: known?.sessionID)
            }
            apply(machine.revoke(revocation), from: .revoke)
        case 20:
            if input.below(8) == 7 {
                machine.closed()
                isClosed = true
                invariant(machine.state == .closed, "closed() left state \(machine.state)")
                invariant(machine.pendingServerAcks == 0, "closed() kept server acks")
            } else {
                connect()
            }
        default:
            now = input.instant(after: now, expiry: machine.principal?.expiresAt)
        }
    }

    mutating func connect() {
        let auth: String
        switch input.below(8) {
        case 0...4: auth = "{\"token\":" + JSONValue.string(signedToken()).jsonString + "}"
        case 5: auth = ""
        case 6: auth = "{\"token\":" + JSONValue.string(input.text(maximum: 64)).jsonString + "}"
        default: auth = input.pick(["{}", "{\"token\":\"\"}", "{\"token\":null}", "{\"token\":1}", "{\"auth\":{\"token\":\"x\"}}"])
        }
        receive("40" + auth)
    }

    mutating func receive(_ text: String) {
        if tracing { trace("received \(text.debugDescription) at \(now)") }
        apply(machine.received(text: text, now: now), from: .received)
    }

    // MARK: Invariants

    mutating func apply(_ actions: [Action], from call: Call) {
        if tracing { trace("  \(call) -> \(actions)\n  state \(machine.state)") }
        if isClosed {
            invariant(actions.isEmpty, "closed session answered \(call) with \(actions)")
            return
        }
        let maxTimer = configuration.maxTimer
        var closes = false
        for action in actions {
            switch action {
            case .deliveryAcknowledged(let messageID, _):
                invariant(messageID > 0, "delivery ack of message \(messageID)")
            case .send(let packet):
                let decoded = Result { () throws(SocketIOParseError) in try SocketIOPacket.decode(packet.encoded) }
                guard case .success(let again) = decoded else {
                    fatalError("sent packet does not decode: \(packet.encoded.debugDescription) (\(decoded))")
                }
                invariant(again == packet, "sent packet decodes differently: \(packet) -> \(again)")
                let engine = Result { () throws(EngineIOParseError) in try EngineIOPacket.decode(packet.engineIOText) }
                invariant(engine == .success(.message(packet.encoded)), "sent packet's Engine.IO frame: \(engine)")
            case .sendEngineIO(let packet):
                let decoded = Result { () throws(EngineIOParseError) in try EngineIOPacket.decode(packet.encoded) }
                invariant(decoded == .success(packet), "sent Engine.IO packet does not decode back: \(packet) -> \(decoded)")
            case .close:
                closes = true
            case .admit(let principal, let recovery):
                invariant(call == .received, ".admit from \(call)")
                if let recovery {
                    invariant(!recovery.pid.isEmpty && recovery.pid.utf8.count <= RecoveryPID.maxEncodedLength, "recovery pid out of bounds")
                    invariant((recovery.offset?.utf8.count ?? 0) <= RecoveryOffset.maxEncodedLength, "recovery offset out of bounds")
                }
                invariant(machine.state == .authenticating(principal), ".admit but state \(machine.state)")
                checkTimes(principal)
                admitting = principal
                principals.append(principal)
            case .confirmToken(let principal, let ackID):
                invariant(principal.userID == machine.principal?.userID, ".confirmToken for another user")
                checkTimes(principal)
                confirming.append((principal, ackID))
                principals.append(principal)
            case .armDeadline(let delay):
                invariant((Duration.zero...max(.milliseconds(1), maxTimer)).contains(delay), "armDeadline(\(delay)) outside 0...\(maxTimer)")
            case .armServerAckTimeout(let id, let delay):
                invariant((Duration.zero...max(.milliseconds(1), maxTimer)).contains(delay), "armServerAckTimeout(\(delay)) outside 0...\(maxTimer)")
                armedServerAcks.append(id)
                if armedServerAcks.count > 64 { armedServerAcks.removeFirst(32) }
            case .didConnect(let principal):
                invariant(call == .admitted, ".didConnect from \(call)")
                invariant(machine.state == .connected(principal), ".didConnect(\(principal)) but state \(machine.state)")
            case .dispatch(let request):
                invariant(request.principal == machine.principal, "dispatch as \(request.principal), connected as \(String(describing: machine.principal))")
                invariant(![SocketEvent.ping, .whoami, .authenticate, .requestServerAck].contains(request.event),
                          "session event \(request.event) dispatched")
                invariant(SocketEvent.client.contains(request.event), "unknown event \(request.event) dispatched")
                validate(request)
            case .dispatchDialect(let request):
                invariant(request.principal == machine.principal, "dialect request as \(request.principal)")
                invariant(machine.dialect != .native, "a dialect request from a native socket")
            case .awaitLogin:
                // Seed 001: the session answers the CONNECT without a token (issue 16).
                invariant(machine.dialect == .seed001, ".awaitLogin in dialect \(machine.dialect)")
                pendingLogin = true
            case .countEvent, .pongReceived:
                break
            }
        }
        if pendingLogin {
            pendingLogin = false
            apply(machine.awaitLogin(socketID: "login-1"), from: .received)
        }
        if closes {
            invariant(machine.state == .closed, ".close but state \(machine.state)")
            invariant(machine.pendingServerAcks == 0, "closed with pending server acks")
        }
        isClosed = machine.state == .closed
        invariant(machine.pendingServerAcks <= configuration.maxPendingServerAcks,
                  "\(machine.pendingServerAcks) pending server acks > \(configuration.maxPendingServerAcks)")
        switch machine.state {
        case .authenticating(let principal), .connected(let principal): checkTimes(principal)
        case .awaitingConnect, .closed: break
        }
    }

    func checkTimes(_ principal: Principal) {
        invariant(JWTSigner.timestampRange.contains(principal.expiresAt), "principal expiry \(principal.expiresAt) outside the range")
        invariant(principal.userID > 0, "principal user \(principal.userID)")
    }

    /// The gateway's validators on the event's argument, whatever the event was called.
    func validate(_ request: Machine.EventRequest) {
        let argument = request.argument
        let user = request.principal.userID
        do {
            let message = try MessagePayload.send(argument, senderID: user, maxContentLength: ChatLimits.maxContentLength,
                                                  generatedClientMsgID: { "generated-1" })
            if let receiver = message.receiverID { invariant(receiver > 0 && receiver != user, "send to \(receiver) by \(user)") }
            do { try message.validate() } catch { fatalError("parsed message fails validate: \(error.message)") }
            _ = message.json.jsonString
        } catch {
            _ = error.json
        }
        do {
            let command = try MessagePayload.messageRead(argument)
            guard case .read(let id) = command, id > 0 else { fatalError("messageRead gave \(command)") }
        } catch {
            _ = error.message
        }
        do {
            let command = try MessagePayload.markAllAsRead(argument, readerID: user)
            guard case .readAll(let id) = command, id > 0, id != user else { fatalError("markAllAsRead gave \(command)") }
        } catch {
            _ = error.message
        }
        do {
            switch try MessagePayload.typingTarget(argument, senderID: user) {
            case .user(let receiver): invariant(receiver > 0 && receiver != user, "typingTarget gave user \(receiver) for \(user)")
            case .room(let room): invariant(room > 0, "typingTarget gave room \(room)")
            }
        } catch {
            _ = error.message
        }
        if case .object(let body) = argument {
            do {
                if case .readMany(let ids)? = try MessagePayload.markAsRead(body, readerID: user) {
                    invariant(!ids.isEmpty && ids.count <= ChatLimits.maxReadManyIDs && ids.allSatisfy { $0 > 0 }
                              && Set(ids).count == ids.count, "markAsRead gave \(ids)")
                }
            } catch {
                _ = error.message
            }
        }
        for since in [argument["since"], argument] {
            do {
                let cursor = try SyncCursor(object: since)
                invariant(cursor.seqs.count <= SyncCursor.maxConversations, "cursor of \(cursor.seqs.count)")
                invariant(cursor.seqs.allSatisfy { $0.key > 0 && $0.value >= 0 }, "cursor \(cursor.seqs)")
            } catch {
                _ = error.message
            }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSession(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    let input = FuzzInput(UnsafeBufferPointer(start: data?.assumingMemoryBound(to: UInt8.self), count: data == nil ? 0 : size))
    var program = SessionProgram(input: input)
    program.run()
    return 0
}
