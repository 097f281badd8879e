import Shared

/// The messaging events of a socket: `sendMessage`, `messageRead`, `markAllAsRead`, `editMessage`,
/// `deleteMessage` (commands on the stream, answered by the worker's reply), `typing` / `stopTyping` (relayed through Redis
/// directly) and `sync` (read from Postgres). Every argument is validated before anything is
/// enqueued; a problem is answered as the ack's error or an `error` event, never by disconnecting.
@LoopActor
final class SocketMessaging {
    let configuration: MessagingConfiguration
    private let submitter: CommandSubmitter
    let reader: ConversationReader
    private let redis: RedisClient
    private let typingLimits: TypingState.Limits
    /// The per-user API budget that database-backed events spend, as REST requests do; nil when
    /// the API limit is off.
    private let apiBudget: APIRequestLimiter?
    private let clock: any LoopClock

    init(configuration: MessagingConfiguration, submitter: CommandSubmitter, reader: ConversationReader, redis: RedisClient,
         apiBudget: APIRequestLimiter?, clock: any LoopClock = SystemClock.shared) {
        self.configuration = configuration
        self.clock = clock
        self.submitter = submitter
        self.reader = reader
        self.redis = redis
        self.apiBudget = apiBudget
        typingLimits = TypingState.Limits(timeout: configuration.typingTimeout.nanosecondsSaturated,
                                          repeatInterval: configuration.typingRepeat.nanosecondsSaturated,
                                          maxReceivers: configuration.maxTypingReceivers)
    }

    /// Handles a messaging event of a connected socket.
    func handle(_ event: SocketEvent, _ argument: JSONValue, ackID: Int64?, session: SocketSession, userID: Int64) {
        do throws(APIError) {
            switch event {
            case .sendMessage:
                let message = try MessagePayload.send(argument, senderID: userID, maxContentLength: configuration.maxContentLength,
                                                      attachments: configuration.attachments,
                                                      generatedClientMsgID: ClientMessageID.generate)
                enqueue(.send(message), userID: userID, ackID: ackID, session: session)
            case .messageRead:
                enqueue(try MessagePayload.messageRead(argument), userID: userID, ackID: ackID, session: session, spendsAPIBudget: true)
            case .markAllAsRead:
                enqueue(try MessagePayload.markAllAsRead(argument, readerID: userID), userID: userID, ackID: ackID, session: session,
                        spendsAPIBudget: true)
            case .typing:
                let target = try MessagePayload.typingTarget(argument, senderID: userID)
                try checkTypingTarget(target, userID: userID)
                guard typingRelay(of: session, userID: userID).typing(to: target) else {
                    throw APIError(.tooManyTypingTargets,
                                   message: "typing to at most \(configuration.maxTypingReceivers) users at once")
                }
                if let ackID { session.sendAck(ackID, ["ok": true]) }
            case .stopTyping:
                let target = try MessagePayload.typingTarget(argument, senderID: userID)
                session.typing?.stopTyping(to: target)
                if let ackID { session.sendAck(ackID, ["ok": true]) }
            case .sync:
                sync(argument, userID: userID, ackID: ackID, session: session)
            case .searchMessages:
                search(argument, userID: userID, ackID: ackID, session: session)
            case .getConversations, .getUnreadCounts:
                conversations(event, argument, userID: userID, ackID: ackID, session: session)
            case .editMessage:
                let command = try MessagePayload.edit(argument, maxContentLength: configuration.maxContentLength)
                enqueue(command, userID: userID, ackID: ackID, session: session, spendsAPIBudget: true)
            case .addReaction, .removeReaction:
                enqueue(try MessagePayload.react(argument, add: event == .addReaction), userID: userID, ackID: ackID, session: session,
                        spendsAPIBudget: true)
            case .deleteMessage:
                enqueue(try MessagePayload.delete(argument), userID: userID, ackID: ackID, session: session, spendsAPIBudget: true)
            default:
                session.emitError(APIError(.unknownEvent, message: "unknown event '\(event)'"), ackID: ackID)
            }
        } catch {
            session.emitError(error, ackID: ackID)
        }
    }

