import Testing
@testable import MessageWorker
@testable import Shared

/// Parsing of the stream commands' replies, and the trim point.
@Suite struct StreamRepliesTests {
    private static func bulk(_ text: String) -> RedisValue { .bulk(Array(text.utf8)) }

    @Test func streamIDsParseAndOrderNumerically() {
        #expect(StreamID("1700000000000-12") == StreamID(milliseconds: 1_700_000_000_000, sequence: 12))
        #expect(StreamID("5") == StreamID(milliseconds: 5, sequence: 0))
        for bad in ["", "-", "a-1", "1-b", "1-2-3", "-1"] { #expect(StreamID(bad) == nil, "\(bad)") }
        #expect(StreamID("9-1")! < StreamID("10-0")!)
        #expect(StreamID("10-2")! < StreamID("10-10")!)
        #expect(StreamID("10-10")!.description == "10-10")
    }

    @Test func readRepliesKeepFieldsAndDeletedEntries() {
        let reply = RedisValue.array([.array([Self.bulk("chat:cmd"), .array([
            .array([Self.bulk("1-0"), .array([Self.bulk("v"), Self.bulk("1"), Self.bulk("type"), Self.bulk("read")])]),
            .array([Self.bulk("2-0"), .null]),
        ])])])
        let entries = StreamEntry.parse(readReply: reply)
        #expect(entries.map(\.id) == ["1-0", "2-0"])
        #expect(entries[0].fields.map(\.0) == ["v", "type"])
        #expect(entries[1].fields.isEmpty)
        #expect(StreamEntry.parse(readReply: .null).isEmpty)
    }

    @Test func autoclaimReplies() throws {
        let reply = RedisValue.array([Self.bulk("0-0"), .array([.array([Self.bulk("3-1"), .array([Self.bulk("v"), Self.bulk("1")])])]),
                                      .array([Self.bulk("1-1")])])
        let page = try #require(AutoclaimReply(reply))
        #expect(page.nextCursor == "0-0")
        #expect(page.entries.map(\.id) == ["3-1"])
        #expect(page.deletedIDs == ["1-1"])
        #expect(AutoclaimReply(.array([Self.bulk("7-0"), .array([])]))?.deletedIDs == [])
        #expect(AutoclaimReply(.null) == nil)
    }

    @Test func pendingDetailsAndSummary() {
        let details = RedisValue.array([
            .array([Self.bulk("1-0"), Self.bulk("w1"), .integer(40_000), .integer(6)]),
            .array([Self.bulk("2-0"), Self.bulk("w2"), .integer(10), .integer(1)]),
        ])
        #expect(PendingDetails.deliveryCounts(details) == ["1-0": 6, "2-0": 1])
        let summary = RedisValue.array([.integer(2), Self.bulk("1-0"), Self.bulk("2-0"), .array([])])
        #expect(PendingDetails.oldestPending(summary) == StreamID("1-0"))
        #expect(PendingDetails.oldestPending(.array([.integer(0), .null, .null, .null])) == nil)
    }

    @Test func groupInfo() {
        let reply = RedisValue.array([.array([
            Self.bulk("name"), Self.bulk("workers"), Self.bulk("consumers"), .integer(2), Self.bulk("pending"), .integer(3),
            Self.bulk("last-delivered-id"), Self.bulk("12-4"), Self.bulk("entries-read"), .integer(20), Self.bulk("lag"), .integer(0),
        ])])
        #expect(GroupInfo.parse(reply) == [GroupInfo(name: "workers", pending: 3, lastDeliveredID: StreamID(milliseconds: 12, sequence: 4), lag: 0)])
    }

    @Test func trimPointKeepsEveryPendingAndUndeliveredEntry() {
        let id = { (text: String) in StreamID(text)! }
        // Nothing pending: everything before the last delivered entry may go.
        #expect(TrimPoint.minimumID([(lastDelivered: id("50-0"), oldestPending: nil)]) == id("50-0"))
        // Pending entries hold the point back.
        #expect(TrimPoint.minimumID([(lastDelivered: id("50-0"), oldestPending: id("20-3"))]) == id("20-3"))
        // A slower group holds it back too.
        #expect(TrimPoint.minimumID([(lastDelivered: id("50-0"), oldestPending: nil), (lastDelivered: id("30-0"), oldestPending: nil)]) == id("30-0"))
        // No group, or a group that has read nothing: no trim.
        #expect(TrimPoint.minimumID([]) == nil)
        #expect(TrimPoint.minimumID([(lastDelivered: .zero, oldestPending: nil)]) == nil)
    }
}
