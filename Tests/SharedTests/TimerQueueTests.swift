import Testing
@testable import Shared

@Suite struct TimerQueueTests {
    @Test func firesInDeadlineOrderAndSkipsCancelled() {
        var queue = TimerQueue<Int>()
        let a = queue.schedule(at: 30, 3)
        _ = queue.schedule(at: 10, 1)
        _ = queue.schedule(at: 20, 2)
        let first = queue.cancel(a)
        let second = queue.cancel(a)
        #expect(first && !second)
        let next = queue.nextDeadline()
        #expect(next == 10)
        var fired: [Int] = []
        while let payload = queue.popExpired(now: 100) { fired.append(payload) }
        #expect(fired == [1, 2])
        let remaining = queue.nextDeadline()
        #expect(queue.count == 0 && remaining == nil)
    }

    @Test func doesNotFireBeforeDeadline() {
        var queue = TimerQueue<Int>()
        _ = queue.schedule(at: 50, 1)
        let early = queue.popExpired(now: 49)
        let due = queue.popExpired(now: 50)
        #expect(early == nil && due == 1)
    }

    @Test func massCancellationCompactsAndKeepsOrder() {
        var queue = TimerQueue<Int>()
        var ids: [UInt64] = []
        for index in 0..<1000 { ids.append(queue.schedule(at: UInt64(1000 - index), index)) }
        for (offset, id) in ids.enumerated() where offset % 10 != 0 { queue.cancel(id) }
        #expect(queue.count == 100)
        var last: UInt64 = 0
        var fired = 0
        while let payload = queue.popExpired(now: .max) {
            let deadline = UInt64(1000 - payload)
            #expect(deadline >= last)
            last = deadline
            fired += 1
        }
        #expect(fired == 100)
    }
}
