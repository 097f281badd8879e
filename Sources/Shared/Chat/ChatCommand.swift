import API
import JSON

/// Limits on what a chat command may carry. Defaults here; the content limit is configurable
/// (`MESSAGE_MAX_LENGTH`) and passed to the validators.
package enum ChatLimits {
    /// Longest message content, in Unicode scalars.
    package static let maxContentLength = 4000
    /// Allowed length of a client message id, in ASCII characters.
    package static let clientMsgIDLength = 1...64
    /// Longest attachment URL, in UTF-8 bytes.
    package static let maxAttachmentURLBytes = 2048
    /// Most message ids in one `readMany` command.
    package static let maxReadManyIDs = 1000
}

/// The kind of content a message carries (`messages.type`).
package enum MessageType: String, Sendable, Equatable, CaseIterable {
    /// Plain text (the default).
    case text
    /// An image at `attachmentUrl`; `content` is its caption.
    case image
    /// A file at `attachmentUrl`; `content` names it.
    case file
    /// One or more emoji as the content (issue 14).
    case emoji
    /// A voice note at `attachmentUrl`.
    case voice
}

/// Where a message goes.
package enum MessageTarget: Sendable, Equatable {
    /// The direct conversation with this user.
    case user(Int64)
    /// This room (issue 13).
    case room(Int64)
}

