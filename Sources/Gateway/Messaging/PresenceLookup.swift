import Shared

/// Who is online, for `partner.isOnline` in the conversation list. The seam for presence (issue 5):
/// until then every user is reported offline.
@LoopActor
protocol PresenceLookup: AnyObject {
    /// The subset of `userIDs` that has at least one connected socket anywhere.
    func onlineUsers(among userIDs: [Int64]) async -> Set<Int64>
}

/// No presence registry yet: nobody is online.
@LoopActor
final class NoPresence: PresenceLookup {
    func onlineUsers(among userIDs: [Int64]) async -> Set<Int64> { [] }
}
