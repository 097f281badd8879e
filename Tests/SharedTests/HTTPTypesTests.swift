import Testing

@testable import Shared

@Suite struct HTTPTypesTests {
    @Test func headersAreOrderedAndCaseInsensitive() {
        var headers = HTTPHeaders()
        headers.add(name: "Set-Cookie", value: "a=1")
        headers.add(name: "Content-Type", value: "text/plain")
        headers.add(name: "set-cookie", value: "b=2")
        #expect(headers["SET-COOKIE"] == "a=1")
        #expect(headers.values("Set-Cookie") == ["a=1", "b=2"])
        #expect(headers.contains("content-type"))
        #expect(!headers.contains("content-length"))
        #expect(headers.map(\.name) == ["Set-Cookie", "Content-Type", "set-cookie"])

        headers.replaceOrAdd(name: "Set-Cookie", value: "c=3")
        #expect(headers.values("set-cookie") == ["c=3"])
        #expect(headers.map(\.name) == ["Set-Cookie", "Content-Type"])
        headers.replaceOrAdd(name: "X-New", value: "1")
        #expect(headers.count == 3)
        headers.remove(name: "CONTENT-TYPE")
        #expect(headers.map(\.name) == ["Set-Cookie", "X-New"])
        #expect(headers["missing"] == nil)
    }

    @Test func headerTokens() {
        let headers: HTTPHeaders = ["Connection": "keep-alive, Upgrade", "Upgrade": "WebSocket"]
        #expect(headers.containsToken("upgrade", inField: "connection"))
        #expect(headers.containsToken("KEEP-ALIVE", inField: "Connection"))
        #expect(!headers.containsToken("close", inField: "Connection"))
        #expect(headers.containsToken("websocket", inField: "upgrade"))
    }

    @Test func headersEquality() {
        #expect(HTTPHeaders([("A", "1")]) == HTTPHeaders([("a", "1")]))
        #expect(HTTPHeaders([("A", "1")]) != HTTPHeaders([("A", "2")]))
        #expect(HTTPHeaders([("A", "1"), ("B", "2")]) != HTTPHeaders([("B", "2"), ("A", "1")]))
    }

    @Test func queryParameters() {
        let request = HTTPRequest(method: .GET, target: "/socket.io/?EIO=4&transport=websocket&q=a+b%26c&flag&e=&n%61me=x&EIO=5")
        #expect(request.path == "/socket.io/")
        #expect(request.queryParameter("EIO") == "4", "first occurrence wins")
        #expect(request.queryParameter("transport") == "websocket")
        #expect(request.queryParameter("q") == "a b&c")
        #expect(request.queryParameter("flag") == "")
        #expect(request.queryParameter("e") == "")
        #expect(request.queryParameter("name") == "x", "names are compared decoded")
        #expect(request.queryParameter("missing") == nil)
        #expect(HTTPRequest(method: .GET, target: "/").queryParameter("a") == nil)
    }

    @Test func pathSegments() {
        #expect(HTTPRequest(method: .GET, target: "/").pathSegments == [])
        #expect(HTTPRequest(method: .GET, target: "/a/b/").pathSegments == ["a", "b"])
        #expect(HTTPRequest(method: .GET, target: "/a//b").pathSegments == ["a", "", "b"])
        #expect(HTTPRequest(method: .GET, target: "/caf%C3%A9/a%2Fb/x+y?z=1").pathSegments == ["café", "a/b", "x+y"])
    }

    @Test func percentDecoding() {
        #expect(PercentDecoding.decode("plain", plusAsSpace: true) == "plain")
        #expect(PercentDecoding.decode("a+b", plusAsSpace: true) == "a b")
        #expect(PercentDecoding.decode("a+b", plusAsSpace: false) == "a+b")
        #expect(PercentDecoding.decode("%41%62%2f", plusAsSpace: false) == "Ab/")
        #expect(PercentDecoding.decode("100%", plusAsSpace: false) == "100%")
        #expect(PercentDecoding.decode("%4", plusAsSpace: false) == "%4")
        #expect(PercentDecoding.decode("%zz%41", plusAsSpace: false) == "%zzA")
        #expect(PercentDecoding.decode("%FF", plusAsSpace: false) == "\u{FFFD}")
    }

    @Test func methodsAndStatuses() {
        #expect(HTTPMethod.GET < HTTPMethod.POST)
        #expect(HTTPMethod(rawValue: "GET") == .GET)
        #expect(HTTPStatus.tooManyRequests.code == 429)
        #expect(HTTPStatus.requestHeaderFieldsTooLarge.description == "431 Request Header Fields Too Large")
        #expect(HTTPStatus.noContent.forbidsContentLength)
        #expect(HTTPStatus.continue.forbidsContentLength)
        #expect(!HTTPStatus.ok.forbidsContentLength)
        #expect(HTTPVersion.http1_0.description == "HTTP/1.0")
    }
}
