/// A min-heap of deadlines: the loop's only timer mechanism (no timer fd per connection).
///
/// Cancelled timers are removed from `pending` at once and skipped lazily in the heap; the heap is
/// rebuilt when cancelled entries outnumber live ones, so memory stays proportional to live timers.
package struct TimerQueue<Payload> {
    private struct Entry {
        var deadline: UInt64
        var id: UInt64
    }

    private var heap: [Entry] = []
    private var pending: [UInt64: Payload] = [:]
    private var nextID: UInt64 = 1

    package init() {}

    /// Number of live (not fired, not cancelled) timers.
    package var count: Int { pending.count }

    /// Adds a timer and returns its id.
    package mutating func schedule(at deadline: UInt64, _ payload: Payload) -> UInt64 {
        let id = nextID
        nextID &+= 1
        pending[id] = payload
        heap.append(Entry(deadline: deadline, id: id))
        siftUp(heap.count - 1)
        return id
    }

    /// Cancels a timer; returns whether it was still live.
    @discardableResult
    package mutating func cancel(_ id: UInt64) -> Bool {
        guard pending.removeValue(forKey: id) != nil else { return false }
        if heap.count > 64 && heap.count > 2 * pending.count { compact() }
        return true
    }

    /// The earliest live deadline, if any.
    package mutating func nextDeadline() -> UInt64? {
        while let top = heap.first {
            if pending[top.id] != nil { return top.deadline }
            popTop()
        }
        return nil
    }

    /// Removes and returns the payload of the earliest live timer whose deadline is `<= now`.
    package mutating func popExpired(now: UInt64) -> Payload? {
        while let top = heap.first, top.deadline <= now {
            popTop()
            if let payload = pending.removeValue(forKey: top.id) { return payload }
        }
        return nil
    }

    private mutating func popTop() {
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
    }

    private mutating func compact() {
        heap.removeAll { pending[$0.id] == nil }
        var index = heap.count / 2
        while index > 0 {
            index -= 1
            siftDown(index)
        }
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        let x = heap[a], y = heap[b]
        return x.deadline < y.deadline || (x.deadline == y.deadline && x.id < y.id)
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(child, parent) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var smallest = left
            if left + 1 < heap.count && less(left + 1, left) { smallest = left + 1 }
            guard less(smallest, parent) else { return }
            heap.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
