import Shared

/// What a reconnecting device already holds: for each conversation it names, the highest `seq` it
/// has and, optionally, the conversation's change `version` it saw (issue 14). Sync answers with
/// the messages after the seq and the changes (edits, deletes) after the version. Two spellings:
/// - REST `GET /api/sync?since=12:40,13:0:2` (`<conversationId>:<seq>[:<version>]`, comma-separated);
/// - socket `sync {"since": {"12": 40, "13": {"seq": 0, "version": 2}}}`.
/// Pure: text or JSON in, cursor or a 422 naming the field out.
struct SyncCursor: Sendable, Equatable {
    /// conversation id → last seq held (0 = nothing yet).
    var seqs: [Int64: Int64]
    /// conversation id → the conversation's change version the device has seen (issue 14; absent
    /// means 0: every change to a message it holds is sent).
    var versions: [Int64: Int64]

    /// Conversations one cursor may name.
    static let maxConversations = 1000

    init(seqs: [Int64: Int64] = [:], versions: [Int64: Int64] = [:]) {
        self.seqs = seqs
        self.versions = versions
    }

    /// Parses the `since` query parameter; nil or empty names nothing.
    init(query: String?) throws(APIError) {
        self.init()
        guard let query, !query.isEmpty else { return }
        let pairs = query.split(separator: ",", omittingEmptySubsequences: false)
        guard pairs.count <= Self.maxConversations else { throw Self.tooMany }
        for pair in pairs {
            let parts = pair.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2 || parts.count == 3, let conversation = Self.number(parts[0]), conversation > 0,
                  let seq = Self.number(parts[1]), let version = parts.count == 3 ? Self.number(parts[2]) : 0 else {
                throw APIError.validation(
                    "parameter 'since' must be '<conversationId>:<seq>[:<version>]' entries separated by commas, e.g. since=12:40,13:0:2")
            }
            try add(conversation, seq, version)
        }
    }

    /// Parses the socket form: an object of `"<conversationId>": seq`; nil or null names nothing.
    init(object: JSONValue?) throws(APIError) {
        self.init()
        switch object {
        case nil, .null?:
            return
        case .object(let members)?:
            guard members.count <= Self.maxConversations else { throw Self.tooMany }
            for (key, value) in members {
                guard let conversation = Self.number(Substring(key)), conversation > 0,
                      let (seq, version) = Self.position(value) else {
                    throw APIError.validation(
                        "field 'since' must map conversation ids to seqs or {seq, version}, e.g. {\"12\": 40, \"13\": {\"seq\": 5, \"version\": 2}}")
                }
                try add(conversation, seq, version)
            }
        default:
            throw APIError.validation("field 'since' must be an object mapping conversation ids to seqs")
        }
    }

    private mutating func add(_ conversation: Int64, _ seq: Int64, _ version: Int64) throws(APIError) {
        guard seqs.updateValue(seq, forKey: conversation) == nil else {
            throw APIError.validation("'since' names conversation \(conversation) twice")
        }
        if version > 0 { versions[conversation] = version }
    }

    /// A socket cursor's value: a seq, or `{seq, version?}` (both non-negative).
    private static func position(_ value: JSONValue) -> (seq: Int64, version: Int64)? {
        if let seq = value.int64Value { return seq >= 0 ? (seq, 0) : nil }
        guard case .object(let fields) = value, fields.keys.allSatisfy({ $0 == "seq" || $0 == "version" }),
              let seq = fields["seq"]?.int64Value, seq >= 0 else { return nil }
        guard let version = fields["version"] else { return (seq, 0) }
        guard let number = version.int64Value, number >= 0 else { return nil }
        return (seq, number)
    }

    private static let tooMany = APIError.validation("'since' may name at most \(maxConversations) conversations")

    /// A non-negative decimal of at most 18 digits.
    private static func number(_ text: Substring) -> Int64? {
        guard (1...18).contains(text.utf8.count),
              text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(text)
    }
}

/// Which slice of a conversation's history a page asks for (`?before=`, `?after=`, `?limit=`).
struct HistoryPage: Sendable, Equatable {
    /// Only messages with a smaller seq (older).
    var before: Int64?
    /// Only messages with a larger seq (newer).
    var after: Int64?
    var limit: Int

    /// Which end the page is taken from: with `after` the oldest matching messages (reading
    /// forward), otherwise the newest (scrolling back). Pages are always returned oldest first.
    var fromOldest: Bool { after != nil }

    /// This page of `conversationID`'s messages (`ChatMessageRecord.columns`), one row more than
    /// `limit` so the caller can tell whether the range holds more; newest first unless `fromOldest`.
    func query(conversationID: Int64) -> PostgresQuery {
        """
        SELECT \(unescaped: ChatMessageRecord.columns) FROM \(unescaped: ChatMessageRecord.tables)
        WHERE m.conversation_id = \(conversationID) AND m.seq > \(after ?? 0) AND m.seq < \(before ?? Int64.max)
        ORDER BY m.seq \(unescaped: fromOldest ? "ASC" : "DESC") LIMIT \(limit + 1)
        """
    }

    init(before: Int64? = nil, after: Int64? = nil, limit: Int) {
        self.before = before
        self.after = after
        self.limit = limit
    }

    /// Parses the query parameters; `limit` defaults to `defaultLimit` and must be 1...`maxLimit`.
    init(before: String?, after: String?, limit: String?, defaultLimit: Int, maxLimit: Int) throws(APIError) {
        self.before = try Self.seq(before, "before")
        self.after = try Self.seq(after, "after")
        self.limit = try Self.limit(limit, default: defaultLimit, max: maxLimit)
        if let lower = self.after, let upper = self.before, upper <= lower {
            throw APIError.validation("parameter 'before' must be greater than 'after'")
        }
    }

    /// A `limit` query parameter: absent means `default`; otherwise an integer in 1...`max`.
    static func limit(_ text: String?, default defaultValue: Int, max: Int) throws(APIError) -> Int {
        guard let text else { return defaultValue }
        guard let value = Int(text), (1...max).contains(value) else {
            throw APIError.validation("parameter 'limit' must be an integer from 1 to \(max)")
        }
        return value
    }

    private static func seq(_ text: String?, _ name: String) throws(APIError) -> Int64? {
        guard let text else { return nil }
        guard let value = Int64(text), value >= 0 else {
            throw APIError.validation("parameter '\(name)' must be a non-negative integer (a message seq)")
        }
        return value
    }
}