/// The body of a `send` command: what the sender wants stored and delivered.
package struct SendMessage: Sendable, Equatable {
    /// The direct conversation's other member, or the room.
    package var target: MessageTarget
    /// 1 to `maxContentLength` Unicode scalars, not only whitespace, without NUL.
    package var content: String
    /// The kind of content (`text` unless given).
    package var type: MessageType
    /// An `http(s)` URL of at most `ChatLimits.maxAttachmentURLBytes` bytes (image, file, voice).
    package var attachmentURL: String?
    /// The attachment's file name, size in bytes and media type, when the client gives them.
    package var attachmentName: String?
    package var attachmentSize: Int64?
    package var mimeType: String?
    /// The idempotency key: with the sender id, names one stored message forever.
    package var clientMsgID: String

    /// The receiver of a direct message (nil for a room's).
    package var receiverID: Int64? {
        if case .user(let id) = target { return id }
        return nil
    }

    /// The room of a room message (nil for a direct one).
    package var roomID: Int64? {
        if case .room(let id) = target { return id }
        return nil
    }

    /// A send command; values are not checked here (see `validate`).
    package init(target: MessageTarget, content: String, type: MessageType = .text, attachmentURL: String? = nil,
                 attachmentName: String? = nil, attachmentSize: Int64? = nil, mimeType: String? = nil, clientMsgID: String) {
        self.target = target
        self.content = content
        self.type = type
        self.attachmentURL = attachmentURL
        self.attachmentName = attachmentName
        self.attachmentSize = attachmentSize
        self.mimeType = mimeType
        self.clientMsgID = clientMsgID
    }

    /// A direct message to `receiverID`.
    package init(receiverID: Int64, content: String, type: MessageType = .text, attachmentURL: String? = nil, clientMsgID: String) {
        self.init(target: .user(receiverID), content: content, type: type, attachmentURL: attachmentURL, clientMsgID: clientMsgID)
    }

    /// Reads and validates a client payload `{receiverId | roomId, content, type?, attachmentUrl?, clientMsgId?}`.
    ///
    /// `generatedClientMsgID` supplies the id when the client sent none (the gateway passes a random
    /// one); when it is nil a missing `clientMsgId` is an error (the worker's case: gateways always fill it).
    package static func parse(_ body: JSONObject, maxContentLength: Int = ChatLimits.maxContentLength,
                              attachments: AttachmentPolicy = .structural,
                              generatedClientMsgID: (() -> String)? = nil) throws(APIError) -> SendMessage {
        let target: MessageTarget
        let hasRoom = body["roomId"].map { !$0.isNull } ?? false
        let hasReceiver = body["receiverId"].map { !$0.isNull } ?? false
        if hasRoom, hasReceiver {
            throw APIError.validation("give either 'receiverId' (a direct message) or 'roomId' (a room message), not both")
        } else if hasRoom {
            target = .room(try ChatCommand.requiredID(body, "roomId"))
        } else {
            target = .user(try ChatCommand.requiredID(body, "receiverId"))
        }
        let content: String?
        let typeName: String?
        let attachmentURL: String?
        let attachmentName: String?
        let mimeType: String?
        let clientMsgID: String?
        do {
            content = try body.optionalString("content")
            typeName = try body.optionalString("type")
            attachmentURL = try body.optionalString("attachmentUrl")
            attachmentName = try body.optionalString("attachmentName")
            mimeType = try body.optionalString("mimeType")
            clientMsgID = try body.optionalString("clientMsgId")
        } catch {
            throw APIError.validation(error.message)
        }
        var attachmentSize: Int64?
        if let size = body["attachmentSize"], !size.isNull {
            guard let bytes = size.int64Value else { throw APIError.validation("field 'attachmentSize' must be an integer byte count") }
            attachmentSize = bytes
        }
        var type = MessageType.text
        if let typeName {
            guard let known = MessageType(rawValue: typeName) else {
                throw APIError.validation("field 'type' must be one of text, image, file, emoji, voice")
            }
            type = known
        }
        // A caption is optional with an attachment; text and emoji need their content.
        guard let content = content ?? (AttachmentRules.needsAttachment(type) ? "" : nil) else {
            throw APIError.validation("field 'content' is required")
        }
        let id: String
        if let clientMsgID {
            id = clientMsgID
        } else if let generatedClientMsgID {
            id = generatedClientMsgID()
        } else {
            throw APIError.validation("field 'clientMsgId' is required")
        }
        let message = SendMessage(target: target, content: content, type: type, attachmentURL: attachmentURL, attachmentName: attachmentName,
                                  attachmentSize: attachmentSize, mimeType: mimeType, clientMsgID: id)
        try message.validate(maxContentLength: maxContentLength, attachments: attachments)
        return message
    }

    /// Checks every field against `ChatLimits` and `AttachmentRules` (with `attachments` as the
    /// deployment's URL policy; the shape only by default).
    package func validate(maxContentLength: Int = ChatLimits.maxContentLength, attachments: AttachmentPolicy = .structural) throws(APIError) {
        switch target {
        case .user(let id): try ChatCommand.validateID(id, field: "receiverId")
        case .room(let id): try ChatCommand.validateID(id, field: "roomId")
        }
        try AttachmentRules.validate(type: type, content: content, url: attachmentURL, name: attachmentName, size: attachmentSize,
                                     mimeType: mimeType, maxContentLength: maxContentLength, policy: attachments)
        try ChatCommand.validateClientMsgID(clientMsgID)
    }

    /// The stream body: `{"receiverId" | "roomId","content","type","attachmentUrl"?,"clientMsgId"}`.
    package var json: JSONValue {
        var object: JSONObject
        switch target {
        case .user(let id): object = ["receiverId": .int(id)]
        case .room(let id): object = ["roomId": .int(id)]
        }
        object["content"] = .string(content)
        object["type"] = .string(type.rawValue)
        if let attachmentURL { object["attachmentUrl"] = .string(attachmentURL) }
        if let attachmentName { object["attachmentName"] = .string(attachmentName) }
        if let attachmentSize { object["attachmentSize"] = .int(attachmentSize) }
        if let mimeType { object["mimeType"] = .string(mimeType) }
        object["clientMsgId"] = .string(clientMsgID)
        return .object(object)
    }
}

