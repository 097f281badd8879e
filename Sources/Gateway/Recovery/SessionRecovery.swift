import Shared

/// Connection state recovery as Socket.IO 4.6+ defines it (issue 15), on any gateway: the CONNECT
/// answer carries a signed private session id (`pid`), message and change events are followed by
/// the client's new offset (`recoveryOffset`), and a client reconnecting within the window with
/// its `pid` and last offset gets what it missed, replayed from Postgres (the per-conversation
/// `seq` and change `version`), so recovery never drops a message, whichever gateway died.
///
/// The window: a socket that closed on a live gateway is remembered in Redis for
/// `RECOVERY_WINDOW_MS`; when its gateway died instead, the newer of the chain's start and the
/// client's offset must be within the window. Past it, or when the replay would be larger than
/// `maxReplayedEvents` or the offset is incomplete, the client is told to resync.
@LoopActor
final class SessionRecovery {
    let window: Duration
    private let signer: RecoveryPID.Signer
    private let database: PostgresPool
    private let redis: RedisClient
    private let logger: Logger

    /// Clock skew and publish latency tolerated around a chain's start: messages created this long
    /// before it are replayed too (at worst a message the client already has comes again).
    static let skewMilliseconds: Int64 = 2_000
    /// Most events one recovery replays; beyond, the client resyncs.
    static let maxReplayedEvents = 1_000
    /// Most messages (and changes) read per conversation; a full page means resync.
    static let maxPerConversation = 200

    init(window: Duration, secret: [UInt8], database: PostgresPool, redis: RedisClient, logger: Logger) {
        self.window = window
        signer = RecoveryPID.Signer(secret: secret)
        self.database = database
        self.redis = redis
        self.logger = logger
    }

    /// A new recovery chain's pid.
    func newPID(userID: Int64, nowMilliseconds: Int64) -> String {
        signer.sign(RecoveryPID(userID: userID, epochMilliseconds: nowMilliseconds, nonce: SecureRandom.token(byteCount: 9)))
    }

    /// The chain a signed pid of `userID` names; nil for any other text.
    func verify(_ pid: String, userID: Int64) -> RecoveryPID? {
        guard let parsed = signer.verify(pid), parsed.userID == userID else { return nil }
        return parsed
    }

    /// A socket of the chain closed on this (live) gateway: it may recover within the window.
    func remember(pid: String, userID: Int64) {
        let key = Self.key(pid)
        let window = String(max(1, window.wholeMilliseconds))
        Task.onLoop { _ = try? await self.redis.send(["SET", key, String(userID), "PX", window]) }
    }

    private static func key(_ pid: String) -> String {
        "chat:recovery:" + Hex.encode(Digest.sha256(Array(pid.utf8)).prefix(16))
    }

    // MARK: Recovery

    /// One replayed event.
    struct ReplayedEvent: Sendable, Equatable {
        var event: SocketEvent
        var data: JSONValue
        var mark: DeliveryMark
    }

    enum Outcome: Sendable, Equatable {
        /// Recovered: the chain, and the events missed, in order.
        case recovered(RecoveryPID, offset: RecoveryOffset, events: [ReplayedEvent])
        /// Not recoverable: the reason (for `resync` and the logs).
        case resync(String)
    }

    /// What a reconnecting client missed, or why it must resync.
    func recover(_ request: SocketSessionMachine.RecoveryRequest, userID: Int64, nowMilliseconds: Int64) async -> Outcome {
        guard let pid = verify(request.pid, userID: userID) else { return .resync("unknown_session") }
        var offset = RecoveryOffset(madeAtMilliseconds: pid.epochMilliseconds)
        if let text = request.offset {
            guard let parsed = RecoveryOffset(encoded: text) else { return .resync("malformed_offset") }
            offset = parsed
        }
        guard !offset.overflowed else { return .resync("too_many_conversations") }
        let lastKnown = max(pid.epochMilliseconds, offset.madeAtMilliseconds)
        if nowMilliseconds.subtractingSaturated(lastKnown) > window.wholeMilliseconds {
            let remembered = try? await redis.send(["GET", Self.key(request.pid)])
            guard case .bulk(let value)? = remembered, String(decoding: value, as: UTF8.self) == String(userID) else {
                return .resync("window_passed")
            }
        }
        do {
            return try await replay(userID: userID, pid: pid, offset: offset)
        } catch {
            logger.warn("cannot replay a recovering socket's missed events", ["userId": .int(userID), "error": .string(String(describing: error))])
            return .resync(ErrorCode.databaseUnavailable.name)
        }
    }

