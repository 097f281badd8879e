import Shared

/// What an event written to a socket says of the durable store (for the recovery offset and for
/// de-duplication when a session moves): a message's position or a change's version.
enum DeliveryMark: Sendable, Equatable {
    case message(conversation: Int64, seq: Int64)
    case change(conversation: Int64, version: Int64)

    /// The mark of a published event: `messageSent` / `receiveMessage` carry a message
    /// (`conversationId`, `seq`); `messageEdited`, `messageDeleted`, `reactionAdded`,
    /// `reactionRemoved` a change (`conversationId`, `version`).
    static func of(event: String, data: JSONValue) -> DeliveryMark? {
        guard let conversation = data["conversationId"]?.int64Value else { return nil }
        switch event {
        case SocketEvent.messageSent.name, SocketEvent.receiveMessage.name:
            return data["seq"]?.int64Value.map { .message(conversation: conversation, seq: $0) }
        case SocketEvent.messageEdited.name, SocketEvent.messageDeleted.name, SocketEvent.reactionAdded.name,
             SocketEvent.reactionRemoved.name:
            return data["version"]?.int64Value.map { .change(conversation: conversation, version: $0) }
        default:
            return nil
        }
    }
}
