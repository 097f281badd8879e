import Shared

/// A stream entry id, `<milliseconds>-<sequence>`, ordered as Redis orders them.
struct StreamID: Sendable, Hashable, Comparable, CustomStringConvertible {
    let milliseconds: UInt64
    let sequence: UInt64

    static let zero = StreamID(milliseconds: 0, sequence: 0)

    init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Parses `123-4` (or `123`, sequence 0); nil for anything else.
    init?(_ text: String) {
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = parts.first, let milliseconds = UInt64(first) else { return nil }
        self.milliseconds = milliseconds
        if parts.count == 2 {
            guard let sequence = UInt64(parts[1]) else { return nil }
            self.sequence = sequence
        } else {
            sequence = 0
        }
    }

    static func < (lhs: StreamID, rhs: StreamID) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }

    var description: String { "\(milliseconds)-\(sequence)" }
}

/// One entry of the command stream.
struct StreamEntry: Sendable, Equatable {
    let id: String
    let fields: [(String, [UInt8])]

    static func == (lhs: StreamEntry, rhs: StreamEntry) -> Bool {
        lhs.id == rhs.id && lhs.fields.elementsEqual(rhs.fields) { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    /// Parses an `XREADGROUP` reply: `[[stream, [[id, [field, value, ...]], ...]]]`, or null on timeout.
    static func parse(readReply reply: RedisValue) -> [StreamEntry] {
        guard case .array(let streams) = reply else { return [] }
        var entries: [StreamEntry] = []
        for stream in streams {
            guard case .array(let pair) = stream, pair.count == 2 else { continue }
            entries += parse(entries: pair[1])
        }
        return entries
    }

    /// Parses a list of entries as `XRANGE`, `XCLAIM` and `XAUTOCLAIM` return them. An entry that
    /// was deleted from the stream but is still pending comes back with null fields: it is kept,
    /// with no fields (it then fails to decode and goes to the dead-letter stream).
    static func parse(entries reply: RedisValue) -> [StreamEntry] {
        guard case .array(let items) = reply else { return [] }
        var entries: [StreamEntry] = []
        entries.reserveCapacity(items.count)
        for item in items {
            guard case .array(let parts) = item, parts.count == 2, let id = parts[0].string else { continue }
            var fields: [(String, [UInt8])] = []
            if case .array(let flat) = parts[1] {
                var index = 0
                while index + 1 < flat.count {
                    if let name = flat[index].string, let value = flat[index + 1].bytes { fields.append((name, value)) }
                    index += 2
                }
            }
            entries.append(StreamEntry(id: id, fields: fields))
        }
        return entries
    }
}

/// The reply of `XAUTOCLAIM key group consumer min-idle start COUNT n` (Redis 7: three elements).
struct AutoclaimReply: Sendable, Equatable {
    /// Where the next call starts; `0-0` once the whole pending list was scanned.
    let nextCursor: String
    let entries: [StreamEntry]
    /// Pending entries no longer in the stream (Redis dropped them from the pending list).
    let deletedIDs: [String]

    init?(_ reply: RedisValue) {
        guard case .array(let parts) = reply, parts.count >= 2, let cursor = parts[0].string else { return nil }
        nextCursor = cursor
        entries = StreamEntry.parse(entries: parts[1])
        if parts.count >= 3, case .array(let deleted) = parts[2] {
            deletedIDs = deleted.compactMap(\.string)
        } else {
            deletedIDs = []
        }
    }
}

/// Delivery counts from `XPENDING key group start end count` replies: `[[id, consumer, idle, count], ...]`.
enum PendingDetails {
    static func deliveryCounts(_ reply: RedisValue) -> [String: Int] {
        guard case .array(let rows) = reply else { return [:] }
        var counts: [String: Int] = [:]
        for row in rows {
            guard case .array(let fields) = row, fields.count == 4, let id = fields[0].string, let count = fields[3].int else { continue }
            counts[id] = Int(count)
        }
        return counts
    }

    /// The oldest pending id from the summary form `XPENDING key group`: `[count, min, max, consumers]`.
    static func oldestPending(_ reply: RedisValue) -> StreamID? {
        guard case .array(let fields) = reply, fields.count >= 2, let count = fields[0].int, count > 0,
              let text = fields[1].string else { return nil }
        return StreamID(text)
    }
}

/// One consumer group, from `XINFO GROUPS key` (flat name/value arrays in RESP2).
struct GroupInfo: Sendable, Equatable {
    let name: String
    let pending: Int
    let lastDeliveredID: StreamID
    /// Entries not yet delivered to the group (Redis 7; nil when Redis cannot tell).
    var lag: Int? = nil

    static func parse(_ reply: RedisValue) -> [GroupInfo] {
        guard case .array(let groups) = reply else { return [] }
        return groups.compactMap { group in
            guard case .array(let flat) = group else { return nil }
            var values: [String: RedisValue] = [:]
            var index = 0
            while index + 1 < flat.count {
                if let key = flat[index].string { values[key] = flat[index + 1] }
                index += 2
            }
            guard let name = values["name"]?.string, let pending = values["pending"]?.int,
                  let lastText = values["last-delivered-id"]?.string, let last = StreamID(lastText) else { return nil }
            return GroupInfo(name: name, pending: Int(pending), lastDeliveredID: last, lag: values["lag"]?.int.map { Int($0) })
        }
    }
}

/// Where the stream can be cut without losing work: below every group's oldest pending entry and
/// its last delivered entry (entries after it were never read by that group).
enum TrimPoint {
    /// `XTRIM key MINID <id>` keeps ids >= id. Nil when there is nothing to trim (no group, or a
    /// group has not read anything).
    static func minimumID(_ groups: [(lastDelivered: StreamID, oldestPending: StreamID?)]) -> StreamID? {
        guard !groups.isEmpty else { return nil }
        var point: StreamID?
        for group in groups {
            let keep = min(group.lastDelivered, group.oldestPending ?? group.lastDelivered)
            point = point.map { min($0, keep) } ?? keep
        }
        guard let point, point > .zero else { return nil }
        return point
    }
}