    /// One unit of the user's API budget; the refusal when none is left.
    private func spendAPIBudget(_ userID: Int64) async -> APIError? {
        await apiBudget?.admit(userID: userID)
    }

    // MARK: Commands

    /// Appends a socket's command to the stream, in the socket's order (`CommandLane`). Reads,
    /// edits and deletes spend the user's API budget first, as their REST twins do; sends are
    /// limited by the message limit in the workers instead.
    private func enqueue(_ command: ChatCommand, userID: Int64, ackID: Int64?, session: SocketSession, spendsAPIBudget: Bool = false) {
        let engineSession = session.engineID
        let submitter = self.submitter
        var admit: (@LoopActor () async -> Bool)?
        if spendsAPIBudget {
            admit = { @LoopActor [unowned self] in
                guard let refusal = await self.spendAPIBudget(userID) else { return true }
                session.emitError(refusal, ackID: ackID)
                return false
            }
        }
        let lane = session.commandLane ?? CommandLane()
        session.commandLane = lane
        lane.submit(admit: admit) {
            do throws(APIError) {
                try submitter.submit(command, userID: userID, engineSession: engineSession, ackID: ackID) { error in
                    session.emitError(error, ackID: ackID)
                }
            } catch {
                session.emitError(error, ackID: ackID)
            }
        }
    }

    // MARK: Sync

    /// `sync {since?, limit?}`: a read from Postgres, so it spends the user's API budget first, as
    /// `GET /api/sync` does (the budget is checked before the arguments, as for REST).
    private func sync(_ argument: JSONValue, userID: Int64, ackID: Int64?, session: SocketSession) {
        Task.onLoop {
            if let refusal = await self.spendAPIBudget(userID) { return session.emitError(refusal, ackID: ackID) }
            do {
                let body = argument.isNull ? JSONObject() : try MessagePayload.object(argument)
                let cursor = try SyncCursor(object: body["since"])
                let limit = try Self.limit(body["limit"], max: self.configuration.syncMaxLimit)
                let answer = try await self.reader.sync(userID: userID, cursor: cursor, limit: limit,
                                                        maxConversations: self.configuration.maxConversations)
                if let ackID { session.sendAck(ackID, [answer]) } else { session.emit(.sync, answer) }
            } catch {
                let apiError = APIError.from(error)
                session.emitError(apiError, ackID: ackID)
            }
        }
    }

    /// Seed 002's `get_chat_history {otherUserId, limit?, skip?}` (issue 16): the native history
    /// with that user, the newest `limit` after skipping the newest `skip` (at most 200 from the
    /// newest), oldest first, answered as `chat_history {otherUserId, messages}` in seed 002's
    /// message shape; spends the API budget as `GET /api/messages/conversation/:id` does.
    func chatHistory(otherUserID: Int64, limit: Int, skip: Int, userID: Int64, ackID: Int64?, session: SocketSession) {
        Task.onLoop {
            if let refusal = await self.spendAPIBudget(userID) { return session.emitError(refusal, ackID: ackID) }
            guard otherUserID > 0 else {
                return session.emitError(APIError.invalidField("otherUserId", "field 'otherUserId' must be a positive user id"), ackID: ackID)
            }
            do {
                let span = min(Self.maxHistorySpan, limit + skip)
                guard let page = try await self.reader.history(userID: userID, otherUserID: otherUserID,
                                                               page: HistoryPage(before: nil, after: nil, limit: span)) else {
                    return session.emitError(APIError(.userNotFound), ackID: ackID)
                }
                let kept = page.messages.dropLast(min(skip, page.messages.count)).suffix(limit)
                let answer: JSONValue = ["otherUserId": .int(otherUserID), "messages": .array(kept.map(DialectEvents.seed002Message))]
                if let ackID { session.sendAck(ackID, [answer]) } else { session.emitDialect(DialectEvent.chatHistory.name, answer) }
            } catch {
                session.emitError(APIError.from(error), ackID: ackID)
            }
        }
    }

