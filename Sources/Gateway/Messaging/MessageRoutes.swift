import Shared

/// The message REST API: seed 000's `/api/messages/*` verbatim, plus `POST /api/messages` and
/// `GET /api/sync`. Reads come straight from Postgres; writes are commands on the stream, answered
/// when a worker replied.
@LoopActor
final class MessageRoutes {
    private let reader: ConversationReader
    private let submitter: CommandSubmitter
    private let configuration: MessagingConfiguration

    init(reader: ConversationReader, submitter: CommandSubmitter, configuration: MessagingConfiguration) {
        self.reader = reader
        self.submitter = submitter
        self.configuration = configuration
    }

    func register(on router: APIRouter) {
        router.add(.POST, "/api/messages", authenticated: true) { [unowned self] in try await self.send($0) }
        router.add(.GET, "/api/messages/conversation/:otherUserId", authenticated: true) { [unowned self] in
            try await self.history($0)
        }
        router.add(.GET, "/api/messages/conversations", authenticated: true) { [unowned self] in
            try await self.conversations($0)
        }
        router.add(.GET, "/api/messages/unread-count", authenticated: true) { [unowned self] in
            try await self.unreadCount($0)
        }
        router.add(.POST, "/api/messages/mark-as-read", authenticated: true) { [unowned self] in
            try await self.markAsRead($0)
        }
        router.add(.GET, "/api/sync", authenticated: true) { [unowned self] in try await self.sync($0) }
        router.add(.GET, "/api/messages/search", authenticated: true) { [unowned self] in try await self.search($0) }
        router.add(.GET, "/api/conversations", authenticated: true) { [unowned self] in try await self.conversationPage($0) }
        router.add(.GET, "/api/conversations/:conversationId/messages", authenticated: true) { [unowned self] in
            try await self.conversationHistory($0)
        }
        router.add(.POST, "/api/conversations/:conversationId/read", authenticated: true) { [unowned self] in
            try await self.readConversation($0)
        }
        router.add(.GET, "/api/conversations/unread", authenticated: true) { [unowned self] in
            .json(.ok, try await self.reader.list.unread(userID: try $0.caller.userID))
        }
        router.add(.PATCH, "/api/messages/:messageId", authenticated: true) { [unowned self] in try await self.edit($0) }
        router.add(.DELETE, "/api/messages/:messageId", authenticated: true) { [unowned self] in try await self.delete($0) }
        router.add(.PUT, "/api/messages/:messageId/reactions", authenticated: true) { [unowned self] in try await self.react($0, add: true) }
        router.add(.DELETE, "/api/messages/:messageId/reactions", authenticated: true) { [unowned self] in
            try await self.react($0, add: false)
        }
    }

    /// `GET /api/messages/search?q=&mode=&conversationId=&before=&limit=` → `{messages, hasMore,
    /// nextBefore}`: the caller's messages matching `q`, newest first (issue 14).
    private func search(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let http = request.http
        let search = try MessageSearch(q: http.queryParameter("q"), mode: http.queryParameter("mode"),
                                       conversationID: http.queryParameter("conversationId"), before: http.queryParameter("before"),
                                       limit: http.queryParameter("limit"))
        return .json(.ok, try await Self.searchAnswer(reader.search(userID: userID, search)))
    }

    /// `{messages, hasMore, nextBefore}` (`nextBefore`: the `before` of the next page, or null).
    static func searchAnswer(_ page: (messages: [JSONValue], hasMore: Bool)) -> JSONValue {
        let next = page.hasMore ? page.messages.last?["id"] ?? .null : .null
        return ["messages": .array(page.messages), "hasMore": .bool(page.hasMore), "nextBefore": next]
    }

    /// `GET /api/conversations?limit=&cursor=` → `{conversations, nextCursor, totalUnread}`: direct
    /// conversations and rooms, most recent activity first (issue 14).
    private func conversationPage(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let http = request.http
        return .json(.ok, try await Self.conversationPage(reader.list, userID: userID, limit: http.queryParameter("limit"),
                                                          cursor: http.queryParameter("cursor")))
    }

    /// A page of the conversation list for `limit` and `cursor` as the client sent them.
    static func conversationPage(_ list: ConversationList, userID: Int64, limit: String?, cursor: String?) async throws -> JSONValue {
        let size = try HistoryPage.limit(limit, default: 50, max: ConversationList.maxPage)
        let after = try cursor.map { text throws(APIError) in try ActivityCursor(text: text) }
        return try await list.page(userID: userID, limit: size, after: after)
    }

    /// `PATCH /api/messages/:messageId {content}`: 200 with the edited message (issue 14).
    private func edit(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let messageID = try request.idParameter("messageId")
        let command = try MessagePayload.edit(.object(try request.jsonObject()), messageID: messageID,
                                              maxContentLength: configuration.maxContentLength)
        return .json(.ok, try await submitter.submit(command, userID: userID))
    }

