import Shared

/// Who is online, for `isOnline` in conversation lists and user lookups (`PresenceRegistry`).
@LoopActor
protocol PresenceLookup: AnyObject {
    /// The subset of `userIDs` that has at least one connected socket anywhere in the cluster.
    func onlineUsers(among userIDs: [Int64]) async -> Set<Int64>
}

extension PresenceLookup {
    /// `users` that are online, in their order.
    func online(_ users: [PublicUser]) async -> [PublicUser] {
        let online = await onlineUsers(among: users.map(\.id))
        return users.filter { online.contains($0.id) }
    }

    /// The user's contacts who are online now (none for an unknown user).
    func onlineContacts(of userID: Int64, in directory: ContactDirectory) async throws -> [PublicUser] {
        await online(try await directory.contacts(of: userID)?.contacts ?? [])
    }
}
