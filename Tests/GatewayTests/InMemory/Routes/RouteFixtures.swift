import Testing
@testable import Gateway
@testable import Shared

/// Rows the route tests need that only a worker writes: messages stored in a direct conversation
/// (gap-free seqs, members, the conversation's head), read pointers, and tokens signed with the
/// gateway's own secret.
@LoopActor
extension GatewayHarness {
    /// A message as stored.
    struct StoredMessage {
        let id: Int64
        let conversationID: Int64
        let seq: Int64
    }

    /// Stores `contents` from `sender` to `receiver` in their direct conversation (created with both
    /// members when missing), each with the next seq, and moves the conversation's head and the
    /// sender's read pointer to the last one, as a worker does. `clientMsgIDs`, when given, are the
    /// messages' idempotency keys.
    @discardableResult
    func storeMessages(from sender: Account, to receiver: Account, _ contents: [String],
                       clientMsgIDs: [String]? = nil) async throws -> [StoredMessage] {
        let key = DirectConversation.key(sender.id, receiver.id)
        let conversation = try await sql("""
            INSERT INTO conversations (kind, direct_key, created_by) VALUES ('direct', $1, $2)
            ON CONFLICT (direct_key) DO UPDATE SET last_seq = conversations.last_seq RETURNING id, last_seq
            """, [.string(key), .int64(sender.id)])
        guard let row = conversation.first else { throw SetupFailure(description: "no conversation for \(key)") }
        let conversationID = try row.int64("id")
        var seq = try row.int64("last_seq")
        try await sql("""
            INSERT INTO conversation_members (conversation_id, user_id) VALUES ($1, $2), ($1, $3) ON CONFLICT DO NOTHING
            """, [.int64(conversationID), .int64(sender.id), .int64(receiver.id)])
        var stored: [StoredMessage] = []
        for (index, content) in contents.enumerated() {
            seq += 1
            let clientMsgID = clientMsgIDs?[index] ?? "fixture-\(UInt64.random(in: 0...UInt64.max))"
            let rows = try await sql("""
                INSERT INTO messages (conversation_id, seq, sender_id, client_msg_id, content) VALUES ($1, $2, $3, $4, $5) RETURNING id
                """, [.int64(conversationID), .int64(seq), .int64(sender.id), .string(clientMsgID), .string(content)])
            stored.append(StoredMessage(id: try rows.int64("id"), conversationID: conversationID, seq: seq))
        }
        if let last = stored.last {
            try await sql("""
                UPDATE conversations SET last_seq = $2, last_message_id = $3, last_message_at = clock_timestamp() WHERE id = $1
                """, [.int64(conversationID), .int64(last.seq), .int64(last.id)])
            // A sender has read their own message (the worker moves the pointer with the send).
            try await markRead(sender, in: conversationID, upTo: last.seq)
        }
        return stored
    }

    /// Moves `reader`'s read pointer in `conversationID` up to `seq` (never back).
    func markRead(_ reader: Account, in conversationID: Int64, upTo seq: Int64) async throws {
        try await sql("""
            UPDATE conversation_members SET last_read_seq = GREATEST(last_read_seq, $3) WHERE conversation_id = $1 AND user_id = $2
            """, [.int64(conversationID), .int64(reader.id), .int64(seq)])
    }

    /// An access token for `userID` signed with this gateway's secret (or `secret`), with the times
    /// given in seconds from `now` (the real time unless given), as a login would issue it otherwise.
    func accessToken(userID: Int64, issuedSecondsAgo: Int64 = 0, expiresInSeconds: Int64 = 900, secret: [UInt8]? = nil,
                     now: Int64 = WallClock.seconds()) -> String {
        let signer = JWTSigner(secret: secret ?? configuration.jwtSecret, issuer: configuration.jwtIssuer,
                               audience: configuration.jwtAudience, leewaySeconds: configuration.jwtLeewaySeconds)
        return signer.sign(JWTClaims(subject: String(userID), issuedAt: now - issuedSecondsAgo, expiresAt: now + expiresInSeconds,
                                     id: SecureRandom.token(byteCount: 16), issuer: configuration.jwtIssuer,
                                     audience: configuration.jwtAudience, sessionID: SecureRandom.token(byteCount: 16)))
    }

    /// `account` with an access token issued at the manual clock's wall time, for a socket. Sockets
    /// check tokens against `clock`, whose wall time stands still from the harness's start, while a
    /// login issues them at the real time: once a test has run longer than the leeway (a loaded
    /// parallel run), a login's token is `token_not_yet_valid` on a socket.
    func withSocketToken(_ account: Account) -> Account {
        Account(id: account.id, username: account.username, email: account.email, password: account.password,
                token: accessToken(userID: account.id, now: clock.wallSeconds()), refreshToken: account.refreshToken)
    }
}

/// A client address no other test, harness or recent run uses (64 random bits of an IPv6 unique
/// local address), for tests that spend a per-address budget: the budgets live in the shared Redis
/// for a whole window, and two harnesses' random IPv4 prefixes do meet now and then.
func uniqueClientAddress() -> String {
    let groups = (0..<4).map { _ in String(UInt16.random(in: 0...UInt16.max), radix: 16) }
    return "fd00::" + groups.joined(separator: ":")
}

/// Expects the house error body: `status`, `error.code` and, when given, `error.field`.
func expectError(_ response: TestResponse, _ status: Int, _ code: String, field: String? = nil,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(response.status == status, "\(response.status) \(response.text)", sourceLocation: sourceLocation)
    #expect(response.errorCode == code, "\(response.text)", sourceLocation: sourceLocation)
    if let field {
        #expect(response.json?["error"]?["field"]?.stringValue == field, "\(response.text)", sourceLocation: sourceLocation)
    }
}
