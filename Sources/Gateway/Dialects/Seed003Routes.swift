import Shared

/// Seed 003's REST table (`/api/chat/*`, issue 16) as rewrites to native routes, and its answers:
/// `{success, message?, data}` envelopes, pages (`page`, `limit`, `total`, `totalPages`), and
/// messages with `sender_id`, `receiver_id`, `conversation_id`, `attachment_url`, `is_read` (the
/// README's shape; `createdAt` stays camelCase as it shows). Errors become
/// `{success: false, message, error: {code, message}}` with the native status.
enum Seed003Routes {
    /// The most conversations or search results one page may reach back (page × limit).
    static let maxReach = 100

    static func rewrite(_ request: HTTPRequest) -> DialectRoutes.Rewrite? {
        let path = request.path
        guard path.hasPrefix("/api/chat/") else { return nil }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst(3).map(String.init)
        let page = max(1, Int(request.queryParameter("page") ?? "") ?? 1)
        let limit = max(1, min(Int(request.queryParameter("limit") ?? "") ?? 20, maxReach))
        func to(_ method: HTTPMethod, _ nativePath: String, _ query: String?, _ reshape: DialectRoutes.Reshape) -> DialectRoutes.Rewrite {
            var native = DialectRoutes.moved(request, to: nativePath)
            native.method = method
            native.query = query
            native.target = query.map { nativePath + "?" + $0 } ?? nativePath
            return DialectRoutes.Rewrite(request: native, dialect: .seed003, reshape: reshape)
        }
        let caller = callerID(request)
        switch (request.method, segments) {
        case (.POST, ["send"]):
            return to(.POST, "/api/messages", nil, .seed003(.sent))
        case (.GET, ["conversations"]):
            return to(.GET, "/api/messages/conversations", "limit=\(min(page * limit, maxReach))",
                      .seed003(.conversations(page: page, limit: limit, caller: caller)))
        case (.GET, let parts) where parts.count == 3 && parts[0] == "conversations" && parts[2] == "messages":
            return to(.GET, "/api/conversations/\(parts[1])/messages", "after=\((page - 1) * limit)&limit=\(limit)",
                      .seed003(.messages(page: page, limit: limit)))
        case (.PUT, let parts) where parts.count == 3 && parts[0] == "conversations" && parts[2] == "read":
            return to(.POST, "/api/conversations/\(parts[1])/read", nil, .seed003(.read))
        case (.GET, ["unread-count"]):
            return to(.GET, "/api/messages/unread-count", nil, .seed003(.data))
        case (.GET, ["unread"]):
            return to(.GET, "/api/conversations/unread", nil, .seed003(.data))
        case (.GET, let parts) where parts.count == 3 && parts[0] == "conversations" && parts[2] == "search":
            let term = rawQueryParameter(request.query, "q") ?? ""
            return to(.GET, "/api/messages/search", "q=\(term)&conversationId=\(parts[1])&limit=\(min(page * limit, maxReach))",
                      .seed003(.search(page: page, limit: limit)))
        case (.DELETE, let parts) where parts.count == 2 && parts[0] == "messages":
            return to(.DELETE, "/api/messages/\(parts[1])", nil, .seed003(.deleted))
        default:
            return nil
        }
    }

    /// The answers seed 003 documents.
    enum Answer: Sendable, Equatable {
        case sent, read, deleted, data
        case conversations(page: Int, limit: Int, caller: Int64?)
        case messages(page: Int, limit: Int)
        case search(page: Int, limit: Int)
    }

