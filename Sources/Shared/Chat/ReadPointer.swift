import Runtime

/// A member's read position in one conversation (`conversation_members.last_read_seq`).
///
/// "Message N is read by X" means `X.lastReadSeq >= N.seq`; marking N read marks everything before
/// it, and the pointer never moves backwards (the read-state model of Slack, Matrix and Telegram:
/// one pointer per member, no flag per message per reader).
package struct ReadPointer: Sendable, Equatable {
    /// The highest seq the member has read (0: nothing).
    package private(set) var lastReadSeq: Int64

    /// A pointer at `lastReadSeq`.
    package init(lastReadSeq: Int64 = 0) {
        self.lastReadSeq = max(0, lastReadSeq)
    }

    /// Moves to `seq` if that is ahead and returns how many messages became read (0 if it was not ahead).
    @discardableResult
    package mutating func advance(to seq: Int64) -> Int64 {
        guard seq > lastReadSeq else { return 0 }
        let moved = seq - lastReadSeq
        lastReadSeq = seq
        return moved
    }

    /// Whether the message with `seq` counts as read.
    package func hasRead(seq: Int64) -> Bool { seq <= lastReadSeq }

    /// Unread messages in a conversation whose newest message is `lastSeq`.
    package func unread(lastSeq: Int64) -> Int64 { Unread.inConversation(lastSeq: lastSeq, lastReadSeq: lastReadSeq) }
}

/// Unread arithmetic: O(1) per conversation, no counting of rows.
package enum Unread {
    /// `last_seq − last_read_seq`, never negative (a pointer ahead of the conversation reads as 0).
    package static func inConversation(lastSeq: Int64, lastReadSeq: Int64) -> Int64 {
        // Saturating: both come from Postgres, and a corrupt row must not trap the process.
        max(0, lastSeq.subtractingSaturated(lastReadSeq))
    }

    /// The sum over a user's memberships of `(lastSeq, lastReadSeq)`.
    package static func total(_ memberships: some Sequence<(lastSeq: Int64, lastReadSeq: Int64)>) -> Int64 {
        memberships.reduce(0) { $0.addingSaturated(inConversation(lastSeq: $1.lastSeq, lastReadSeq: $1.lastReadSeq)) }
    }

    /// The SQL expression for one membership's unread count, with `c` = conversations and
    /// `cm` = conversation_members (sum it for totals).
    package static let sqlExpression = "GREATEST(c.last_seq - cm.last_read_seq, 0)"
}
