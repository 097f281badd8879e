import Testing
@testable import Gateway
@testable import Shared

/// What the socket suites do as a client beyond `TestSocket`: read a Socket.IO packet apart, close
/// from the client's side, mint tokens the gateway would accept, see an upgrade refused, and prove
/// that nothing else arrived (a sentinel published after the fact comes first).
@LoopActor
enum SocketPeer {
    /// Runs `body` with a fresh gateway, then closes it once the presence registry is idle: a
    /// presence write still in flight would otherwise call back into the released `Presence`.
    static func withGateway(settings: [String: String] = [:], _ body: @LoopActor (GatewayHarness) async throws -> Void) async throws {
        let gateway = try await GatewayHarness(settings: settings)
        defer { gateway.close() }
        do {
            try await body(gateway)
        } catch {
            await settle(gateway)
            throw error
        }
        await settle(gateway)
    }

    /// Waits until the presence registry has nothing in flight (it stops; the sockets stay as they are).
    private static func settle(_ gateway: GatewayHarness) async {
        let registry = gateway.services.presence.registry
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            registry.stop(grace: .milliseconds(5_000)) { continuation.resume() }
        }
    }

    /// A Socket.IO packet inside an Engine.IO message (`4<type>[<ack id>]<json>`).
    struct Packet {
        /// The Socket.IO type digit (`0` CONNECT, `2` EVENT, `3` ACK, `4` CONNECT_ERROR, `1` DISCONNECT).
        let type: Character
        let ackID: Int64?
        let payload: JSONValue?

        /// The event name of an EVENT.
        var eventName: String? { payload?[0]?.stringValue }

        /// The arguments of an EVENT (after the name) or of an ACK.
        var arguments: [JSONValue] {
            guard case .array(let items)? = payload else { return [] }
            return type == "2" ? Array(items.dropFirst()) : items
        }
    }

    /// Parses a text message the server sent; nil when it is not a Socket.IO packet of namespace `/`.
    static func packet(_ text: String) -> Packet? {
        var rest = Substring(text)
        guard rest.first == "4" else { return nil }
        rest = rest.dropFirst()
        guard let type = rest.first else { return nil }
        rest = rest.dropFirst()
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        rest = rest.dropFirst(digits.count)
        let payload = rest.isEmpty ? nil : try? JSONParser.parse(Array(rest.utf8))
        return Packet(type: type, ackID: digits.isEmpty ? nil : Int64(digits), payload: payload)
    }

    /// The `error` events among `messages`, as their error objects.
    static func errors(in messages: [String]) -> [JSONValue] {
        messages.compactMap(packet).filter { $0.type == "2" && $0.eventName == SocketEvent.error.name }.compactMap(\.arguments.first)
    }

    /// The client ends the WebSocket (close frame 1000); the server answers and the connection ends.
    static func closeFromClient(_ socket: TestSocket) async throws {
        socket.send(frame: .close, payload: [0x03, 0xE8])
        try await until("the connection to end") { socket.connection.isClosed }
    }

    /// An access token signed with the gateway's key for `userID`, issued now on the gateway's clock.
    static func token(_ gateway: GatewayHarness, userID: Int64, lifetimeSeconds: Int64 = 900, issuedAt: Int64? = nil,
                      secret: [UInt8]? = nil, sessionID: String? = nil) -> String {
        let configuration = gateway.configuration
        let signer = JWTSigner(secret: secret ?? configuration.jwtSecret, issuer: configuration.jwtIssuer,
                               audience: configuration.jwtAudience, leewaySeconds: configuration.jwtLeewaySeconds)
        let claims = signer.makeClaims(subject: String(userID), issuedAt: issuedAt ?? gateway.clock.wallSeconds(),
                                       lifetimeSeconds: lifetimeSeconds, sessionID: sessionID)
        return signer.sign(claims)
    }

    /// The response refusing an upgrade (fails the test when the upgrade succeeds).
    static func refusedUpgrade(_ gateway: GatewayHarness, query: String = "EIO=4&transport=websocket",
                               headers: [(String, String)] = [], address: String? = nil) async throws -> TestResponse {
        do {
            _ = try await gateway.openSocket(query: query, headers: headers, address: address)
        } catch let refused as TestSocket.UpgradeRefused {
            return refused.response
        }
        throw GatewayHarness.SetupFailure(description: "the upgrade with \(query) was accepted")
    }

    /// Everything `socket` (a connected socket of `userID`) received before a sentinel event
    /// published to `userID` now: what reached it so far and nothing later.
    static func messagesBeforeSentinel(_ gateway: GatewayHarness, _ socket: TestSocket, userID: Int64) async throws -> [String] {
        let nonce = String(UInt64.random(in: 0...UInt64.max))
        try await gateway.publish(.resync, ["sentinel": .string(nonce)], to: userID)
        var seen: [String] = []
        while true {
            let text = try await socket.next()
            if let packet = packet(text), packet.eventName == SocketEvent.resync.name, packet.arguments.first?["sentinel"]?.stringValue == nonce {
                return seen
            }
            seen.append(text)
        }
    }

    /// Makes two users contacts: their direct conversation with both as members (what the worker
    /// creates with the first message). Returns the conversation id.
    @discardableResult
    static func makeContacts(_ gateway: GatewayHarness, _ first: GatewayHarness.Account, _ second: GatewayHarness.Account) async throws -> Int64 {
        let rows = try await gateway.sql("""
            WITH c AS (
                INSERT INTO conversations (kind, direct_key, last_message_at) VALUES ('direct', $1, now()) RETURNING id
            ), members AS (
                INSERT INTO conversation_members (conversation_id, user_id) SELECT id, unnest(ARRAY[$2::bigint, $3::bigint]) FROM c
            )
            SELECT id FROM c
            """, [.string(ConversationReader.directKey(first.id, second.id)), .int64(first.id), .int64(second.id)])
        return try rows.first?.int64("id") ?? 0
    }

    /// Stores a message in a conversation as the worker would (next seq, last message). Returns its id and seq.
    @discardableResult
    static func addMessage(_ gateway: GatewayHarness, conversation: Int64, from sender: GatewayHarness.Account,
                           _ content: String) async throws -> (id: Int64, seq: Int64) {
        let bumped = try await gateway.sql("""
            UPDATE conversations SET last_seq = last_seq + 1, last_message_at = now() WHERE id = $1 RETURNING last_seq
            """, [.int64(conversation)])
        let seq = try bumped.first?.int64("last_seq") ?? 0
        let inserted = try await gateway.sql("""
            INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, content) VALUES ($1, $2, $3, $4, $5) RETURNING id
            """, [.int64(conversation), .int64(seq), .int64(sender.id), .string("unit-\(UInt64.random(in: 0...UInt64.max))"), .string(content)])
        let id = try inserted.first?.int64("id") ?? 0
        try await gateway.sql("UPDATE conversations SET last_message_id = $2 WHERE id = $1", [.int64(conversation), .int64(id)])
        return (id, seq)
    }

    /// The events named `name` among `messages`, as their first arguments.
    static func events(_ name: SocketEvent, in messages: [String]) -> [JSONValue] {
        messages.compactMap(packet).filter { $0.type == "2" && $0.eventName == name.name }.map { $0.arguments.first ?? .null }
    }
}

/// How many times a completion ran (a box a `@LoopActor` closure can change).
@LoopActor
final class SocketsCompletionCount {
    private(set) var value = 0

    func record() { value += 1 }
}