/// What a user asks the message workers to do. Gateways build it from a socket event or REST call,
/// with the acting user taken from the token (`CommandEnvelope.userID`), never from the payload.
package enum ChatCommand: Sendable, Equatable {
    /// Store a message in the direct conversation with `receiverID` and deliver it.
    case send(SendMessage)
    /// Mark a message (and everything before it in its conversation) read.
    case read(messageID: Int64)
    /// Mark everything `senderID` sent to the user read.
    case readAll(senderID: Int64)
    /// Mark these messages (and everything before the newest of them, per conversation) read.
    case readMany([Int64])
    /// A room operation (issue 13).
    case room(RoomCommand)
    /// One of the user's devices received the room's messages up to `seq` (issue 13): its
    /// delivery pointer moves forward.
    case delivered(roomID: Int64, seq: Int64)
    /// Replace a message's content (its sender, within the edit window; issue 14).
    case edit(messageID: Int64, content: String)
    /// Soft-delete a message, erasing its content (its sender, or a room's admin; issue 14).
    case delete(messageID: Int64)
    /// Add (or remove) the user's reaction `emoji` to a message of a conversation they are in.
    case react(messageID: Int64, emoji: String, add: Bool)

    /// The stream's `type` field.
    package var typeName: String {
        switch self {
        case .send: "send"
        case .read: "read"
        case .readAll: "readAll"
        case .readMany: "readMany"
        case .room(let command): command.typeName
        case .delivered: "delivered"
        case .edit: "edit"
        case .delete: "delete"
        case .react: "react"
        }
    }

    /// The stream's `body` field as JSON.
    package var body: JSONValue {
        switch self {
        case .send(let message): message.json
        case .read(let messageID): ["messageId": .int(messageID)]
        case .readAll(let senderID): ["senderId": .int(senderID)]
        case .readMany(let ids): ["messageIds": .array(ids.map { .int($0) })]
        case .room(let command): command.body
        case .delivered(let room, let seq): ["roomId": .int(room), "seq": .int(seq)]
        case .edit(let messageID, let content): ["messageId": .int(messageID), "content": .string(content)]
        case .delete(let messageID): ["messageId": .int(messageID)]
        case .react(let messageID, let emoji, let add): ["messageId": .int(messageID), "emoji": .string(emoji), "add": .bool(add)]
        }
    }

    /// Checks the command's values, and that `userID` does not message itself (`cannot_message_self`).
    package func validate(userID: Int64, maxContentLength: Int = ChatLimits.maxContentLength) throws(APIError) {
        switch self {
        case .send(let message):
            try message.validate(maxContentLength: maxContentLength)
            guard message.receiverID != userID else { throw ChatErrors.cannotMessageSelf }  // nil (a room) never is
        case .read(let messageID):
            try Self.validateID(messageID, field: "messageId")
        case .readAll(let senderID):
            try Self.validateID(senderID, field: "senderId")
        case .readMany(let ids):
            guard ids.count <= ChatLimits.maxReadManyIDs else {
                throw APIError.validation("field 'messageIds' may hold at most \(ChatLimits.maxReadManyIDs) ids")
            }
            for id in ids { try Self.validateID(id, field: "messageIds") }
        case .room(let command):
            try command.validate()
        case .delivered(let room, let seq):
            try Self.validateID(room, field: "roomId")
            try Self.validateID(seq, field: "seq")
        case .edit(let messageID, let content):
            try Self.validateID(messageID, field: "messageId")
            try Self.validateContent(content, maxLength: maxContentLength)
        case .delete(let messageID):
            try Self.validateID(messageID, field: "messageId")
        case .react(let messageID, let emoji, _):
            try Self.validateID(messageID, field: "messageId")
            try ReactionRules.validate(emoji)
        }
    }

    /// Builds a command from its stream `type` and JSON `body` (also usable by gateways for client
    /// payloads of the same shape). `send` takes `SendMessage.parse`'s rules.
    package static func parse(type: String, body: JSONObject, maxContentLength: Int = ChatLimits.maxContentLength,
                              generatedClientMsgID: (() -> String)? = nil) throws(APIError) -> ChatCommand {
        switch type {
        case "send":
            return .send(try SendMessage.parse(body, maxContentLength: maxContentLength, generatedClientMsgID: generatedClientMsgID))
        case "read":
            return .read(messageID: try requiredID(body, "messageId"))
        case "readAll":
            return .readAll(senderID: try requiredID(body, "senderId"))
        case "readMany":
            let values: [JSONValue]
            do {
                values = try body.requiredArray("messageIds")
            } catch {
                throw APIError.validation(error.message)
            }
            guard values.count <= ChatLimits.maxReadManyIDs else {
                throw APIError.validation("field 'messageIds' may hold at most \(ChatLimits.maxReadManyIDs) ids")
            }
            var ids: [Int64] = []
            ids.reserveCapacity(values.count)
            for value in values {
                guard let id = idValue(value), id > 0 else {
                    throw APIError.validation("field 'messageIds' must be an array of positive integer ids")
                }
                ids.append(id)
            }
            return .readMany(ids)
        case "delivered":
            return .delivered(roomID: try requiredID(body, "roomId"), seq: try requiredID(body, "seq"))
        case "edit":
            let content: String
            do {
                content = try body.requiredString("content")
            } catch {
                throw APIError.validation(error.message)
            }
            try validateContent(content, maxLength: maxContentLength)
            return .edit(messageID: try requiredID(body, "messageId"), content: content)
        case "delete":
            return .delete(messageID: try requiredID(body, "messageId"))
        case "react":
            guard case .string(let emoji)? = body["emoji"] else { throw APIError.validation("field 'emoji' is required and must be a string") }
            try ReactionRules.validate(emoji)
            let add = body["add"]?.boolValue ?? true
            return .react(messageID: try requiredID(body, "messageId"), emoji: emoji, add: add)
        case _ where RoomCommand.typeNames.contains(type):
            return .room(try RoomCommand.parse(type: type, body: body))
        default:
            throw ChatErrors.unsupportedCommand(type)
        }
    }

    // MARK: Field rules, shared by gateways and workers

    /// Ids are positive integers.
    package static func validateID(_ id: Int64, field: String) throws(APIError) {
        guard id > 0 else { throw APIError.validation("field '\(field)' must be a positive integer id") }
    }

    /// Content: 1...`maxLength` Unicode scalars, not only whitespace, no NUL (PostgreSQL text cannot hold it).
    package static func validateContent(_ content: String, maxLength: Int = ChatLimits.maxContentLength) throws(APIError) {
        var count = 0
        var blank = true
        for scalar in content.unicodeScalars {
            count += 1
            if scalar.value == 0 { throw APIError.validation("field 'content' must not contain NUL characters") }
            if blank && !scalar.properties.isWhitespace { blank = false }
        }
        guard count >= 1, !blank else { throw APIError.validation("field 'content' must not be empty") }
        guard count <= maxLength else {
            throw APIError.validation("field 'content' must be at most \(maxLength) characters (has \(count))")
        }
    }

    /// Client message ids: 1-64 of `[A-Za-z0-9_.:-]` (UUIDs, ULIDs and `device:counter` forms fit).
    package static func validateClientMsgID(_ id: String) throws(APIError) {
        let bytes = id.utf8
        guard ChatLimits.clientMsgIDLength.contains(bytes.count) else {
            throw APIError.validation("field 'clientMsgId' must be \(ChatLimits.clientMsgIDLength.lowerBound)-\(ChatLimits.clientMsgIDLength.upperBound) characters")
        }
        for byte in bytes where !isClientMsgIDByte(byte) {
            throw APIError.validation("field 'clientMsgId' may contain only letters, digits, '_', '.', ':' and '-'")
        }
    }

    private static func isClientMsgIDByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// An id from a JSON integer, or from a decimal string (JavaScript clients often send route params as strings).
    package static func idValue(_ value: JSONValue) -> Int64? {
        if let id = value.int64Value { return id }
        if let text = value.stringValue, !text.isEmpty, text.utf8.count <= 19,
           text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            return Int64(text)
        }
        return nil
    }

    /// A required positive id field.
    package static func requiredID(_ body: JSONObject, _ field: String) throws(APIError) -> Int64 {
        guard let value = body[field], !value.isNull else { throw APIError.validation("field '\(field)' is required") }
        guard let id = idValue(value), id > 0 else { throw APIError.validation("field '\(field)' must be a positive integer id") }
        return id
    }
}

