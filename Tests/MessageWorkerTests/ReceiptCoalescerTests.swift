import Testing
@testable import MessageWorker
@testable import Shared

/// Room receipts at most once per member per room per second (issue 13), with a manual clock.
@Suite struct ReceiptCoalescerTests {
    init() { EventLoop.shared.startInBackground() }

    private static func read(_ room: Int64, _ member: Int64, _ seq: Int64) -> RoomEvent {
        RoomEvent(roomID: room, event: .memberRead, data: ["roomId": .int(room), "userId": .int(member), "lastReadSeq": .int(seq)], except: member)
    }

    @Test @LoopActor func theFirstReceiptGoesAtOnceAndTheNewestOfTheWindowAtItsEnd() {
        let clock = ManualClock()
        let coalescer = ReceiptCoalescer(window: .seconds(1), clock: clock)
        var later: [RoomEvent] = []
        coalescer.publish = { later += $0 }
        #expect(coalescer.admit([Self.read(1, 7, 1)]) == [Self.read(1, 7, 1)])
        // Within the second: held, the newest replacing the older; other members and rooms pass.
        #expect(coalescer.admit([Self.read(1, 7, 2), Self.read(1, 8, 2), Self.read(2, 7, 5)]) == [Self.read(1, 8, 2), Self.read(2, 7, 5)])
        #expect(coalescer.admit([Self.read(1, 7, 4)]).isEmpty)
        #expect(coalescer.heldCount == 1)
        clock.advance(by: .milliseconds(600))
        #expect(later.isEmpty)
        clock.advance(by: .milliseconds(500))
        #expect(later == [Self.read(1, 7, 4)])
        #expect(coalescer.heldCount == 0)
        // Other events are never held.
        let message = RoomEvent(roomID: 1, event: .receiveMessage, data: ["id": 1], except: 7)
        #expect(coalescer.admit([message, message]) == [message, message])
    }

    @Test @LoopActor func aQuietMemberGetsItsNextReceiptAtOnce() {
        let clock = ManualClock()
        let coalescer = ReceiptCoalescer(window: .seconds(1), clock: clock)
        #expect(coalescer.admit([Self.read(3, 9, 1)]).count == 1)
        clock.advance(by: .seconds(5))
        #expect(coalescer.admit([Self.read(3, 9, 2)]) == [Self.read(3, 9, 2)])
    }
}
