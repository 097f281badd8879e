import JSON

/// How far a read moved one member's pointer in one conversation, and the payloads that say so,
/// encoded in one place: the read commands' results and the `allMessagesRead` /
/// `messagesReadByReceiver` events (member order as clients have always seen it).
package struct ReadProgress: Sendable, Equatable {
    /// The conversation, or nil when the reader has none with that user.
    package var conversationID: Int64?
    /// Messages that became read.
    package var count: Int64
    /// The reader's pointer afterwards.
    package var lastReadSeq: Int64

    package init(conversationID: Int64?, count: Int64, lastReadSeq: Int64) {
        self.conversationID = conversationID
        self.count = count
        self.lastReadSeq = lastReadSeq
    }

    /// Nothing read: no conversation with that user.
    package static let none = ReadProgress(conversationID: nil, count: 0, lastReadSeq: 0)

    private var conversation: JSONValue { conversationID.map { .int($0) } ?? .null }

    /// `markAllAsRead`'s result: `{count, lastReadSeq, conversationId}`.
    package var readAllResult: JSONValue {
        ["count": .int(count), "lastReadSeq": .int(lastReadSeq), "conversationId": conversation]
    }

    /// One conversation of `readMany`'s result: `{conversationId, count, lastReadSeq}`.
    package var conversationEntry: JSONValue {
        ["conversationId": conversation, "count": .int(count), "lastReadSeq": .int(lastReadSeq)]
    }

    /// `allMessagesRead` to the reader: `{senderId, count, conversationId, lastReadSeq}`.
    package func allMessagesRead(senderID: Int64) -> JSONValue {
        ["senderId": .int(senderID), "count": .int(count), "conversationId": conversation, "lastReadSeq": .int(lastReadSeq)]
    }

    /// `messagesReadByReceiver` to the sender: `{receiverId, count, conversationId, lastReadSeq}`.
    package func messagesReadByReceiver(receiverID: Int64) -> JSONValue {
        ["receiverId": .int(receiverID), "count": .int(count), "conversationId": conversation, "lastReadSeq": .int(lastReadSeq)]
    }
}
