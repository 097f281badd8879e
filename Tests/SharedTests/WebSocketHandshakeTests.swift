import Testing

@testable import Shared

private func upgradeRequest(
    method: HTTPMethod = .GET,
    version: HTTPVersion = .http1_1,
    removing removed: [String] = [],
    replacing replaced: [(String, String)] = []
) -> HTTPRequest {
    var headers: HTTPHeaders = [
        "Host": "chat.example",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
    ]
    for name in removed { headers.remove(name: name) }
    for (name, value) in replaced { headers.replaceOrAdd(name: name, value: value) }
    return HTTPRequest(method: method, target: "/socket.io/?EIO=4&transport=websocket", version: version, headers: headers)
}

private func error(_ result: Result<HTTPResponse, WebSocketHandshakeError>) -> WebSocketHandshakeError? {
    if case .failure(let error) = result { return error }
    return nil
}

@Suite struct WebSocketHandshakeTests {
    @Test func acceptKeyOfRFCExample() {
        #expect(WebSocketHandshake.acceptKey(for: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func validUpgrade() throws {
        let response = try WebSocketHandshake.response(to: upgradeRequest()).get()
        #expect(response.status == .switchingProtocols)
        #expect(response.headers["Upgrade"] == "websocket")
        #expect(response.headers["Connection"] == "Upgrade")
        #expect(response.headers["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(!response.headers.contains("Sec-WebSocket-Extensions"), "no extension is negotiated")
        #expect(!response.headers.contains("Sec-WebSocket-Protocol"))
        let text = String(decoding: response.serialize(keepAlive: true, date: nil), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        #expect(!text.contains("Content-Length"))
    }

    @Test func tokensAreCaseInsensitiveAndListed() throws {
        let request = upgradeRequest(replacing: [("Upgrade", "WebSocket"), ("Connection", "keep-alive, UPGRADE")])
        #expect(try WebSocketHandshake.response(to: request).get().status == .switchingProtocols)
    }

    @Test func missingUpgradeOrConnectionIs400() {
        let noUpgrade = error(WebSocketHandshake.response(to: upgradeRequest(removing: ["Upgrade"])))
        #expect(noUpgrade?.status == .badRequest)
        #expect(noUpgrade?.message.contains("Upgrade: websocket") == true)
        let wrongUpgrade = error(WebSocketHandshake.response(to: upgradeRequest(replacing: [("Upgrade", "h2c")])))
        #expect(wrongUpgrade?.status == .badRequest)
        let noConnection = error(WebSocketHandshake.response(to: upgradeRequest(replacing: [("Connection", "keep-alive")])))
        #expect(noConnection?.status == .badRequest)
        #expect(noConnection?.message.contains("Connection: Upgrade") == true)
    }

    @Test func badKeysAre400() {
        let missing = error(WebSocketHandshake.response(to: upgradeRequest(removing: ["Sec-WebSocket-Key"])))
        #expect(missing?.status == .badRequest)
        #expect(missing?.message.contains("Sec-WebSocket-Key") == true)
        for bad in ["not base64!", "AAAAAAAAAAAAAAAAAAAA", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ==AAAA", ""] {
            let result = error(WebSocketHandshake.response(to: upgradeRequest(replacing: [("Sec-WebSocket-Key", bad)])))
            #expect(result?.status == .badRequest, "key '\(bad)'")
            #expect(result?.code.name == "bad_websocket_handshake")
        }
        var twoKeys = upgradeRequest()
        twoKeys.headers.add(name: "Sec-WebSocket-Key", value: "AAAAAAAAAAAAAAAAAAAAAA==")
        #expect(error(WebSocketHandshake.response(to: twoKeys))?.status == .badRequest)
    }

    @Test func otherVersionsAre426() {
        for version in ["8", "12", "14", "13, 8"] {
            let result = error(WebSocketHandshake.response(to: upgradeRequest(replacing: [("Sec-WebSocket-Version", version)])))
            #expect(result?.status == .upgradeRequired, "version \(version)")
            #expect(result?.headers["Sec-WebSocket-Version"] == "13")
            #expect(result?.response.headers["Sec-WebSocket-Version"] == "13")
        }
        let missing = error(WebSocketHandshake.response(to: upgradeRequest(removing: ["Sec-WebSocket-Version"])))
        #expect(missing?.status == .upgradeRequired)
    }

    @Test func methodAndHTTPVersion() {
        let post = error(WebSocketHandshake.response(to: upgradeRequest(method: .POST)))
        #expect(post?.status == .methodNotAllowed)
        #expect(post?.headers["Allow"] == "GET")
        let http10 = error(WebSocketHandshake.response(to: upgradeRequest(version: .http1_0)))
        #expect(http10?.status == .badRequest)
    }
}
