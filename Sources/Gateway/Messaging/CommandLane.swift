import Shared

/// Keeps one socket's commands on the stream in the order the socket sent them. A command that
/// first spends the user's API budget (`messageRead`, `markAllAsRead`: a Redis round trip) holds
/// back the commands sent after it until it is appended or refused; while none is waiting, a
/// command is appended at once (the path of every `sendMessage` in normal traffic).
///
/// Appending starts a task on the loop's serial executor, which runs tasks in the order they were
/// created, so commands leave for Redis in lane order.
@LoopActor
final class CommandLane {
    private var tail: Task<Void, Never>?
    /// Commands in the lane that have not been appended or refused yet.
    private var waiting = 0

    /// Appends through `append` in order; with `admit`, only once it returned true.
    func submit(admit: (@LoopActor () async -> Bool)?, append: @escaping @LoopActor () -> Void) {
        if waiting == 0 && admit == nil { return append() }
        waiting += 1
        let previous = tail
        tail = Task.onLoop {
            await previous?.value
            if let admit, !(await admit()) {
                self.waiting -= 1
                return
            }
            append()
            self.waiting -= 1
        }
    }
}