    static func reshape(_ response: HTTPResponse, _ answer: Answer) -> HTTPResponse {
        var reshaped = response
        guard let body = try? JSONParser.parse(response.body) else { return response }
        guard (200..<300).contains(response.status.code) else {
            let message = body["error"]?["message"] ?? .string(response.status.reasonPhrase)
            reshaped.body = JSONValue.object(["success": false, "message": message, "error": body["error"] ?? .null]).serialized()
            return reshaped
        }
        let envelope: JSONObject
        switch answer {
        case .sent: envelope = ["success": true, "message": "Message sent", "data": message(body)]
        case .read: envelope = ["success": true, "message": "Messages marked as read", "data": body]
        case .deleted: envelope = ["success": true, "message": "Message deleted", "data": message(body)]
        case .data: envelope = ["success": true, "data": body]
        case .conversations(let page, let limit, let caller):
            let all = body.arrayValue ?? []
            let conversations = all.dropFirst((page - 1) * limit).prefix(limit).map { conversation($0, caller: caller) }
            envelope = ["success": true, "data": paged("conversations", Array(conversations), total: all.count, page: page, limit: limit)]
        case .messages(let page, let limit):
            let messages = (body["messages"]?.arrayValue ?? []).map(message)
            let total = Int(clamping: body["lastSeq"]?.int64Value ?? Int64(messages.count))
            envelope = ["success": true, "data": paged("messages", messages, total: total, page: page, limit: limit)]
        case .search(let page, let limit):
            let all = body["messages"]?.arrayValue ?? []
            let messages = all.dropFirst((page - 1) * limit).prefix(limit).map(message)
            envelope = ["success": true, "data": paged("messages", Array(messages), total: all.count, page: page, limit: limit)]
        }
        reshaped.body = JSONValue.object(envelope).serialized()
        return reshaped
    }

    private static func paged(_ key: String, _ items: [JSONValue], total: Int, page: Int, limit: Int) -> JSONValue {
        [key: .array(items), "total": .int(Int64(total)), "page": .int(Int64(page)), "limit": .int(Int64(limit)),
         "totalPages": .int(Int64((total + limit - 1) / limit))]
    }

    /// A message with seed 003's snake_case fields.
    static func message(_ value: JSONValue) -> JSONValue {
        guard case .object(var fields) = value else { return value }
        for (from, to) in [("senderId", "sender_id"), ("receiverId", "receiver_id"), ("conversationId", "conversation_id"),
                           ("attachmentUrl", "attachment_url"), ("isRead", "is_read")] {
            if let field = fields.removeValue(forKey: from) { fields[to] = field }
        }
        return .object(fields)
    }

    /// A seed 000 conversation entry as seed 003's `{id, participant_1_id, participant_2_id,
    /// last_message, last_message_at, participant1, participant2}` (participants in id order).
    private static func conversation(_ entry: JSONValue, caller: Int64?) -> JSONValue {
        let partner = entry["partner"] ?? .null
        let partnerID = partner["id"]?.int64Value ?? 0
        let me: JSONValue = caller.map { ["id": .int($0)] } ?? .null
        let first = (caller ?? 0) < partnerID ? (me, caller) : (partner, partnerID)
        let second = (caller ?? 0) < partnerID ? (partner, partnerID) : (me, caller)
        return [
            "id": entry["conversationId"] ?? .null,
            "participant_1_id": first.1.map { .int($0) } ?? .null, "participant_2_id": second.1.map { .int($0) } ?? .null,
            "participant1": first.0, "participant2": second.0,
            "last_message": entry["lastMessage"]?["content"] ?? .null, "last_message_at": entry["lastMessage"]?["createdAt"] ?? .null,
            "unread_count": entry["unreadCount"] ?? .int(0),
        ]
    }

    /// The caller's id from the bearer token's payload, read without checking it: only used to
    /// shape an answer the native route gave after checking the token.
    private static func callerID(_ request: HTTPRequest) -> Int64? {
        guard let token = BearerToken.parse(request.headers["Authorization"]) else { return nil }
        let parts = token.split(separator: ".")
        guard parts.count == 3, let payload = Base64URL.decode(String(parts[1])),
              let subject = try? JSONParser.parse(payload)["sub"]?.stringValue else { return nil }
        return Int64(subject)
    }

    /// A query parameter as it was sent (still percent-encoded).
    private static func rawQueryParameter(_ query: String?, _ name: String) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") where pair.hasPrefix(name + "=") {
            return String(pair.dropFirst(name.count + 1))
        }
        return nil
    }
}
