import Glibc
import Synchronization

/// Why work was not run.
package enum ThreadPoolError: Error, Sendable, Equatable {
    /// The queue is full: the caller should shed load (HTTP 503) instead of queueing without bound.
    case overloaded
    /// The pool has been shut down.
    case shutDown
}

/// A few threads for CPU-heavy work (password hashing) that must never run on the event loop.
///
/// `run` suspends the calling task; the result resumes it on its own executor (the loop, for
/// `@LoopActor` callers). The queue is bounded so a flood of logins cannot queue unbounded memory.
package final class ThreadPool: Sendable {
    private struct Queue {
        var items: [@Sendable () -> Void] = []
        var head = 0
        var closed = false
        var depth: Int { items.count - head }

        mutating func pop() -> (@Sendable () -> Void)? {
            guard head < items.count else { return nil }
            let item = items[head]
            head += 1
            if head > 64 && head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            return item
        }
    }

    private let queue = Mutex(Queue())
    /// Counts queued jobs. `sem_t` is itself thread-safe; the pointer never changes after init.
    private nonisolated(unsafe) let semaphore: UnsafeMutablePointer<sem_t>
    private let maxQueueDepth: Int
    /// Number of threads.
    package let threadCount: Int

    /// Starts `threads` worker threads; at most `maxQueueDepth` jobs wait at once.
    package init(threads: Int, maxQueueDepth: Int = 1024, name: String = "pool") {
        threadCount = max(1, threads)
        self.maxQueueDepth = maxQueueDepth
        semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
        sem_init(semaphore, 0, 0)
        for index in 0..<threadCount {
            NativeThread.spawn(name: "\(name)-\(index)") { [self] in workerLoop() }
        }
    }

    // The pool lives as long as the process in practice; its semaphore is never destroyed while
    // threads may wait on it, so no deinit frees it.

    private func workerLoop() {
        while true {
            while sem_wait(semaphore) != 0 {}
            let next = queue.withLock { q -> (item: (@Sendable () -> Void)?, closed: Bool) in (q.pop(), q.closed) }
            if let item = next.item { item() } else if next.closed { return }
        }
    }

    /// Queues `work`; throws when the queue is full or the pool is shut down.
    package func submit(_ work: @escaping @Sendable () -> Void) throws(ThreadPoolError) {
        let outcome: ThreadPoolError? = queue.withLock { q in
            if q.closed { return .shutDown }
            if q.depth >= maxQueueDepth { return .overloaded }
            q.items.append(work)
            return nil
        }
        if let outcome { throw outcome }
        sem_post(semaphore)
    }

    /// Runs `work` on a pool thread and returns its result to the awaiting task.
    package func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws(ThreadPoolError) -> T {
        let result: Result<T, ThreadPoolError> = await withCheckedContinuation { continuation in
            do throws(ThreadPoolError) {
                try submit { continuation.resume(returning: .success(work())) }
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
        return try result.get()
    }

    /// Stops taking work; threads exit after the queue drains.
    package func shutdown() {
        queue.withLock { $0.closed = true }
        for _ in 0..<threadCount { sem_post(semaphore) }
    }
}
