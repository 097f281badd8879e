import Testing
@testable import Gateway
@testable import Shared

@Suite struct SyncCursorTests {
    private func rejects(_ body: () throws -> Void) -> Bool {
        do {
            try body()
            return false
        } catch {
            return (error as? APIError)?.code.name == "validation_failed"
        }
    }

    @Test func queryForm() throws {
        #expect(try SyncCursor(query: nil).seqs.isEmpty)
        #expect(try SyncCursor(query: "").seqs.isEmpty)
        #expect(try SyncCursor(query: "12:40").seqs == [12: 40])
        #expect(try SyncCursor(query: "12:40,13:0").seqs == [12: 40, 13: 0])
        for bad in ["12", "12:", ":4", "12:4,", "a:1", "1:b", "0:4", "12:-1", "12:4:5:6", "12:4:", "12:4:-1", "12:4,,13:1", "12:1,12:2", " 12:4"] {
            #expect(rejects { _ = try SyncCursor(query: bad) }, "\(bad)")
        }
    }

    @Test func objectForm() throws {
        #expect(try SyncCursor(object: nil).seqs.isEmpty)
        #expect(try SyncCursor(object: .null).seqs.isEmpty)
        #expect(try SyncCursor(object: [:]).seqs.isEmpty)
        #expect(try SyncCursor(object: ["12": 40, "13": 0]).seqs == [12: 40, 13: 0])
        for bad: JSONValue in ["abc", [1], ["x": 1], ["12": -1], ["12": "4"], ["0": 1], ["12": 1.5]] {
            #expect(rejects { _ = try SyncCursor(object: bad) }, "\(bad.jsonString)")
        }
    }

    /// Issue 14: the change version a device saw, optional in both forms (absent counts as 0).
    @Test func versionsRideAlongWithSeqs() throws {
        let query = try SyncCursor(query: "12:40:3,13:0")
        #expect(query.seqs == [12: 40, 13: 0])
        #expect(query.versions == [12: 3])
        let object = try SyncCursor(object: ["12": ["seq": 40, "version": 3], "13": 0, "14": ["seq": 2]])
        #expect(object.seqs == [12: 40, 13: 0, 14: 2])
        #expect(object.versions == [12: 3])
        for bad: JSONValue in [["12": ["version": 3]], ["12": ["seq": 1, "version": -1]], ["12": ["seq": 1, "other": 2]],
                               ["12": ["seq": 1, "version": "3"]]] {
            #expect(rejects { _ = try SyncCursor(object: bad) }, "\(bad.jsonString)")
        }
    }

    @Test func aCursorNamesAtMostTheLimit() throws {
        let many = (1...SyncCursor.maxConversations).map { "\($0):1" }.joined(separator: ",")
        #expect(try SyncCursor(query: many).seqs.count == SyncCursor.maxConversations)
        #expect(rejects { _ = try SyncCursor(query: many + ",99999:1") })
    }

    @Test func historyPages() throws {
        let page = try HistoryPage(before: nil, after: nil, limit: nil, defaultLimit: 50, maxLimit: 200)
        #expect(page == HistoryPage(limit: 50) && !page.fromOldest)
        #expect(try HistoryPage(before: "101", after: nil, limit: "10", defaultLimit: 50, maxLimit: 200)
                == HistoryPage(before: 101, limit: 10))
        let forward = try HistoryPage(before: nil, after: "10", limit: "3", defaultLimit: 50, maxLimit: 200)
        #expect(forward == HistoryPage(after: 10, limit: 3) && forward.fromOldest)
        #expect(try HistoryPage(before: "20", after: "10", limit: "200", defaultLimit: 50, maxLimit: 200).limit == 200)
        let bad: [(String?, String?, String?)] = [
            (nil, nil, "0"), (nil, nil, "-1"), (nil, nil, "x"), (nil, nil, "201"), (nil, nil, ""),
            ("x", nil, nil), (nil, "-3", nil), ("-1", nil, nil), ("10", "10", nil), ("5", "10", nil),
        ]
        for (before, after, limit) in bad {
            #expect(rejects { _ = try HistoryPage(before: before, after: after, limit: limit, defaultLimit: 50, maxLimit: 200) },
                    "before=\(before ?? "-") after=\(after ?? "-") limit=\(limit ?? "-")")
        }
    }

    @Test func directKeysOrderTheIDs() {
        #expect(ConversationReader.directKey(9, 3) == "3:9")
        #expect(ConversationReader.directKey(3, 9) == "3:9")
    }
}

/// Issue 14: the cursor of lists by activity (conversations, rooms) names the database's own
/// precision, so the entry it names cannot come back on the next page.
@Suite struct ActivityCursorTests {
    @Test func cursorsRoundTripAndRefuseAnythingElse() throws {
        let cursor = ActivityCursor(activityMicroseconds: 1_764_950_400_123_456, conversationID: 42)
        #expect(cursor.text == "1764950400123456_42")
        #expect(try ActivityCursor(text: cursor.text) == cursor)
        for bad in ["", "1_", "_1", "1_0", "-1_2", "1_2_3", "abc_1", "1_abc", String(repeating: "9", count: 19) + "_1", "1_" + String(repeating: "9", count: 20)] {
            #expect(throws: APIError.self, "\(bad)") { try ActivityCursor(text: bad) }
        }
    }
}