    /// The most messages `get_chat_history` reaches back from the newest.
    static let maxHistorySpan = 200

    /// `searchMessages {q, mode?, conversationId?, before?, limit?}` → `{messages, hasMore,
    /// nextBefore}`, as `GET /api/messages/search`, spending the API budget first as it does.
    private func search(_ argument: JSONValue, userID: Int64, ackID: Int64?, session: SocketSession) {
        Task.onLoop {
            if let refusal = await self.spendAPIBudget(userID) { return session.emitError(refusal, ackID: ackID) }
            do {
                let search = try MessageSearch(object: try MessagePayload.object(argument))
                let answer = MessageRoutes.searchAnswer(try await self.reader.search(userID: userID, search))
                if let ackID { session.sendAck(ackID, [answer]) } else { session.emit(.searchMessages, answer) }
            } catch {
                session.emitError(APIError.from(error), ackID: ackID)
            }
        }
    }

    /// `getConversations {limit?, cursor?}` and `getUnreadCounts`, as `GET /api/conversations`
    /// and `/api/conversations/unread` (the API budget first, as there).
    private func conversations(_ event: SocketEvent, _ argument: JSONValue, userID: Int64, ackID: Int64?, session: SocketSession) {
        Task.onLoop {
            if let refusal = await self.spendAPIBudget(userID) { return session.emitError(refusal, ackID: ackID) }
            do {
                let answer: JSONValue
                if event == .getUnreadCounts {
                    answer = try await self.reader.list.unread(userID: userID)
                } else {
                    let body = argument.isNull ? JSONObject() : try MessagePayload.object(argument)
                    answer = try await MessageRoutes.conversationPage(self.reader.list, userID: userID, limit: try RoomService.text(body, "limit"),
                                                                      cursor: try RoomService.text(body, "cursor"))
                }
                if let ackID { session.sendAck(ackID, [answer]) } else { session.emit(event, answer) }
            } catch {
                session.emitError(APIError.from(error), ackID: ackID)
            }
        }
    }

    private static func limit(_ value: JSONValue?, max: Int) throws(APIError) -> Int {
        guard let value, !value.isNull else { return max }
        guard let limit = value.int64Value, (1...Int64(max)).contains(limit) else {
            throw APIError.validation("field 'limit' must be an integer from 1 to \(max)")
        }
        return Int(limit)
    }

    // MARK: Typing

    /// Whether a user is a member of a room, from the gateway's room channels (no database read);
    /// set by the composition root.
    var isRoomMember: @LoopActor (_ userID: Int64, _ roomID: Int64) -> Bool = { _, _ in false }

    /// Typing into a room needs its membership (`room_not_found` otherwise, as for a send).
    private func checkTypingTarget(_ target: MessageTarget, userID: Int64) throws(APIError) {
        if case .room(let room) = target, !isRoomMember(userID, room) { throw APIError(.roomNotFound) }
    }

    private func typingRelay(of session: SocketSession, userID: Int64) -> TypingRelay {
        if let relay = session.typing { return relay }
        let redis = self.redis
        let relay = TypingRelay(senderID: userID, limits: typingLimits, clock: clock) { event, payload, target in
            let command = switch target {
            case .user(let receiverID): ChatEvent(userID: receiverID, event: event, data: payload).publishCommand
            case .room(let roomID): RoomEvent(roomID: roomID, event: event, data: payload, except: userID).publishCommand
            }
            // Ephemeral: a lost indicator is corrected by the next one or by the automatic stop.
            Task.onLoop { _ = try? await redis.send(command) }
        }
        session.typing = relay
        return relay
    }
}
