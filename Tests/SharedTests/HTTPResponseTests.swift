import Testing

@testable import Shared

@Suite struct HTTPResponseTests {
    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func jsonResponseWithDate() {
        let response = HTTPResponse.json(.ok, Array(#"{"ok":true}"#.utf8))
        let bytes = response.serialize(keepAlive: true, date: "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(
            text(bytes) == "HTTP/1.1 200 OK\r\n"
                + "Content-Type: application/json; charset=utf-8\r\n"
                + "Content-Length: 11\r\n"
                + "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                + "\r\n"
                + #"{"ok":true}"#
        )
    }

    @Test func closeAndEmptyBody() {
        let bytes = HTTPResponse(status: .notFound).serialize(keepAlive: false, date: nil)
        #expect(text(bytes) == "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    }

    @Test func noContentLengthFor204And1xx() {
        let noContent = HTTPResponse(status: .noContent, body: Array("dropped".utf8))
        #expect(text(noContent.serialize(keepAlive: true, date: nil)) == "HTTP/1.1 204 No Content\r\n\r\n")
        let upgrade = HTTPResponse(
            status: .switchingProtocols,
            headers: ["Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": "abc="]
        )
        #expect(
            text(upgrade.serialize(keepAlive: true, date: nil))
                == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: abc=\r\n\r\n"
        )
        let notModified = HTTPResponse(status: HTTPStatus(code: 304, reasonPhrase: "Not Modified"))
        #expect(text(notModified.serialize(keepAlive: true, date: nil)) == "HTTP/1.1 304 Not Modified\r\n\r\n")
    }

    @Test func handlerContentLengthIsReplacedAndConnectionRespected() {
        var response = HTTPResponse.text(.ok, "hi")
        response.headers.add(name: "content-length", value: "999")
        response.headers.add(name: "Connection", value: "keep-alive")
        #expect(
            text(response.serialize(keepAlive: false, date: nil))
                == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n"
                + "Connection: close\r\n\r\nhi"
        )
    }

    @Test func headRequestsKeepTheLengthButNotTheBody() {
        let response = HTTPResponse.text(.ok, "hello")
        #expect(
            text(response.serialize(keepAlive: true, date: nil, includeBody: false))
                == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\n"
        )
    }

    @Test func http10KeepAliveIsExplicit() {
        let response = HTTPResponse(status: .ok)
        #expect(
            text(response.serialize(keepAlive: true, date: nil, requestVersion: .http1_0))
                == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        )
    }

    @Test func lineBreaksInValuesCannotSplitTheResponse() {
        var response = HTTPResponse(status: .ok)
        response.headers.add(name: "Location", value: "/a\r\nSet-Cookie: evil=1")
        #expect(
            text(response.serialize(keepAlive: true, date: nil))
                == "HTTP/1.1 200 OK\r\nLocation: /a  Set-Cookie: evil=1\r\nContent-Length: 0\r\n\r\n"
        )
    }

    @Test func errorBodyIsEscapedJSON() {
        let response = HTTPResponse.error(.badRequest, code: "bad_input", message: "quote \" slash \\ line\n\u{1}")
        #expect(response.status == .badRequest)
        #expect(response.headers["content-type"] == "application/json; charset=utf-8")
        #expect(
            text(response.body)
                == #"{"error":{"code":"bad_input","message":"quote \" slash \\ line\n\u0001"}}"#
        )
    }

    @Test func largeStatusCodesAndLengths() {
        let response = HTTPResponse(status: .serviceUnavailable, body: [UInt8](repeating: 0x61, count: 1_234_567))
        let bytes = response.serialize(keepAlive: true, date: nil)
        #expect(text(Array(bytes.prefix(61))).hasPrefix("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1234567\r\n\r\n"))
        #expect(bytes.count == 61 + 1_234_567)
    }
}
