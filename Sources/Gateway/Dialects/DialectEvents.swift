import Shared

/// The socket events of each dialect (issue 16), as pure translations to and from the native
/// protocol: what a dialect client emits becomes a native event (handled by the same code as a
/// native client's), and what the native protocol sends becomes the dialect's events. Events of
/// the native protocol with no counterpart in a dialect keep their native name and shape (a stock
/// client ignores events it does not listen to; `recoveryOffset` and `resync` must get through).
/// docs/DIALECTS.md lists every event and each difference from the seeds' backends.
enum DialectEvents {
    /// A dialect client's event, translated.
    enum Inbound: Sendable, Equatable {
        /// This native event with this argument.
        case native(SocketEvent, JSONValue)
        /// Accepted, nothing to do (a client-side grouping the cluster does not need).
        case ignored
        /// Seed 002's `get_chat_history {otherUserId, limit?, skip?}`: answered as `chat_history`.
        case chatHistory(otherUserID: Int64, limit: Int, skip: Int)
        /// Seed 003's `typing` / `stop_typing {conversationId}`: the native event to the
        /// conversation's other member.
        case conversationTyping(conversationID: Int64, typing: Bool)
        /// Seed 003's `mark_as_read {conversationId}`: `markAllAsRead` of the other member's messages.
        case conversationRead(conversationID: Int64)
        /// Seed 003's `join_conversation {conversationId}`: nothing to join (a user's sockets hear all
        /// its conversations), but the socket learns the conversation's other member, so that
        /// member's typing events can name the conversation.
        case joinConversation(conversationID: Int64)
        /// Not an event of this dialect.
        case unknown
    }

    // MARK: Client → server

    static func inbound(_ dialect: Dialect, name: String, argument: JSONValue) -> Inbound {
        switch dialect {
        case .native: return SocketEvent(client: name).map { .native($0, argument) } ?? .unknown
        case .seed001: return seed001(name, argument)
        case .seed002: return seed002(name, argument)
        case .seed003: return seed003(name, argument)
        case .seed004: return seed004(name, argument)
        }
    }

    private static func seed001(_ name: String, _ argument: JSONValue) -> Inbound {
        switch name {
        case DialectEvent.seed001MessagePrivate.name:
            return .native(.sendMessage, renamed(argument, ["toUserId": "receiverId"]))
        default:
            return nativeFallback(name, argument)
        }
    }

    private static func seed002(_ name: String, _ argument: JSONValue) -> Inbound {
        switch name {
        case DialectEvent.privateMessage.name:
            return .native(.sendMessage, renamed(argument, ["message": "content"]))
        case SocketEvent.typing.name:
            return .native(argument["isTyping"]?.boolValue == false ? .stopTyping : .typing, removing(argument, ["isTyping"]))
        case DialectEvent.messageRead.name:
            return .native(.messageRead, argument)
        case DialectEvent.getChatHistory.name:
            guard let other = argument["otherUserId"].flatMap(ChatCommand.idValue), other > 0 else { return .chatHistory(otherUserID: 0, limit: 0, skip: 0) }
            let limit = argument["limit"]?.int64Value.map { Int(max(1, min($0, 200))) } ?? 50
            let skip = argument["skip"]?.int64Value.map { Int(max(0, min($0, 10_000))) } ?? 0
            return .chatHistory(otherUserID: other, limit: limit, skip: skip)
        default:
            return nativeFallback(name, argument)
        }
    }

    private static func seed003(_ name: String, _ argument: JSONValue) -> Inbound {
        switch name {
        case DialectEvent.joinConversation.name:
            return .joinConversation(conversationID: conversationID(argument))
        case DialectEvent.leaveConversation.name, DialectEvent.joinPersonalRoom.name:
            // Every socket of a user hears its conversations already: nothing to join.
            return .ignored
        case DialectEvent.sendMessage.name:
            return .native(.sendMessage, removing(argument, ["conversationId"]))
        case SocketEvent.typing.name, DialectEvent.stopTyping.name:
            let typing = name == SocketEvent.typing.name
            if argument["receiverId"] != nil { return .native(typing ? .typing : .stopTyping, removing(argument, ["conversationId"])) }
            return .conversationTyping(conversationID: conversationID(argument), typing: typing)
        case DialectEvent.markAsRead.name:
            return .conversationRead(conversationID: conversationID(argument))
        default:
            return nativeFallback(name, argument)
        }
    }

