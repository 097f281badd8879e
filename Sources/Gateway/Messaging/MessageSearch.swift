import Shared

/// A message search (issue 14), as `GET /api/messages/search` and the socket's `searchMessages`
/// ask it: the text, how it matches, where, and which page. Pure: strings or JSON in, a search or
/// a `validation_failed` naming the field out.
///
/// - `substring` (the default): case-insensitive substring of the content (`ILIKE`, served by the
///   trigram index); `%`, `_` and `\` in `q` are literal.
/// - `word`: every word of `q` is a word of the content (`simple` text search: no stemming, no
///   stop words, case-insensitive).
///
/// Results are the caller's conversations only, never deleted messages, newest first; `before`
/// (a message id) pages back.
struct MessageSearch: Sendable, Equatable {
    enum Mode: String, Sendable, CaseIterable {
        case substring
        case word
    }

    var text: String
    var mode: Mode
    var conversationID: Int64?
    var before: Int64?
    var limit: Int

    /// Longest `q`, in characters (after trimming surrounding whitespace).
    static let maxQueryLength = 200
    static let defaultLimit = 20
    static let maxLimit = 100

    init(text: String, mode: Mode = .substring, conversationID: Int64? = nil, before: Int64? = nil, limit: Int = defaultLimit) {
        self.text = text
        self.mode = mode
        self.conversationID = conversationID
        self.before = before
        self.limit = limit
    }

    /// From query parameters (`q`, `mode`, `conversationId`, `before`, `limit`).
    init(q: String?, mode: String?, conversationID: String?, before: String?, limit: String?) throws(APIError) {
        try self.init(q: q.map(JSONValue.string), mode: mode.map(JSONValue.string), conversationID: conversationID.map(JSONValue.string),
                      before: before.map(JSONValue.string), limit: limit.map(JSONValue.string))
    }

    /// From a socket argument `{q, mode?, conversationId?, before?, limit?}`.
    init(object: JSONObject) throws(APIError) {
        try self.init(q: object["q"], mode: object["mode"], conversationID: object["conversationId"], before: object["before"],
                      limit: object["limit"])
    }

    private init(q: JSONValue?, mode: JSONValue?, conversationID: JSONValue?, before: JSONValue?, limit: JSONValue?) throws(APIError) {
        guard let raw = q?.stringValue else { throw APIError.validation("'q' is required: the text to search for") }
        let trimmed = Self.trimmed(raw)
        guard !trimmed.isEmpty, trimmed.count <= Self.maxQueryLength else {
            throw APIError.validation("'q' must be 1-\(Self.maxQueryLength) characters")
        }
        guard !trimmed.unicodeScalars.contains(where: { $0.value == 0 }) else { throw APIError.validation("'q' must not contain NUL characters") }
        text = trimmed
        if let mode, !mode.isNull {
            guard let name = mode.stringValue, let known = Mode(rawValue: name) else {
                throw APIError.validation("'mode' must be one of substring, word")
            }
            self.mode = known
        } else {
            self.mode = .substring
        }
        self.conversationID = try Self.optionalID(conversationID, "conversationId")
        self.before = try Self.optionalID(before, "before")
        if let limit, !limit.isNull {
            guard let value = ChatCommand.idValue(limit), (1...Int64(Self.maxLimit)).contains(value) else {
                throw APIError.validation("'limit' must be an integer from 1 to \(Self.maxLimit)")
            }
            self.limit = Int(value)
        } else {
            self.limit = Self.defaultLimit
        }
    }

    /// `text` without surrounding whitespace (Unicode's notion, as content validation uses).
    static func trimmed(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }

    private static func optionalID(_ value: JSONValue?, _ name: String) throws(APIError) -> Int64? {
        guard let value, !value.isNull else { return nil }
        guard let id = ChatCommand.idValue(value), id > 0 else { throw APIError.validation("'\(name)' must be a positive integer id") }
        return id
    }

    /// `%<text>%` for `ILIKE ... ESCAPE '\'`, with the pattern characters of `text` escaped, so
    /// they match themselves.
    static func likePattern(_ text: String) -> String {
        var pattern = "%"
        for character in text {
            if character == "\\" || character == "%" || character == "_" { pattern.append("\\") }
            pattern.append(character)
        }
        pattern.append("%")
        return pattern
    }

    /// The search's SQL and parameters: `$1` the caller, `$2` the match, then the optional
    /// conversation and cursor, and the page size (one more row than `limit`, to tell `hasMore`).
    /// Every fragment is fixed text; what the caller sent travels only as parameters.
    ///
    /// Word mode finds its matches first (a materialized CTE over the words index): PostgreSQL
    /// cannot estimate how rare a word is and otherwise walks the primary key backwards, computing
    /// every message's words (1.3 s instead of 80 ms for a word in 2,200 of 1,000,000 messages,
    /// docs/BENCHMARKS.md). Substring mode leaves the choice to the planner, whose trigram
    /// estimates serve it well (and a backwards walk suits one- and two-letter patterns, which
    /// trigrams cannot serve).
    func query(userID: Int64) -> (sql: String, parameters: [PostgresValue?]) {
        var parameters: [PostgresValue?] = [.int64(userID)]
        let match: String
        switch mode {
        case .substring:
            parameters.append(.string(Self.likePattern(text)))
            match = "m.content ILIKE $2 ESCAPE '\\'"
        case .word:
            parameters.append(.string(text))
            match = "to_tsvector('simple', m.content) @@ plainto_tsquery('simple', $2)"
        }
        var conditions = ["m.deleted_at IS NULL", match]
        if let conversationID {
            parameters.append(.int64(conversationID))
            conditions.append("m.conversation_id = $\(parameters.count)")
        }
        if let before {
            parameters.append(.int64(before))
            conditions.append("m.id < $\(parameters.count)")
        }
        parameters.append(.int(limit + 1))
        let filter = conditions.joined(separator: " AND ")
        let members = """
            JOIN conversations c ON c.id = m.conversation_id AND c.deleted_at IS NULL
            JOIN conversation_members me ON me.conversation_id = m.conversation_id AND me.user_id = $1
            """
        let sql: String
        switch mode {
        case .substring:
            sql = """
                SELECT \(ChatMessageRecord.columns)
                FROM messages m
                \(members)
                WHERE \(filter)
                ORDER BY m.id DESC
                LIMIT $\(parameters.count)
                """
        case .word:
            sql = """
                WITH hits AS MATERIALIZED (SELECT m.id FROM messages m WHERE \(filter))
                SELECT \(ChatMessageRecord.columns)
                FROM hits JOIN messages m ON m.id = hits.id
                \(members)
                ORDER BY m.id DESC
                LIMIT $\(parameters.count)
                """
        }
        return (sql, parameters)
    }
}