    /// `PUT /api/messages/:messageId/reactions {emoji}` adds the caller's reaction;
    /// `DELETE /api/messages/:messageId/reactions?emoji=` removes it. 200 with the message (its
    /// `reactions`, the caller's marked `me`); both are idempotent.
    private func react(_ request: APIRequest, add: Bool) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let messageID = try request.idParameter("messageId")
        let body: JSONValue = add ? .object(try request.jsonObject()) : ["emoji": request.http.queryParameter("emoji").map { .string($0) } ?? .null]
        return .json(.ok, try await submitter.submit(try MessagePayload.react(body, messageID: messageID, add: add), userID: userID))
    }

    /// `DELETE /api/messages/:messageId`: 200 with the deleted message (its content gone).
    private func delete(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        return .json(.ok, try await submitter.submit(.delete(messageID: try request.idParameter("messageId")), userID: userID))
    }

    /// `POST /api/messages`: 201 with the stored message; 200 with the earlier one when this
    /// sender already stored the same `clientMsgId`.
    private func send(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let body = try request.jsonObject()
        let clientGaveID = body["clientMsgId"].map { !$0.isNull } ?? false
        let message = try MessagePayload.send(.object(body), senderID: userID, maxContentLength: configuration.maxContentLength,
                                              attachments: configuration.attachments,
                                              generatedClientMsgID: ClientMessageID.generate)
        if clientGaveID, let stored = try await reader.message(senderID: userID, clientMsgID: message.clientMsgID) {
            return .json(.ok, stored)
        }
        // A direct message's receiver is checked here for a quick 404; a room's membership by the worker.
        if let receiver = message.receiverID, !(try await reader.userExists(receiver)) { throw ChatErrors.userNotFound }
        let stored = try await submitter.submit(.send(message), userID: userID)
        return .json(.created, stored)
    }

    /// `GET /api/messages/conversation/:otherUserId?before=&after=&limit=`: oldest first. The
    /// `X-Has-More` header says whether the range holds more than this page.
    private func history(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let otherUserID = try request.idParameter("otherUserId")
        let http = request.http
        let page = try HistoryPage(before: http.queryParameter("before"), after: http.queryParameter("after"),
                                   limit: http.queryParameter("limit"), defaultLimit: configuration.historyDefaultLimit,
                                   maxLimit: configuration.historyMaxLimit)
        guard let history = try await reader.history(userID: userID, otherUserID: otherUserID, page: page) else {
            throw APIError(.userNotFound, message: "no user with id \(otherUserID)")
        }
        var response = HTTPResponse.json(.ok, .array(history.messages))
        response.headers.replaceOrAdd(name: "X-Has-More", value: history.hasMore ? "true" : "false")
        return response
    }

    /// `GET /api/conversations/:conversationId/messages?before=&after=&limit=` (a direct
    /// conversation of the caller's, by the `conversationId` lists give): the history page as
    /// `GET /api/messages/conversation/:otherUserId` gives it, with `lastSeq` (the number of
    /// messages ever sent in it: seqs are gap-free) and `hasMore`. Rooms: `/api/rooms/:roomId/messages`.
    private func conversationHistory(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let conversationID = try request.idParameter("conversationId")
        guard let partner = try await reader.directPartner(conversationID: conversationID, userID: userID) else {
            throw APIError(.conversationNotFound)
        }
        let http = request.http
        let page = try HistoryPage(before: http.queryParameter("before"), after: http.queryParameter("after"),
                                   limit: http.queryParameter("limit"), defaultLimit: configuration.historyDefaultLimit,
                                   maxLimit: configuration.historyMaxLimit)
        let history = try await reader.history(userID: userID, otherUserID: partner, page: page) ?? ([], false)
        let lastSeq = try await reader.lastSeq(conversationID: conversationID)
        return .json(.ok, ["messages": .array(history.messages), "lastSeq": .int(lastSeq), "hasMore": .bool(history.hasMore)])
    }

    /// `POST /api/conversations/:conversationId/read`: everything the other member sent in this
    /// direct conversation is read (as `POST /api/messages/mark-as-read {senderId}`).
    private func readConversation(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        guard let partner = try await reader.directPartner(conversationID: try request.idParameter("conversationId"), userID: userID) else {
            throw APIError(.conversationNotFound)
        }
        let result = try await submitter.submit(.readAll(senderID: partner), userID: userID)
        return .json(.ok, ["message": "Messages marked as read", "count": .int(result["count"]?.int64Value ?? 0)])
    }

    /// `GET /api/messages/conversations?limit=`: most recent first.
    private func conversations(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let limit = try HistoryPage.limit(request.http.queryParameter("limit"), default: configuration.maxConversations,
                                          max: configuration.maxConversations)
        return .json(.ok, .array(try await reader.conversations(userID: userID, limit: limit)))
    }

    /// `GET /api/messages/unread-count` → `{"unreadCount": n}`.
    private func unreadCount(_ request: APIRequest) async throws -> HTTPResponse {
        let count = try await reader.unreadCount(userID: try request.caller.userID)
        return .json(.ok, ["unreadCount": .int(count)])
    }

    /// `POST /api/messages/mark-as-read` `{messageIds}` or `{senderId}` → seed 000's answer plus `count`.
    private func markAsRead(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let body = try request.jsonObject()
        var answer: JSONObject = ["message": "Messages marked as read", "count": 0]
        if let command = try MessagePayload.markAsRead(body, readerID: userID) {
            let result = try await submitter.submit(command, userID: userID)
            answer["count"] = .int(result["count"]?.int64Value ?? 0)
            if let lastReadSeq = result["lastReadSeq"] { answer["lastReadSeq"] = lastReadSeq }
        }
        return .json(.ok, .object(answer))
    }

    /// `GET /api/sync?since=<conversationId>:<seq>,...&limit=`.
    private func sync(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let cursor = try SyncCursor(query: request.http.queryParameter("since"))
        let limit = try HistoryPage.limit(request.http.queryParameter("limit"), default: configuration.syncMaxLimit,
                                          max: configuration.syncMaxLimit)
        return .json(.ok, try await reader.sync(userID: userID, cursor: cursor, limit: limit,
                                                maxConversations: configuration.maxConversations))
    }
}

/// Ids the gateway gives messages whose client sent no `clientMsgId`.
enum ClientMessageID {
    /// `g-` and 16 random bytes in URL-safe base64 (22 characters of `[A-Za-z0-9_-]`).
    static func generate() -> String {
        "g-" + SecureRandom.token(byteCount: 16)
    }
}
