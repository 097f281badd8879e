import Shared

/// "Did I react": a message's reactions read the same for everyone (`ChatMessageRecord`), so the
/// viewer's own are marked after the read, with one query for a whole page (issue 14).
enum ReactionMarks {
    /// `messages` with `me` set on the reactions `viewer` chose.
    @LoopActor
    static func mark(_ messages: [JSONValue], viewer: Int64, database: PostgresPool) async throws(PostgresError) -> [JSONValue] {
        let reacted = messages.compactMap { message -> Int64? in
            guard let reactions = message["reactions"]?.arrayValue, !reactions.isEmpty else { return nil }
            return message["id"]?.int64Value
        }
        guard !reacted.isEmpty else { return messages }
        let rows = try await database.query(
            "SELECT message_id, emoji FROM message_reactions WHERE user_id = $1 AND message_id = ANY($2::bigint[])",
            [.int64(viewer), .string(PostgresArrayLiteral.integers(reacted))])
        var mine: [Int64: Set<String>] = [:]
        for row in rows { mine[try row.int64("message_id"), default: []].insert(try row.string("emoji")) }
        guard !mine.isEmpty else { return messages }
        return messages.map { message in
            guard case .object(var object) = message, let id = object["id"]?.int64Value, let emoji = mine[id],
                  let reactions = object["reactions"]?.arrayValue else { return message }
            object["reactions"] = .array(reactions.map { reaction in
                guard case .object(var fields) = reaction, let name = fields["emoji"]?.stringValue else { return reaction }
                fields["me"] = .bool(emoji.contains(name))
                return .object(fields)
            })
            return .object(object)
        }
    }
}
