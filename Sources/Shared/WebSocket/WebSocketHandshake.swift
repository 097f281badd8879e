import HTTP
import Security

/// The server side of the WebSocket opening handshake (RFC 6455 §4.2). No extension or subprotocol
/// is negotiated: `Sec-WebSocket-Extensions` (e.g. permessage-deflate) and `Sec-WebSocket-Protocol`
/// offers are ignored, which tells the client none was accepted.
package enum WebSocketHandshake {
    /// The GUID appended to the client's key before hashing (RFC 6455 §1.3).
    package static let keyGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    /// The only protocol version this server speaks.
    package static let supportedVersion = "13"
    /// Length of the decoded `Sec-WebSocket-Key` nonce.
    package static let keyNonceBytes = 16

    /// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
    package static func acceptKey(for clientKey: String) -> String {
        Base64.encode(Digest.sha1(Array((clientKey + keyGUID).utf8)))
    }

    /// The `101 Switching Protocols` answer to a valid upgrade request, or the error to answer with:
    /// 405 for a method other than GET, 426 (with `Sec-WebSocket-Version: 13`) for a missing or other
    /// protocol version, 400 for any other missing or malformed handshake field. The caller writes the
    /// 101 and then speaks WebSocket on the connection.
    package static func response(to request: HTTPRequest) -> Result<HTTPResponse, WebSocketHandshakeError> {
        guard request.method == .GET else {
            return .failure(WebSocketHandshakeError(
                .methodNotAllowed,
                message: "a WebSocket upgrade must use GET, not \(request.method)", headers: ["Allow": "GET"]))
        }
        guard request.version.major > 1 || (request.version.major == 1 && request.version.minor >= 1) else {
            return .failure(badHandshake("a WebSocket upgrade needs HTTP/1.1, not \(request.version)"))
        }
        guard request.headers.containsToken("websocket", inField: "Upgrade") else {
            return .failure(badHandshake("this endpoint only speaks WebSocket: send 'Upgrade: websocket'"))
        }
        guard request.headers.containsToken("upgrade", inField: "Connection") else {
            return .failure(badHandshake("a WebSocket upgrade needs 'Connection: Upgrade'"))
        }
        let versions = request.headers.values("Sec-WebSocket-Version")
        guard versions.count == 1, trimmed(versions[0]) == supportedVersion else {
            let found = versions.isEmpty ? "no Sec-WebSocket-Version header" : "Sec-WebSocket-Version '\(versions.joined(separator: ", "))'"
            return .failure(WebSocketHandshakeError(
                .websocketVersionUnsupported,
                message: "\(found): this server speaks WebSocket version \(supportedVersion) only",
                headers: ["Sec-WebSocket-Version": supportedVersion]))
        }
        let keys = request.headers.values("Sec-WebSocket-Key")
        guard keys.count == 1 else {
            return .failure(badHandshake(
                keys.isEmpty ? "the Sec-WebSocket-Key header is missing" : "more than one Sec-WebSocket-Key header"))
        }
        let key = String(trimmed(keys[0]))
        guard let nonce = Base64.decode(key), nonce.count == keyNonceBytes else {
            return .failure(badHandshake("Sec-WebSocket-Key must be the base64 encoding of \(keyNonceBytes) random bytes"))
        }
        let response = HTTPResponse(
            status: .switchingProtocols,
            headers: [
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Accept": acceptKey(for: key),
            ])
        return .success(response)
    }

    private static func badHandshake(_ message: String) -> WebSocketHandshakeError {
        WebSocketHandshakeError(.badWebSocketHandshake, message: message)
    }

    /// The value without surrounding spaces and tabs (the HTTP parser already strips them; this
    /// keeps the check right for requests built elsewhere).
    private static func trimmed(_ value: String) -> Substring {
        var slice = value[...]
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return slice
    }
}

/// Why an upgrade request was refused: a code (with its status) and a sentence, answered as the
/// house error body (`{"error": {"code", "message"}}`) with any extra headers.
package struct WebSocketHandshakeError: Error, Sendable, Equatable {
    package var code: ErrorCode
    package var message: String
    /// `Allow` for 405, `Sec-WebSocket-Version` for 426.
    package var headers: HTTPHeaders

    package init(_ code: ErrorCode, message: String, headers: HTTPHeaders = HTTPHeaders()) {
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// The status the refusal is answered with.
    package var status: HTTPStatus { code.status }

    /// The response refusing the upgrade.
    package var response: HTTPResponse {
        var response = HTTPResponse.error(code, message: message)
        response.headers.replaceOrAdd(contentsOf: headers)
        return response
    }
}

extension ErrorCode {
    /// An upgrade request that is not a valid RFC 6455 handshake.
    package static let badWebSocketHandshake = ErrorCode("bad_websocket_handshake", .badRequest, "this is not a valid WebSocket handshake")
    /// A `Sec-WebSocket-Version` other than 13 (answered with `Sec-WebSocket-Version: 13`).
    package static let websocketVersionUnsupported = ErrorCode("websocket_version_unsupported", .upgradeRequired, "this server speaks WebSocket version 13 only")
}
