/// The isolation domain of the process's event loop.
///
/// Every object that owns a socket, a `redisAsyncContext` or a `PGconn` is `@LoopActor`: the compiler then
/// proves that nothing touches them from another thread. The actor's executor *is* the event loop, so
/// `await` inside `@LoopActor` code resumes on the loop thread between two epoll rounds.
@globalActor
package actor LoopActor {
    package static let shared = LoopActor()

    package nonisolated var unownedExecutor: UnownedSerialExecutor {
        EventLoop.shared.asUnownedSerialExecutor()
    }

    /// Runs `operation` synchronously, asserting that the caller is on the loop thread.
    ///
    /// Used where C callbacks and the loop's own dispatch enter Swift: they are on the loop thread by
    /// construction, which the precondition checks, but the compiler cannot see it.
    package static func assumeIsolated<T>(
        _ operation: @LoopActor () throws -> T,
        file: StaticString = #fileID, line: UInt = #line
    ) rethrows -> T {
        precondition(EventLoop.shared.inLoopThread, "not on the event loop thread", file: file, line: line)
        typealias Nonisolated = () throws -> T
        return try withoutActuallyEscaping(operation) { isolated in
            // Sound because the precondition above proves we are on the thread that runs LoopActor's jobs.
            try unsafeBitCast(isolated, to: Nonisolated.self)()
        }
    }
}

extension Task where Failure == Never {
    /// A task on the loop whose every `await` resumes on the loop directly.
    ///
    /// `Task { @LoopActor in ... }` works too, but Swift resumes a suspended task (a continuation
    /// resumed by the loop when a reply arrives) on its global thread pool first, which then hands
    /// the task back to the loop: a thread wake-up and two queue hops per `await` (seen with
    /// `strace` as pool threads writing the loop's eventfd after every Postgres reply). With the loop
    /// as the task's executor preference (SE-0417) the task is resumed on the loop itself.
    @discardableResult
    package static func onLoop(_ operation: sending @escaping @LoopActor () async -> Success) -> Task<Success, Never> {
        Task(executorPreference: EventLoop.shared) { await operation() }
    }
}

extension Task where Failure == any Error {
    /// A throwing task on the loop whose every `await` resumes on the loop directly (see the
    /// non-throwing `onLoop`).
    @discardableResult
    package static func onLoop(_ operation: sending @escaping @LoopActor () async throws -> Success) -> Task<Success, any Error> {
        Task(executorPreference: EventLoop.shared) { try await operation() }
    }
}
