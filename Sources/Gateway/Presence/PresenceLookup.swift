import Shared

/// Who is online, for `isOnline` in conversation lists and user lookups (`PresenceRegistry`).
@LoopActor
protocol PresenceLookup: AnyObject {
    /// The subset of `userIDs` that has at least one connected socket anywhere in the cluster.
    func onlineUsers(among userIDs: [Int64]) async -> Set<Int64>
}
