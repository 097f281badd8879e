import Testing
@testable import Gateway
@testable import Shared

/// Issue 14: what a search may ask, and that what it asks travels as parameters only.
@Suite struct MessageSearchTests {
    private func refusal(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return (error as? APIError)?.code.name
        }
    }

    @Test func likePatternsMatchTheirCharactersLiterally() {
        #expect(MessageSearch.likePattern("50%") == #"%50\%%"#)
        #expect(MessageSearch.likePattern("a_b") == #"%a\_b%"#)
        #expect(MessageSearch.likePattern(#"C:\temp"#) == #"%C:\\temp%"#)
        #expect(MessageSearch.likePattern("plain") == "%plain%")
    }

    @Test func queriesAreTrimmedBoundedAndCheckedFieldByField() throws {
        let search = try MessageSearch(q: "  hello  ", mode: nil, conversationID: nil, before: nil, limit: nil)
        #expect(search == MessageSearch(text: "hello"))
        #expect(try MessageSearch(q: String(repeating: "é", count: 200), mode: "word", conversationID: "12", before: "99", limit: "100")
                == MessageSearch(text: String(repeating: "é", count: 200), mode: .word, conversationID: 12, before: 99, limit: 100))
        for (q, mode, conversation, before, limit) in [
            (nil, nil, nil, nil, nil), ("", nil, nil, nil, nil), ("   ", nil, nil, nil, nil), (String(repeating: "x", count: 201), nil, nil, nil, nil),
            ("a\u{0}b", nil, nil, nil, nil), ("x", "regex", nil, nil, nil), ("x", nil, "abc", nil, nil), ("x", nil, "0", nil, nil),
            ("x", nil, nil, "-1", nil), ("x", nil, nil, nil, "0"), ("x", nil, nil, nil, "101"), ("x", nil, nil, nil, "ten"),
        ] as [(String?, String?, String?, String?, String?)] {
            #expect(refusal { _ = try MessageSearch(q: q, mode: mode, conversationID: conversation, before: before, limit: limit) }
                    == "validation_failed", "\(String(describing: q)) \(String(describing: mode)) \(String(describing: limit))")
        }
        #expect(try MessageSearch(object: ["q": "hi", "conversationId": 5, "limit": 3]) == MessageSearch(text: "hi", conversationID: 5, limit: 3))
        #expect(refusal { _ = try MessageSearch(object: ["q": 5]) } == "validation_failed")
    }

    @Test func theQueryCarriesNothingTheCallerSentInItsText() {
        let hostile = "'; DROP TABLE messages; --"
        let (sql, parameters) = MessageSearch(text: hostile, conversationID: 7, before: 100, limit: 20).query(userID: 3)
        #expect(!sql.contains("DROP") && !sql.contains(hostile))
        #expect(parameters == [.int64(3), .string("%" + hostile + "%"), .int64(7), .int64(100), .int(21)])
        #expect(sql.contains("m.conversation_id = $3") && sql.contains("m.id < $4") && sql.contains("LIMIT $5"))
        let words = MessageSearch(text: "cat sat", mode: .word).query(userID: 3)
        #expect(words.parameters == [.int64(3), .string("cat sat"), .int(21)])
        #expect(words.sql.contains("plainto_tsquery('simple', $2)") && words.sql.contains("m.deleted_at IS NULL"))
    }
}