    private static func seed004(_ name: String, _ argument: JSONValue) -> Inbound {
        switch name {
        case DialectEvent.joinRoom.name: return .native(.joinRoom, argument)
        case DialectEvent.leaveRoom.name: return .native(.leaveRoom, argument)
        case DialectEvent.sendMessage.name: return .native(.sendMessage, renamed(argument, ["messageType": "type"]))
        case DialectEvent.editMessage.name: return .native(.editMessage, argument)
        case DialectEvent.deleteMessage.name: return .native(.deleteMessage, argument)
        case DialectEvent.markMessageRead.name: return .native(.messageRead, argument)
        case SocketEvent.typing.name:
            return .native(argument["isTyping"]?.boolValue == false ? .stopTyping : .typing, removing(argument, ["isTyping"]))
        default:
            return nativeFallback(name, argument)
        }
    }

    /// A dialect socket may also use any native event the dialect does not redefine.
    private static func nativeFallback(_ name: String, _ argument: JSONValue) -> Inbound {
        SocketEvent(client: name).map { .native($0, argument) } ?? .unknown
    }

    /// Seed 003's `conversationId` (0 when missing or not an id: answered `conversation_not_found`).
    private static func conversationID(_ argument: JSONValue) -> Int64 {
        argument["conversationId"].flatMap(ChatCommand.idValue) ?? 0
    }

    // MARK: Server → client

    /// The native events each dialect renames or reshapes; the others reach its sockets as they
    /// are (so their native frame is shared, and nothing is translated).
    private static let translated: [Dialect: Set<String>] = {
        let messages = [SocketEvent.receiveMessage.name, SocketEvent.messageSent.name]
        let presence = [SocketEvent.userOnline.name, SocketEvent.userOffline.name]
        let typing = [SocketEvent.typing.name, SocketEvent.stopTyping.name]
        return [
            .native: [],
            .seed001: Set(messages + presence + [SocketEvent.onlineUsers.name]),
            .seed002: Set(messages + presence + typing + [SocketEvent.messageReadByReceiver.name, SocketEvent.onlineUsers.name,
                                                          SocketEvent.error.name]),
            .seed003: Set(messages + typing + [SocketEvent.messageReadByReceiver.name, SocketEvent.messagesReadByReceiver.name,
                                               SocketEvent.memberRead.name, SocketEvent.memberJoined.name, SocketEvent.memberLeft.name]),
            .seed004: Set(messages + presence + typing + [SocketEvent.messageEdited.name, SocketEvent.messageDeleted.name,
                                                          SocketEvent.messageReadByReceiver.name, SocketEvent.memberRead.name,
                                                          SocketEvent.error.name]),
        ]
    }()

    /// Whether `dialect` translates native event `event` (else the native frame goes as it is).
    static func translates(_ dialect: Dialect, _ event: String) -> Bool {
        translated[dialect]?.contains(event) ?? false
    }

    /// The events a `dialect` socket gets for native event `event` with `data` (the same for every
    /// socket of the dialect, so a publication is translated once).
    static func outbound(_ dialect: Dialect, event: String, data: JSONValue) -> [(String, JSONValue)] {
        switch dialect {
        case .native: return [(event, data)]
        case .seed001: return seed001Out(event, data)
        case .seed002: return seed002Out(event, data)
        case .seed003: return seed003Out(event, data)
        case .seed004: return seed004Out(event, data)
        }
    }

    private static func seed001Out(_ event: String, _ data: JSONValue) -> [(String, JSONValue)] {
        switch event {
        case SocketEvent.receiveMessage.name, SocketEvent.messageSent.name:
            return [(DialectEvent.seed001MessageNew.name, data)]
        case SocketEvent.onlineUsers.name:
            return [(DialectEvent.seed001UserOnline.name, .array((data.arrayValue ?? []).compactMap { $0["userId"] }))]
        case SocketEvent.userOnline.name:
            return [(DialectEvent.seed001UserOnline.name, .array([data["userId"] ?? .null]))]
        case SocketEvent.userOffline.name:
            return [(DialectEvent.seed001UserOffline.name, data["userId"] ?? .null)]
        default:
            return [(event, data)]
        }
    }

    private static func seed002Out(_ event: String, _ data: JSONValue) -> [(String, JSONValue)] {
        switch event {
        case SocketEvent.receiveMessage.name, SocketEvent.messageSent.name:
            return [(DialectEvent.privateMessage.name, seed002Message(data))]
        case SocketEvent.typing.name, SocketEvent.stopTyping.name:
            return [(SocketEvent.typing.name, adding(data, ["isTyping": .bool(event == SocketEvent.typing.name)]))]
        case SocketEvent.messageReadByReceiver.name:
            return [(DialectEvent.messageRead.name, ["messageId": data["id"] ?? .null, "readerId": data["readerId"] ?? .null])]
        case SocketEvent.onlineUsers.name:
            return [(DialectEvent.onlineUsers.name, data)]
        case SocketEvent.userOnline.name:
            return [(DialectEvent.userOnline.name, picked(data, ["userId", "username"]))]
        case SocketEvent.userOffline.name:
            return [(DialectEvent.userOffline.name, picked(data, ["userId", "username", "lastSeen"]))]
        case SocketEvent.error.name:
            return [(SocketEvent.error.name, errorObject(data, detailsKey: "details"))]
        default:
            return [(event, data)]
        }
    }