/// Where the outcome of a command goes: a gateway, and on it a socket (with its Socket.IO ack id)
/// or a waiting REST request.
package struct ReplyAddress: Sendable, Equatable {
    /// The gateway's id; replies are published on `chat:gw:{gateway}`.
    package var gateway: String
    /// The Engine.IO session id (`sid` of the open packet) of the originating socket: the key of a
    /// gateway's sessions, not the Socket.IO `socketId` clients see. On the wire: `socket`.
    package var engineSession: String?
    /// The Socket.IO ack id the client asked for.
    package var ack: Int64?
    /// The id of a REST request waiting for the outcome.
    package var request: String?

    /// An address; at least `gateway`.
    package init(gateway: String, engineSession: String? = nil, ack: Int64? = nil, request: String? = nil) {
        self.gateway = gateway
        self.engineSession = engineSession
        self.ack = ack
        self.request = request
    }

    /// `{"gateway", "socket"?, "ack"?, "request"?}`.
    package var json: JSONValue {
        var object: JSONObject = ["gateway": .string(gateway)]
        if let engineSession { object["socket"] = .string(engineSession) }
        if let ack { object["ack"] = .int(ack) }
        if let request { object["request"] = .string(request) }
        return .object(object)
    }

    /// Reads the JSON form; nil if it is not an object with a non-empty `gateway` string.
    package init?(json: JSONValue) {
        guard case .object(let object) = json, case .string(let gateway)? = object["gateway"], !gateway.isEmpty else { return nil }
        self.gateway = gateway
        engineSession = object["socket"]?.stringValue
        ack = object["ack"]?.int64Value
        request = object["request"]?.stringValue
    }
}

