/// Where a command goes: the command stream is split into `count` shards keyed by conversation, so
/// one conversation's commands always land on one shard, which exactly one worker processes at a
/// time (issue 12). A direct conversation is keyed by its user pair, a room by its id.
///
/// Shard streams are named `<prefix>:{s<n>}`: the braces are a Redis Cluster hash tag, so each
/// shard's stream (and anything else keyed with the same tag) can live on its own node.
///
/// The key → shard function is part of the protocol between gateways and workers: it must never
/// change for a given `count` (a mixer of fixed constants, not Swift's per-process `Hasher`).
package struct CommandShards: Sendable, Equatable {
    /// Number of shards (1...`maxCount`).
    package let count: Int
    /// Stream name prefix (`chat:cmd` by default).
    package let prefix: String

    /// Most shards a deployment may configure.
    package static let maxCount = 4096
    /// Shards when not configured: enough for 64 workers, cheap for one (an idle shard costs a
    /// stream key and a lease renewal every few seconds).
    package static let defaultCount = 64

    package init(count: Int, prefix: String = ChatChannels.commandStream) {
        precondition((1...Self.maxCount).contains(count), "shard count \(count) outside 1...\(Self.maxCount)")
        self.count = count
        self.prefix = prefix
    }

    /// The shard of the direct conversation between two users (either order).
    package func shard(directBetween first: Int64, _ second: Int64) -> Int {
        let low = UInt64(bitPattern: min(first, second))
        let high = UInt64(bitPattern: max(first, second))
        return index(Self.mix(Self.mix(low ^ 0x6469_7265_6374_0000) ^ high))
    }

    /// The shard of a room.
    package func shard(room id: Int64) -> Int {
        index(Self.mix(UInt64(bitPattern: id) ^ 0x726F_6F6D_0000_0000))
    }

    /// The shard of `userID`'s `command`. A send and a read-all name their conversation (the user
    /// pair), so a device's sends and read-alls in a conversation stay in one shard, in order. A
    /// read by message ids names no conversation at the gateway; it goes to the reader's own shard
    /// (the pair of the reader with itself). That is safe: a device reads only messages it has
    /// seen, which are stored already, and read pointers only move forward. A room operation goes
    /// to its room's shard, in order with the room's messages; creating a room, which has no id
    /// yet, goes to the creator's own shard. An edit or a delete names a message only, like a read:
    /// the actor's own shard (a device changes only messages it holds, which are stored; every edit
    /// of a message comes from its sender, so one shard orders them; the conversation's row lock
    /// orders an admin's delete with them).
    package func shard(of command: ChatCommand, userID: Int64) -> Int {
        switch command {
        case .send(let message):
            switch message.target {
            case .user(let receiver): shard(directBetween: userID, receiver)
            case .room(let room): shard(room: room)
            }
        case .readAll(let senderID): shard(directBetween: userID, senderID)
        case .read, .readMany, .edit, .delete, .react: shard(directBetween: userID, userID)
        case .room(let command): command.roomID.map { shard(room: $0) } ?? shard(directBetween: userID, userID)
        case .delivered(let room, _): shard(room: room)
        }
    }

    /// The stream of `shard`: `<prefix>:{s<shard>}`.
    package func stream(_ shard: Int) -> String { "\(prefix):{s\(shard)}" }

    /// The lease of `shard`: `<prefix>:lease:{s<shard>}`, with the stream's hash tag (same cluster node).
    package func lease(_ shard: Int) -> String { "\(prefix):lease:{s\(shard)}" }

    /// The roster of live workers, `<prefix>:workers`: a sorted set of worker ids scored by when
    /// their liveness lapses (Redis server time, milliseconds).
    package var rosterKey: String { "\(prefix):workers" }

    /// Where the workers record their shard count, `<prefix>:shards`, so gateways can check theirs.
    package var countKey: String { "\(prefix):shards" }

    /// Every shard's stream, in shard order.
    package var streams: [String] { (0..<count).map(stream) }

    private func index(_ hash: UInt64) -> Int { Int(hash % UInt64(count)) }

    /// SplitMix64's finalizer: a fixed, well-spread 64-bit mix (stable across processes and versions).
    package static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