    /// Seed 002's message: `{id, senderId, receiverId, message, timestamp, isRead}` (plus the
    /// native fields, and `roomId` for a room's message).
    static func seed002Message(_ data: JSONValue) -> JSONValue {
        guard case .object(var fields) = data else { return data }
        fields["message"] = fields["content"]
        fields["timestamp"] = fields["createdAt"]
        return .object(fields)
    }

    private static func seed003Out(_ event: String, _ data: JSONValue) -> [(String, JSONValue)] {
        switch event {
        case SocketEvent.receiveMessage.name:
            let message = seed003Message(data)
            let notification: JSONValue = ["from": data["senderId"] ?? .null, "conversationId": data["conversationId"] ?? .null,
                                           "content": data["content"] ?? .null, "timestamp": data["createdAt"] ?? .null]
            return [(DialectEvent.newMessage.name, message), (DialectEvent.messageNotification.name, notification)]
        case SocketEvent.messageSent.name:
            return [(DialectEvent.newMessage.name, seed003Message(data))]
        case SocketEvent.typing.name, SocketEvent.stopTyping.name:
            let payload: JSONValue = ["userId": data["senderId"] ?? .null,
                                      "conversationId": data["conversationId"] ?? data["roomId"] ?? .null]
            return [(event == SocketEvent.typing.name ? DialectEvent.userTyping.name : DialectEvent.userStoppedTyping.name, payload)]
        case SocketEvent.messageReadByReceiver.name:
            return [(DialectEvent.messagesRead.name, ["conversationId": data["conversationId"] ?? .null, "userId": data["readerId"] ?? .null])]
        case SocketEvent.messagesReadByReceiver.name:
            return [(DialectEvent.messagesRead.name, ["conversationId": data["conversationId"] ?? .null, "userId": data["receiverId"] ?? .null])]
        case SocketEvent.memberRead.name:
            return [(DialectEvent.messagesRead.name, ["conversationId": data["roomId"] ?? .null, "userId": data["userId"] ?? .null])]
        case SocketEvent.memberJoined.name:
            return [(DialectEvent.userJoined.name, ["userId": data["userId"] ?? .null, "conversationId": data["roomId"] ?? .null,
                                     "message": .string("a user joined the conversation")])]
        case SocketEvent.memberLeft.name:
            return [(DialectEvent.userLeft.name, ["userId": data["userId"] ?? .null, "conversationId": data["roomId"] ?? .null,
                                   "message": .string("a user left the conversation")])]
        default:
            return [(event, data)]
        }
    }

    /// Seed 003's socket message: `{id, senderId, receiverId, conversationId, content,
    /// attachmentUrl, isRead, createdAt, sender}` (camelCase on sockets, as its README shows).
    private static func seed003Message(_ data: JSONValue) -> JSONValue {
        guard case .object(var fields) = data else { return data }
        fields["sender"] = ["id": fields["senderId"] ?? .null]
        return .object(fields)
    }

    private static func seed004Out(_ event: String, _ data: JSONValue) -> [(String, JSONValue)] {
        switch event {
        case SocketEvent.receiveMessage.name, SocketEvent.messageSent.name:
            return [(DialectEvent.receiveMessage.name, seed004Message(data))]
        case SocketEvent.messageEdited.name:
            return [(DialectEvent.messageEdited.name, seed004Message(data))]
        case SocketEvent.messageDeleted.name:
            return [(DialectEvent.messageDeleted.name, ["messageId": data["id"] ?? .null, "roomId": data["roomId"] ?? .null,
                                         "conversationId": data["conversationId"] ?? .null])]
        case SocketEvent.messageReadByReceiver.name:
            return [(DialectEvent.messageRead.name, ["messageId": data["id"] ?? .null, "userId": data["readerId"] ?? .null,
                                      "conversationId": data["conversationId"] ?? .null])]
        case SocketEvent.memberRead.name:
            return [(DialectEvent.messageRead.name, picked(data, ["roomId", "userId", "lastReadSeq"]))]
        case SocketEvent.userOnline.name:
            return [(DialectEvent.userStatus.name, adding(picked(data, ["userId", "username"]), ["isOnline": true]))]
        case SocketEvent.userOffline.name:
            return [(DialectEvent.userStatus.name, adding(picked(data, ["userId", "username", "lastSeen"]), ["isOnline": false]))]
        case SocketEvent.typing.name, SocketEvent.stopTyping.name:
            return [(SocketEvent.typing.name, ["userId": data["senderId"] ?? .null, "roomId": data["roomId"] ?? .null,
                                               "receiverId": data["receiverId"] ?? .null,
                                               "isTyping": .bool(event == SocketEvent.typing.name)])]
        case SocketEvent.error.name:
            // `join_room` for a room the socket's user is in already is what seed 004's clients do
            // on every connect: not an error there.
            if data["code"]?.stringValue == ErrorCode.alreadyAMember.name { return [] }
            return [(SocketEvent.error.name, errorObject(data, detailsKey: "code"))]
        default:
            return [(event, data)]
        }
    }