/// Why a stream entry could not become a `CommandEnvelope`.
package enum ChatCommandError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nobody can be answered (no version, user or readable reply address): the worker logs the
    /// entry, moves it to the dead-letter stream and acknowledges it.
    case malformed(String)
    /// A well-addressed command that breaks a rule: the worker answers `reply` with `error` and
    /// acknowledges it.
    case rejected(APIError, userID: Int64, reply: ReplyAddress?)

    /// The reason, for logs.
    package var description: String {
        switch self {
        case .malformed(let reason): "malformed command: \(reason)"
        case .rejected(let error, let userID, _): "command of user \(userID) rejected: \(error.code): \(error.message)"
        }
    }
}

/// A command as it travels on the stream `chat:cmd`: the command, the acting user, where to answer.
package struct CommandEnvelope: Sendable, Equatable {
    /// The stream format version this code writes and reads.
    package static let version = "1"

    /// What to do.
    package var command: ChatCommand
    /// The acting user, from the verified token.
    package var userID: Int64
    /// Where the outcome goes (nil: nobody waits for it).
    package var reply: ReplyAddress?

    /// An envelope.
    package init(command: ChatCommand, userID: Int64, reply: ReplyAddress? = nil) {
        self.command = command
        self.userID = userID
        self.reply = reply
    }

    /// Field names and values alternating, ready for `XADD chat:cmd * <fields...>`.
    package func streamFields() -> [String] {
        var fields = ["v", Self.version, "type", command.typeName, "user", String(userID), "body", command.body.jsonString]
        if let reply { fields += ["reply", reply.json.jsonString] }
        return fields
    }

    /// Reads a stream entry's fields (as XREADGROUP returns them), validating the command like a
    /// gateway would: workers never trust the stream more than the client.
    package static func decode(fields: [(String, [UInt8])], maxContentLength: Int = ChatLimits.maxContentLength) throws(ChatCommandError) -> CommandEnvelope {
        func field(_ name: String) -> [UInt8]? { fields.first { $0.0 == name }?.1 }

        guard let versionBytes = field("v") else { throw .malformed("no 'v' field") }
        guard versionBytes.elementsEqual(version.utf8) else {
            throw .malformed("unsupported version '\(String(decoding: versionBytes.prefix(16), as: UTF8.self))'")
        }
        guard let userBytes = field("user") else { throw .malformed("no 'user' field") }
        guard !userBytes.isEmpty, userBytes.count <= 19, userBytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let userID = Int64(String(decoding: userBytes, as: UTF8.self)), userID > 0 else {
            throw .malformed("'user' is not a positive decimal id")
        }
        var reply: ReplyAddress?
        if let replyBytes = field("reply") {
            guard let json = try? JSONParser.parse(replyBytes), let address = ReplyAddress(json: json) else {
                throw .malformed("'reply' is not a JSON object with a 'gateway'")
            }
            reply = address
        }
        // From here on the sender can be told what is wrong.
        func reject(_ error: APIError) -> ChatCommandError { .rejected(error, userID: userID, reply: reply) }
        guard let typeBytes = field("type") else { throw reject(APIError.validation("command has no 'type'")) }
        guard let bodyBytes = field("body") else { throw reject(APIError.validation("command has no 'body'")) }
        guard let bodyJSON = try? JSONParser.parse(bodyBytes), case .object(let body) = bodyJSON else {
            throw reject(APIError.validation("command body is not a JSON object"))
        }
        do {
            let command = try ChatCommand.parse(type: String(decoding: typeBytes, as: UTF8.self), body: body, maxContentLength: maxContentLength)
            try command.validate(userID: userID, maxContentLength: maxContentLength)
            return CommandEnvelope(command: command, userID: userID, reply: reply)
        } catch {
            throw reject(error)
        }
    }
}
