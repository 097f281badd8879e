import Testing

@testable import Shared

@Suite struct RouterTests {
    private func router() -> Router<String> {
        var router = Router<String>()
        router.add(.GET, "/", "root")
        router.add(.GET, "/api/users/:id", "user")
        router.add(.PUT, "/api/users/:id", "updateUser")
        router.add(.GET, "/api/users/me", "me")
        router.add(.GET, "/api/conversations/:conversationId/messages/:messageId", "message")
        router.add(.POST, "/api/conversations/:conversationId/messages", "send")
        router.add(.GET, "/a/me/x", "static-x")
        router.add(.GET, "/a/:id/y", "param-y")
        router.add(.DELETE, "/health/", "health-delete")
        return router
    }

    private func found(_ match: RouteMatch<String>) -> (String, RouteParameters)? {
        if case .found(let handler, let parameters) = match { return (handler, parameters) }
        return nil
    }

    @Test func parameters() throws {
        let (handler, parameters) = try #require(found(router().match(.GET, path: "/api/conversations/12/messages/345")))
        #expect(handler == "message")
        #expect(parameters["conversationId"] == "12")
        #expect(parameters["messageId"] == "345")
        #expect(parameters["missing"] == nil)
        #expect(parameters.map(\.name) == ["conversationId", "messageId"])
    }

    @Test func parametersArePercentDecoded() throws {
        let (_, parameters) = try #require(found(router().match(.GET, path: "/api/users/caf%C3%A9%20x%2Fy")))
        #expect(parameters["id"] == "café x/y")
    }

    @Test func staticSegmentsWinOverParameters() throws {
        #expect(try #require(found(router().match(.GET, path: "/api/users/me"))).0 == "me")
        #expect(try #require(found(router().match(.GET, path: "/api/users/42"))).0 == "user")
        // Backtracking: the static branch does not continue with "y", the parameter branch does.
        let (handler, parameters) = try #require(found(router().match(.GET, path: "/a/me/y")))
        #expect(handler == "param-y")
        #expect(parameters["id"] == "me")
        #expect(try #require(found(router().match(.GET, path: "/a/me/x"))).0 == "static-x")
    }

    @Test func methodIsPreferredAcrossBranches() throws {
        // PUT exists only on the parameter route; "/api/users/me" must still reach it.
        let (handler, parameters) = try #require(found(router().match(.PUT, path: "/api/users/me")))
        #expect(handler == "updateUser")
        #expect(parameters["id"] == "me")
    }

    @Test func methodNotAllowedListsAllowedMethods() {
        guard case .methodNotAllowed(let allowed) = router().match(.DELETE, path: "/api/users/42") else {
            Issue.record("expected 405")
            return
        }
        #expect(allowed == [.GET, .HEAD, .PUT])
        guard case .methodNotAllowed(let onMe) = router().match(.POST, path: "/api/users/me") else {
            Issue.record("expected 405")
            return
        }
        #expect(onMe == [.GET, .HEAD, .PUT], "union of every route matching the path")
        guard case .methodNotAllowed(let onHealth) = router().match(.GET, path: "/health") else {
            Issue.record("expected 405")
            return
        }
        #expect(onHealth == [.DELETE])
    }

    @Test func headUsesGet() throws {
        #expect(try #require(found(router().match(.HEAD, path: "/api/users/me"))).0 == "me")
        var router = router()
        router.add(.HEAD, "/api/users/me", "head-me")
        #expect(try #require(found(router.match(.HEAD, path: "/api/users/me"))).0 == "head-me")
    }

    @Test func trailingSlashIsIgnored() throws {
        #expect(try #require(found(router().match(.GET, path: "/api/users/7/"))).1["id"] == "7")
        #expect(try #require(found(router().match(.DELETE, path: "/health"))).0 == "health-delete")
        #expect(try #require(found(router().match(.DELETE, path: "/health/"))).0 == "health-delete")
        #expect(try #require(found(router().match(.GET, path: "/"))).0 == "root")
    }

    @Test func notFound() {
        let router = router()
        for path in ["/nope", "/api", "/api/users", "/api/users/1/extra", "/api//users/1", "//", "/api/users//",
            "", "*", "api/users/1", "/api/users/1//"]
        {
            if case .notFound = router.match(.GET, path: path) {} else {
                Issue.record("\(path.debugDescription) should not match")
            }
        }
        // "/api/conversations/1/messages/" drops the slash and matches the POST route: 405 for GET.
        if case .methodNotAllowed = router.match(.GET, path: "/api/conversations/1/messages") {} else {
            Issue.record("expected 405")
        }
    }

    @Test func reRegisteringReplaces() throws {
        var router = Router<Int>()
        router.add(.GET, "/x", 1)
        router.add(.GET, "/x/", 2)
        guard case .found(let handler, let parameters) = router.match(.GET, path: "/x") else {
            Issue.record("expected a match")
            return
        }
        #expect(handler == 2)
        #expect(parameters.isEmpty)
    }

    @Test func differentParameterNamesAtTheSamePosition() throws {
        var router = Router<String>()
        router.add(.GET, "/rooms/:roomId", "room")
        router.add(.GET, "/rooms/:code/join", "join")
        #expect(try #require(found(router.match(.GET, path: "/rooms/r1"))).1["roomId"] == "r1")
        let (handler, parameters) = try #require(found(router.match(.GET, path: "/rooms/abc/join")))
        #expect(handler == "join")
        #expect(parameters["code"] == "abc")
        #expect(parameters["roomId"] == nil)
    }
}