    /// Seed 004's message: the native one plus `messageType` and `isEdited`.
    private static func seed004Message(_ data: JSONValue) -> JSONValue {
        guard case .object(var fields) = data else { return data }
        fields["messageType"] = fields["type"]
        fields["isEdited"] = .bool(!(fields["editedAt"]?.isNull ?? true))
        return .object(fields)
    }

    /// The `welcome` event seed 004 sends after connecting.
    static func welcome(userID: Int64) -> JSONValue {
        ["message": .string("Hello, User \(userID)"), "userId": .int(userID)]
    }

    // MARK: Helpers

    /// `value` (an object) with fields renamed; a field already present under the new name wins.
    static func renamed(_ value: JSONValue, _ names: [String: String]) -> JSONValue {
        guard case .object(var fields) = value else { return value }
        for (from, to) in names {
            if let field = fields.removeValue(forKey: from), fields[to] == nil { fields[to] = field }
        }
        return .object(fields)
    }

    private static func removing(_ value: JSONValue, _ names: [String]) -> JSONValue {
        guard case .object(var fields) = value else { return value }
        for name in names { fields[name] = nil }
        return .object(fields)
    }

    private static func adding(_ value: JSONValue, _ extra: JSONObject) -> JSONValue {
        guard case .object(var fields) = value else { return value }
        for (name, field) in extra { fields[name] = field }
        return .object(fields)
    }

    private static func picked(_ value: JSONValue, _ names: [String]) -> JSONValue {
        var fields = JSONObject()
        for name in names { if let field = value[name] { fields[name] = field } }
        return .object(fields)
    }

    /// `{message, <detailsKey>: code}` from the native `{code, message, ...}`.
    private static func errorObject(_ data: JSONValue, detailsKey: String) -> JSONValue {
        guard case .object(var fields) = data else { return data }
        if detailsKey != "code" { fields[detailsKey] = fields["code"] }
        return .object(fields)
    }
}

/// A socket event of a seed dialect (issue 16): declared once here, like `SocketEvent`s, so
/// scripts/check-vocabulary keeps every spelling in one place.
struct DialectEvent: Sendable, Equatable {
    let name: String

    init(_ name: String) {
        self.name = name
    }

    static let seed001MessagePrivate = DialectEvent("message:private")
    static let seed001MessageNew = DialectEvent("message:new")
    static let seed001UserOnline = DialectEvent("user:online")
    static let seed001UserOffline = DialectEvent("user:offline")
    static let seed001AuthLogin = DialectEvent("auth:login")
    static let seed001AuthOk = DialectEvent("auth:ok")
    static let seed001AuthError = DialectEvent("auth:error")
    static let privateMessage = DialectEvent("private_message")
    static let messageRead = DialectEvent("message_read")
    static let getChatHistory = DialectEvent("get_chat_history")
    static let chatHistory = DialectEvent("chat_history")
    static let onlineUsers = DialectEvent("online_users")
    static let userOnline = DialectEvent("user_online")
    static let userOffline = DialectEvent("user_offline")
    static let joinConversation = DialectEvent("join_conversation")
    static let leaveConversation = DialectEvent("leave_conversation")
    static let joinPersonalRoom = DialectEvent("join_personal_room")
    static let sendMessage = DialectEvent("send_message")
    static let stopTyping = DialectEvent("stop_typing")
    static let markAsRead = DialectEvent("mark_as_read")
    static let newMessage = DialectEvent("new_message")
    static let messageNotification = DialectEvent("message_notification")
    static let userTyping = DialectEvent("user_typing")
    static let userStoppedTyping = DialectEvent("user_stopped_typing")
    static let messagesRead = DialectEvent("messages_read")
    static let userJoined = DialectEvent("user_joined")
    static let userLeft = DialectEvent("user_left")
    static let joinRoom = DialectEvent("join_room")
    static let leaveRoom = DialectEvent("leave_room")
    static let editMessage = DialectEvent("edit_message")
    static let deleteMessage = DialectEvent("delete_message")
    static let markMessageRead = DialectEvent("mark_message_read")
    static let receiveMessage = DialectEvent("receive_message")
    static let messageEdited = DialectEvent("message_edited")
    static let messageDeleted = DialectEvent("message_deleted")
    static let userStatus = DialectEvent("user_status")
    static let welcome = DialectEvent("welcome")
}
