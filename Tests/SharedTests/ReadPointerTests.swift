import Testing
@testable import Shared

@Suite struct ReadPointerTests {
    @Test func movesForwardAndCountsWhatBecameRead() {
        var pointer = ReadPointer(lastReadSeq: 3)
        #expect(pointer.advance(to: 7) == 4)
        #expect(pointer.lastReadSeq == 7)
        #expect(pointer.hasRead(seq: 7))
        #expect(!pointer.hasRead(seq: 8))
    }

    @Test func neverMovesBackwards() {
        var pointer = ReadPointer(lastReadSeq: 10)
        #expect(pointer.advance(to: 4) == 0)
        #expect(pointer.advance(to: 10) == 0)
        #expect(pointer.lastReadSeq == 10)
        #expect(ReadPointer(lastReadSeq: -5).lastReadSeq == 0)
    }

    @Test func unreadIsLastSeqMinusPointerAndNeverNegative() {
        #expect(Unread.inConversation(lastSeq: 12, lastReadSeq: 4) == 8)
        #expect(Unread.inConversation(lastSeq: 4, lastReadSeq: 4) == 0)
        #expect(Unread.inConversation(lastSeq: 3, lastReadSeq: 5) == 0)
        #expect(ReadPointer(lastReadSeq: 2).unread(lastSeq: 9) == 7)
    }

    @Test func totalsSumOverMemberships() {
        #expect(Unread.total([(lastSeq: 10, lastReadSeq: 7), (lastSeq: 5, lastReadSeq: 5), (lastSeq: 2, lastReadSeq: 9), (lastSeq: 4, lastReadSeq: 0)]) == 7)
        #expect(Unread.total([(lastSeq: Int64, lastReadSeq: Int64)]()) == 0)
    }
}
