import Testing
@testable import Gateway

/// Issue 13: the acks of room messages become one delivery pointer move per member and room.
@Suite struct DeliveryAckBookTests {
    @Test func acksOfAMembersDevicesCoalesceToTheHighestSeqPerRoom() {
        var book = DeliveryAckBook(capacity: 8)
        book.remember(messageID: 100, room: 1, seq: 5)
        book.remember(messageID: 101, room: 1, seq: 6)
        book.remember(messageID: 200, room: 2, seq: 9)
        let member: (Int64) -> Bool = { _ in true }
        var ok: Bool
        ok = book.acknowledged(101, by: 7, isMember: member)
        #expect(ok)
        ok = book.acknowledged(100, by: 7, isMember: member)
        #expect(ok, "an older message's ack arriving later")
        ok = book.acknowledged(101, by: 7, isMember: member)
        #expect(ok, "the user's second device")
        ok = book.acknowledged(200, by: 7, isMember: member)
        #expect(ok)
        ok = book.acknowledged(100, by: 8, isMember: member)
        #expect(ok)
        let drained = Dictionary(uniqueKeysWithValues: book.drain().map { ($0.member, $0.seq) })
        let again = book.drain()
        #expect(drained == [DeliveryAckBook.Member(user: 7, room: 1): 6, DeliveryAckBook.Member(user: 7, room: 2): 9,
                            DeliveryAckBook.Member(user: 8, room: 1): 5])
        #expect(again.isEmpty)
    }

    @Test func unknownMessagesAndRoomsTheUserIsNotInDoNotCount() {
        var book = DeliveryAckBook(capacity: 8)
        book.remember(messageID: 100, room: 1, seq: 5)
        var ok = book.acknowledged(999, by: 7, isMember: { _ in true })
        #expect(!ok, "never delivered here")
        ok = book.acknowledged(100, by: 7, isMember: { $0 != 1 })
        #expect(!ok, "not a member of the room (any more)")
        #expect(book.pending.isEmpty)
    }

    @Test func theOldestMessagesAreForgottenPastTheCapacity() {
        var book = DeliveryAckBook(capacity: 3)
        for id in Int64(1)...5 { book.remember(messageID: id, room: 1, seq: id) }
        #expect(book.delivery(of: 1) == nil && book.delivery(of: 2) == nil)
        #expect(book.delivery(of: 3) == .init(room: 1, seq: 3) && book.delivery(of: 5) == .init(room: 1, seq: 5))
        book.remember(messageID: 5, room: 1, seq: 5)  // seen again (two local members' frames): no second slot
        book.remember(messageID: 6, room: 1, seq: 6)
        #expect(book.delivery(of: 3) == nil && book.delivery(of: 4) != nil && book.delivery(of: 6) != nil)
    }
}