    private func replay(userID: Int64, pid: RecoveryPID, offset: RecoveryOffset) async throws -> Outcome {
        let since = pid.epochMilliseconds.subtractingSaturated(Self.skewMilliseconds)
        let tracked = Array(offset.conversations)
        // The conversations with messages since the chain began (or tracked by the offset), and
        // from which seq each is replayed: the offset's, else the last one created before the chain.
        let conversations = try await database.query("""
            SELECT c.id, c.last_seq, me.last_read_seq,
                   (SELECT m.seq FROM messages m WHERE m.conversation_id = c.id AND m.created_at < to_timestamp($2::bigint / 1000.0)
                    ORDER BY m.seq DESC LIMIT 1) AS seq_before
            FROM conversation_members me JOIN conversations c ON c.id = me.conversation_id
            WHERE me.user_id = $1 AND (c.last_message_at >= to_timestamp($2::bigint / 1000.0) OR c.id = ANY($3::bigint[]))
            """, [.int64(userID), .int64(since), .string(PostgresArrayLiteral.integers(tracked))])
        var after: [Int64: Int64] = [:]
        var unread: [Int64: Int64] = [:]
        for row in conversations {
            let id = try row.int64("id")
            let lastSeq = try row.int64("last_seq")
            let before = try row.optionalInt64("seq_before") ?? 0
            let from = offset.seqs[id] ?? before
            unread[id] = Unread.inConversation(lastSeq: lastSeq, lastReadSeq: try row.int64("last_read_seq"))
            if from < lastSeq { after[id] = from }
        }
        var records: [ChatMessageRecord] = []
        if !after.isEmpty {
            let ids = Array(after.keys)
            let rows = try await database.query("""
                SELECT \(ChatMessageRecord.columns)
                FROM unnest($1::bigint[], $2::bigint[]) AS wanted(conversation_id, after_seq)
                CROSS JOIN LATERAL (
                    SELECT * FROM messages WHERE conversation_id = wanted.conversation_id AND seq > wanted.after_seq ORDER BY seq LIMIT $3
                ) m
                JOIN conversations c ON c.id = m.conversation_id
                ORDER BY m.id
                """, [.string(PostgresArrayLiteral.integers(ids)), .string(PostgresArrayLiteral.integers(ids.map { after[$0] ?? 0 })),
                   .int(Self.maxPerConversation)])
            for row in rows { records.append(try ChatMessageRecord(row: row)) }
        }
        // Changes since the chain began (or after the version the offset names) to the messages
        // the client holds; the ones replayed whole above carry their changes already.
        let seen = offset.conversations.filter { offset.versions[$0] != nil }
        let changeRows = try await database.query("""
            SELECT \(ChatMessageRecord.columns)
            FROM conversation_members me
            JOIN messages m ON m.conversation_id = me.conversation_id
            JOIN conversations c ON c.id = m.conversation_id
            LEFT JOIN unnest($3::bigint[], $4::bigint[]) AS seen(conversation_id, version) ON seen.conversation_id = m.conversation_id
            WHERE me.user_id = $1 AND m.changed_at IS NOT NULL
              AND (m.changed_at >= to_timestamp($2::bigint / 1000.0) OR seen.version IS NOT NULL)
              AND m.version > coalesce(seen.version, 0)
            ORDER BY m.conversation_id, m.version
            LIMIT $5
            """, [.int64(userID), .int64(since), .string(PostgresArrayLiteral.integers(seen)),
               .string(PostgresArrayLiteral.integers(seen.map { offset.versions[$0] ?? 0 })), .int(Self.maxReplayedEvents + 1)])
        var changes: [ChatMessageRecord] = []
        for row in changeRows {
            let record = try ChatMessageRecord(row: row)
            if let from = after[record.conversationID], record.seq > from { continue }
            changes.append(record)
        }
        let perConversation = Dictionary(grouping: records, by: \.conversationID).mapValues(\.count)
        guard records.count + changes.count <= Self.maxReplayedEvents, changeRows.count <= Self.maxReplayedEvents,
              perConversation.values.allSatisfy({ $0 < Self.maxPerConversation }) else {
            return .resync("too_many_missed_events")
        }
        let total = unread.values.reduce(Int64(0)) { $0.addingSaturated($1) }
        let json = try await ReactionMarks.mark((records + changes).map { .object($0.json) }, viewer: userID, database: database)
        var events: [ReplayedEvent] = []
        var position = offset
        for (index, record) in (records + changes).enumerated() {
            let isChange = index >= records.count
            var data = json[index]
            let event: SocketEvent
            let mark: DeliveryMark
            if isChange {
                event = record.deletedAtMilliseconds != nil ? .messageDeleted : .messageEdited
                mark = .change(conversation: record.conversationID, version: record.version)
                _ = position.record(conversation: record.conversationID, version: record.version)
            } else {
                mark = .message(conversation: record.conversationID, seq: record.seq)
                _ = position.record(conversation: record.conversationID, seq: record.seq)
                if record.senderID == userID {
                    event = .messageSent
                } else {
                    event = .receiveMessage
                    if record.receiverID != nil, case .object(var object) = data {
                        object["unreadCount"] = .int(unread[record.conversationID] ?? 0)
                        object["totalUnread"] = .int(total)
                        data = .object(object)
                    }
                }
            }
            events.append(ReplayedEvent(event: event, data: data, mark: mark))
        }
        return .recovered(pid, offset: position, events: events)
    }
}
