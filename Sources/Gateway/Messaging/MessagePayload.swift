import Shared

/// The arguments clients send to the messaging API (socket events and REST bodies), checked and
/// turned into commands before anything is enqueued. Pure: JSON in, values or a 422 out.
///
/// Ids are accepted as JSON integers or as decimal strings (`"2"`), as the seed API's clients send
/// both; anything else names the field in a `validation_failed` error.
enum MessagePayload {
    /// `sendMessage` / `POST /api/messages`: `{receiverId, content, type?, attachmentUrl?, clientMsgId?}`
    /// under the shared rules (`SendMessage.parse`). A missing `clientMsgId` is filled with
    /// `generatedClientMsgID()`; messages to oneself are refused (`cannot_message_self`).
    static func send(_ argument: JSONValue, senderID: Int64, maxContentLength: Int, attachments: AttachmentPolicy = AttachmentPolicy(),
                     generatedClientMsgID: @escaping () -> String) throws(APIError) -> SendMessage {
        let message = try SendMessage.parse(try object(argument), maxContentLength: maxContentLength, attachments: attachments,
                                            generatedClientMsgID: generatedClientMsgID)
        guard message.receiverID != senderID else { throw ChatErrors.cannotMessageSelf }
        return message
    }

    /// `messageRead {messageId}`.
    static func messageRead(_ argument: JSONValue) throws(APIError) -> ChatCommand {
        .read(messageID: try id(try object(argument), "messageId"))
    }

    /// `editMessage {messageId, content}` (also the REST body `{content}` with the id from the path):
    /// content under the same rules as a send (issue 14).
    static func edit(_ argument: JSONValue, messageID: Int64? = nil, maxContentLength: Int) throws(APIError) -> ChatCommand {
        let body = try object(argument)
        let id: Int64
        if let messageID { id = messageID } else { id = try self.id(body, "messageId") }
        guard case .string(let content)? = body["content"] else { throw APIError.validation("field 'content' is required and must be a string") }
        let command = ChatCommand.edit(messageID: id, content: content)
        try command.validate(userID: 0, maxContentLength: maxContentLength)
        return command
    }

    /// `addReaction` / `removeReaction {messageId, emoji}` (also REST, with the id from the path).
    static func react(_ argument: JSONValue, messageID: Int64? = nil, add: Bool) throws(APIError) -> ChatCommand {
        let body = try object(argument)
        let id: Int64
        if let messageID { id = messageID } else { id = try self.id(body, "messageId") }
        guard case .string(let emoji)? = body["emoji"] else { throw APIError.validation("field 'emoji' is required and must be a string") }
        try ReactionRules.validate(emoji)
        return .react(messageID: id, emoji: emoji, add: add)
    }

    /// `deleteMessage {messageId}` (issue 14).
    static func delete(_ argument: JSONValue) throws(APIError) -> ChatCommand {
        .delete(messageID: try id(try object(argument), "messageId"))
    }

    /// `markAllAsRead {senderId}`; the caller's own id is refused (there is no conversation with oneself).
    static func markAllAsRead(_ argument: JSONValue, readerID: Int64) throws(APIError) -> ChatCommand {
        let senderID = try id(try object(argument), "senderId")
        guard senderID != readerID else { throw ChatErrors.cannotMessageSelf }
        return .readAll(senderID: senderID)
    }

    /// `POST /api/messages/mark-as-read`: exactly one of `{messageIds: [...]}` (at most
    /// `ChatLimits.maxReadManyIDs`, duplicates dropped) or `{senderId}`. nil for an empty
    /// `messageIds`: nothing to do.
    static func markAsRead(_ body: JSONObject, readerID: Int64, maxIDs: Int = ChatLimits.maxReadManyIDs) throws(APIError) -> ChatCommand? {
        let hasIDs = body["messageIds"].map { !$0.isNull } ?? false
        let hasSender = body["senderId"].map { !$0.isNull } ?? false
        switch (hasIDs, hasSender) {
        case (true, true):
            throw APIError.validation("send either field 'messageIds' or field 'senderId', not both")
        case (false, false):
            throw APIError.validation("field 'messageIds' or field 'senderId' is required")
        case (false, true):
            return try markAllAsRead(.object(body), readerID: readerID)
        case (true, false):
            guard case .array(let values)? = body["messageIds"] else {
                throw APIError.validation("field 'messageIds' must be an array of message ids")
            }
            guard values.count <= maxIDs else {
                throw APIError.validation("field 'messageIds' may hold at most \(maxIDs) ids")
            }
            var ids: [Int64] = []
            var seen = Set<Int64>()
            for value in values {
                guard let id = idValue(value) else {
                    throw APIError.validation("field 'messageIds' must contain only positive integer ids")
                }
                if seen.insert(id).inserted { ids.append(id) }
            }
            return ids.isEmpty ? nil : .readMany(ids)
        }
    }

    /// `typing` / `stopTyping {receiverId}`.
    /// The target of `typing` / `stopTyping`: `{receiverId}` (not oneself) or `{roomId}`.
    static func typingTarget(_ argument: JSONValue, senderID: Int64) throws(APIError) -> MessageTarget {
        let body = try object(argument)
        if let room = body["roomId"], !room.isNull { return .room(try id(body, "roomId")) }
        let receiverID = try id(body, "receiverId")
        guard receiverID != senderID else { throw ChatErrors.cannotMessageSelf }
        return .user(receiverID)
    }

    // MARK: Fields

    static func object(_ argument: JSONValue) throws(APIError) -> JSONObject {
        guard case .object(let body) = argument else {
            throw APIError.validation("the argument must be a JSON object")
        }
        return body
    }

    /// A required positive id.
    static func id(_ body: JSONObject, _ field: String) throws(APIError) -> Int64 {
        guard let value = body[field], !value.isNull else { throw APIError.validation("field '\(field)' is required") }
        guard let id = idValue(value) else { throw APIError.validation("field '\(field)' must be a positive integer id") }
        return id
    }

    /// A positive integer, or a string of at most 18 decimal digits holding one.
    static func idValue(_ value: JSONValue) -> Int64? {
        switch value {
        case .string(let text):
            guard (1...18).contains(text.utf8.count), text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  let id = Int64(text), id > 0 else { return nil }
            return id
        default:
            guard let id = value.int64Value, id > 0 else { return nil }
            return id
        }
    }
}
