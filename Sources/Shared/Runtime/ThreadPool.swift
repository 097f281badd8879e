import Glibc
import Synchronization

/// Why work was not run.
package enum ThreadPoolError: Error, Sendable, Equatable {
    /// The queue is full, or the work would wait longer than the pool admits: the caller should
    /// shed load (HTTP 503) and say when to come back (`retryAfter`: when the expected wait will
    /// have fallen under the limit; one second when the queue is merely full).
    case overloaded(retryAfter: Duration)
    /// The pool has been shut down.
    case shutDown
}

/// A few threads for CPU-heavy work (password hashing) that must never run on the event loop.
///
/// `run` suspends the calling task; the result resumes it on its own executor (the loop, for
/// `@LoopActor` callers). The queue is bounded so a flood of logins cannot queue unbounded memory,
/// and with `maxExpectedWait` work is admitted by the wait it would have (the jobs ahead of it
/// times the average job's duration, over the threads) rather than by a fixed depth: a burst
/// that the threads clear in time is queued whole, a longer one is refused with the time to
/// come back.
package final class ThreadPool: Sendable {
    private struct Queue {
        var items: [@Sendable () -> Void] = []
        var head = 0
        var closed = false
        /// Jobs queued or running.
        var inFlight = 0
        /// Average duration of the recent jobs (nanoseconds; exponentially weighted), 0 before the first.
        var averageNanoseconds: Double = 0
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
    /// Longest wait admitted; nil admits up to `maxQueueDepth`.
    private let maxExpectedWait: Duration?
    /// Number of threads.
    package let threadCount: Int

    /// Starts `threads` worker threads; at most `maxQueueDepth` jobs wait at once, and with
    /// `maxExpectedWait` none whose expected wait is longer.
    package init(threads: Int, maxQueueDepth: Int = 1024, maxExpectedWait: Duration? = nil, name: String = "pool") {
        threadCount = max(1, threads)
        self.maxQueueDepth = maxQueueDepth
        self.maxExpectedWait = maxExpectedWait
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
            if let item = next.item {
                let start = MonotonicClock.now()
                item()
                let elapsed = Double(MonotonicClock.now() &- start)
                queue.withLock { q in
                    q.inFlight -= 1
                    q.averageNanoseconds = q.averageNanoseconds == 0 ? elapsed : q.averageNanoseconds * 0.8 + elapsed * 0.2
                }
            } else if next.closed {
                return
            }
        }
    }

    /// How long new work would wait now (the jobs ahead of it over the threads, at the recent
    /// average duration); zero before any job finished.
    package var expectedWait: Duration {
        queue.withLock { q in Self.expectedWait(q, threads: threadCount) }
    }

    private static func expectedWait(_ q: Queue, threads: Int) -> Duration {
        .nanoseconds(Int64(min(Double(Int64.max), q.averageNanoseconds * Double(q.inFlight) / Double(threads))))
    }

    /// Queues `work`; throws when it would wait too long, the queue is full or the pool is shut down.
    package func submit(_ work: @escaping @Sendable () -> Void) throws(ThreadPoolError) {
        let outcome: ThreadPoolError? = queue.withLock { q in
            if q.closed { return .shutDown }
            if q.depth >= maxQueueDepth { return .overloaded(retryAfter: .seconds(1)) }
            if let maxExpectedWait, q.inFlight >= threadCount {
                let wait = Self.expectedWait(q, threads: threadCount)
                if wait > maxExpectedWait { return .overloaded(retryAfter: wait - maxExpectedWait) }
            }
            q.items.append(work)
            q.inFlight += 1
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
