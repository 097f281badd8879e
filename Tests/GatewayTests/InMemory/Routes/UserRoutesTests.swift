import Testing
@testable import Gateway
@testable import Shared

/// `UserRoutes` over the in-memory gateway: one user by id (never another's email; presence for
/// contacts only), the username search with its pages and limits, and the online contacts.
@Suite struct UserRoutesTests {
    init() { EventLoop.shared.startInBackground() }

    /// A username prefix no other test or run uses.
    private static func uniquePrefix() -> String { "s" + String(UInt32.random(in: 0...UInt32.max), radix: 36) + "x" }

    // MARK: GET /api/users/:id

    @Test @LoopActor func anotherUserIsShownWithoutEmailAndAStrangerWithoutPresence() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let caller = try await gateway.account("caller")
        let stranger = try await gateway.account("stranger")
        let strangerSocket = try await gateway.connectedSocket(gateway.withSocketToken(stranger))
        try await until("the stranger is online") {
            await gateway.services.presence.registry.onlineUsers(among: [stranger.id]).contains(stranger.id)
        }
        let response = try await gateway.request(.GET, "/api/users/\(stranger.id)", token: caller.token)
        #expect(response.status == 200, "\(response.text)")
        #expect(response.json == ["id": .int(stranger.id), "username": .string(stranger.username),
                                  "displayName": .string(stranger.username), "isOnline": .null, "lastSeen": .null,
                                  "avatarUrl": .null, "statusText": .null])
        #expect(!response.text.contains(stranger.email))
        _ = strangerSocket
    }

    @Test @LoopActor func aContactIsShownWithPresence() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let caller = try await gateway.account("caller")
        let contact = try await gateway.account("contact")
        try await gateway.makeContacts(contact, caller)
        let offline = try await gateway.request(.GET, "/api/users/\(contact.id)", token: caller.token)
        #expect(offline.status == 200, "\(offline.text)")
        #expect(offline.json?["isOnline"] == false)
        #expect(offline.json?["email"] == nil)

        let socket = try await gateway.connectedSocket(gateway.withSocketToken(contact))
        var online: TestResponse?
        try await until("the contact is shown online") {
            online = try await gateway.request(.GET, "/api/users/\(contact.id)", token: caller.token)
            return online?.json?["isOnline"] == true
        }
        #expect(online?.json?["id"] == .int(contact.id))
        #expect(online?.json?["email"] == nil)
        _ = socket
    }

    @Test @LoopActor func unknownIdsAndIdsBeyond64BitsAre404UserNotFound() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let caller = try await gateway.account()
        let unknown = try await gateway.request(.GET, "/api/users/99999999999", token: caller.token)
        expectError(unknown, 404, "user_not_found")
        #expect(unknown.errorMessage == "no user with id 99999999999")
        let huge = try await gateway.request(.GET, "/api/users/99999999999999999999999", token: caller.token)
        expectError(huge, 404, "user_not_found")
        #expect(huge.errorMessage == "no user with id 99999999999999999999999")
    }

    @Test @LoopActor func anIdThatIsNotAPositiveIntegerIsAValidationError() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let caller = try await gateway.account()
        for id in ["abc", "0", "-1", "1.5", "12abc"] {
            expectError(try await gateway.request(.GET, "/api/users/\(id)", token: caller.token), 422, "validation_failed", field: "id")
        }
    }

    // MARK: GET /api/users (search)

    @Test @LoopActor func searchFindsUsernamePrefixesInOrderWithoutTheCaller() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let prefix = Self.uniquePrefix()
        let caller = try await gateway.account(prefix)
        var others: [GatewayHarness.Account] = []
        for _ in 0..<3 { others.append(try await gateway.account(prefix)) }
        try await gateway.makeContacts(others[0], caller)
        let response = try await gateway.request(.GET, "/api/users?query=\(prefix.uppercased())", token: caller.token)
        #expect(response.status == 200, "\(response.text)")
        let users = try #require(response.json?["users"]?.arrayValue)
        let expected = others.sorted { $0.username.lowercased() < $1.username.lowercased() }
        #expect(users.compactMap { $0["id"]?.int64Value } == expected.map(\.id))
        #expect(response.json?["nextCursor"] == .null)
        for user in users {
            #expect(user["email"] == nil)
            // Presence for the contact only.
            #expect(user["isOnline"] == (user["id"] == .int(others[0].id) ? false : .null), "\(user)")
        }
        let alias = try await gateway.request(.GET, "/api/users?q=\(prefix)", token: caller.token)
        #expect(alias.body == response.body, "q is an alias of query")
    }

    @Test @LoopActor func searchPagesFollowNextCursor() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let prefix = Self.uniquePrefix()
        let caller = try await gateway.account()
        var others: [GatewayHarness.Account] = []
        for _ in 0..<3 { others.append(try await gateway.account(prefix)) }
        let expected = others.sorted { $0.username.lowercased() < $1.username.lowercased() }.map(\.id)
        let first = try await gateway.request(.GET, "/api/users?query=\(prefix)&limit=2", token: caller.token)
        #expect(first.json?["users"]?.arrayValue?.compactMap { $0["id"]?.int64Value } == Array(expected.prefix(2)))
        let cursor = try #require(first.json?["nextCursor"]?.stringValue)
        let second = try await gateway.request(.GET, "/api/users?query=\(prefix)&limit=2&cursor=\(cursor)", token: caller.token)
        #expect(second.status == 200, "\(second.text)")
        #expect(second.json?["users"]?.arrayValue?.compactMap { $0["id"]?.int64Value } == [expected[2]])
        #expect(second.json?["nextCursor"] == .null)
    }

    @Test @LoopActor func searchRefusesBadLimitsQueriesAndCursors() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let caller = try await gateway.account()
        for limit in ["0", "101", "-1", "ten", ""] {
            expectError(try await gateway.request(.GET, "/api/users?query=a&limit=\(limit)", token: caller.token), 422, "validation_failed")
        }
        let tooLong = String(repeating: "a", count: UserRoutes.maxQueryLength + 1)
        expectError(try await gateway.request(.GET, "/api/users?query=\(tooLong)", token: caller.token), 422, "validation_failed", field: "query")
        expectError(try await gateway.request(.GET, "/api/users?query=%00", token: caller.token), 422, "validation_failed", field: "query")
        for cursor in ["!!!", "", Base64URL.encode(Array("has space".utf8))] {
            expectError(try await gateway.request(.GET, "/api/users?query=a&cursor=\(cursor)", token: caller.token), 422, "validation_failed")
        }
        let longest = String(repeating: "a", count: UserRoutes.maxQueryLength)
        #expect(try await gateway.request(.GET, "/api/users?query=\(longest)&limit=100", token: caller.token).status == 200)
    }

    // MARK: GET /api/users/online

    @Test @LoopActor func onlineListsConnectedContactsOnly() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let caller = try await gateway.account("caller")
        let onlineContact = try await gateway.account("bob")
        let offlineContact = try await gateway.account("carol")
        let onlineStranger = try await gateway.account("dave")
        try await gateway.makeContacts(onlineContact, caller)
        try await gateway.makeContacts(caller, offlineContact)
        let sockets = [try await gateway.connectedSocket(gateway.withSocketToken(onlineContact)),
                       try await gateway.connectedSocket(gateway.withSocketToken(onlineStranger))]
        try await until("the stranger is online") {
            await gateway.services.presence.registry.onlineUsers(among: [onlineStranger.id]).contains(onlineStranger.id)
        }
        var response: TestResponse?
        try await until("the contact is listed online") {
            response = try await gateway.request(.GET, "/api/users/online", token: caller.token)
            return response?.json?["users"]?.arrayValue?.isEmpty == false
        }
        #expect(response?.status == 200)
        #expect(response?.json?["users"] == [["id": .int(onlineContact.id), "username": .string(onlineContact.username),
                                               "displayName": .string(onlineContact.username), "isOnline": true, "lastSeen": .null,
                                               "avatarUrl": .null, "statusText": .null]])
        _ = sockets
    }

    @Test @LoopActor func onlineIsEmptyWithoutConnectedContacts() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let caller = try await gateway.account()
        let contact = try await gateway.account()
        try await gateway.makeContacts(caller, contact)
        let response = try await gateway.request(.GET, "/api/users/online", token: caller.token)
        #expect(response.status == 200)
        #expect(response.json == ["users": []])
    }
}
