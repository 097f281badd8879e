import Testing
@testable import Gateway
@testable import Shared

/// An HTTP response as a client read it.
struct TestResponse {
    let status: Int
    /// Header fields in order, names as sent.
    let headers: [(name: String, value: String)]
    let body: [UInt8]

    /// The first field named `name` (any case).
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSONValue? { try? JSONParser.parse(body) }
    /// `error.code` of an error body.
    var errorCode: String? { json?["error"]?["code"]?.stringValue }
    var errorMessage: String? { json?["error"]?["message"]?.stringValue }

    /// Parses one response from the front of `bytes`; nil until it is complete. Returns the number of bytes used.
    static func parse(_ bytes: [UInt8], bodyless: Bool = false) -> (TestResponse, Int)? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4, let headEnd = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else {
            return nil
        }
        let lines = String(decoding: bytes[0..<headEnd], as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        guard let statusLine = lines.first else { return nil }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: " ")))
        }
        let response = TestResponse(status: status, headers: headers, body: [])
        let length = status == 101 || bodyless ? 0 : Int(response.header("Content-Length") ?? "0") ?? 0
        let bodyStart = headEnd + 4
        guard bytes.count >= bodyStart + length else { return nil }
        return (TestResponse(status: status, headers: headers, body: Array(bytes[bodyStart..<bodyStart + length])), bodyStart + length)
    }
}

private extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        var text = self
        while text.first == set { text = text.dropFirst() }
        while text.last == set { text = text.dropLast() }
        return String(text)
    }
}

/// Plays an HTTP/1.1 client over one in-memory connection (keep-alive: several requests in turn).
@LoopActor
final class TestHTTPClient {
    let connection: InMemoryConnection
    private var buffer: [UInt8] = []

    init(connection: InMemoryConnection) {
        self.connection = connection
    }

    /// The request's bytes: `Host`, `Content-Length` and the bearer token added.
    static func encode(_ method: HTTPMethod, _ path: String, token: String?, headers: [(String, String)], body: [UInt8]?) -> [UInt8] {
        var head = "\(method.rawValue) \(path) HTTP/1.1\r\nHost: gateway.test\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + (body ?? [])
    }

    /// Sends one request and reads its response.
    func request(_ method: HTTPMethod, _ path: String, token: String? = nil, headers: [(String, String)] = [],
                 json: JSONValue? = nil, body: [UInt8]? = nil) async throws -> TestResponse {
        var headers = headers
        var payload = body
        if let json {
            payload = json.serialized()
            headers.append(("Content-Type", "application/json"))
        }
        connection.receive(Self.encode(method, path, token: token, headers: headers, body: payload))
        return try await response(bodyless: method == .HEAD)
    }

    /// Sends raw bytes (a malformed request, a pipeline).
    func send(_ bytes: [UInt8]) { connection.receive(bytes) }

    /// Reads the next response.
    func response(bodyless: Bool = false) async throws -> TestResponse {
        var parsed: TestResponse?
        try await until("an HTTP response") {
            self.buffer += self.connection.takeOutput()
            if let (response, used) = TestResponse.parse(self.buffer, bodyless: bodyless) {
                self.buffer.removeFirst(used)
                parsed = response
                return true
            }
            if self.connection.isClosed { throw GatewayHarness.SetupFailure(description: "closed before a response: \(String(decoding: self.buffer, as: UTF8.self))") }
            return false
        }
        return parsed!
    }

    /// Bytes written and not yet read as a response.
    func unread() -> [UInt8] {
        buffer += connection.takeOutput()
        return buffer
    }
}

/// Plays a Socket.IO client (Engine.IO v4 over WebSocket) over one in-memory connection: masked
/// frames out, the server's frames parsed back.
@LoopActor
final class TestSocket {
    let connection: InMemoryConnection
    private var parser = WebSocketParser(role: .client, limits: WebSocketLimits())
    /// Text messages received and not yet taken.
    private(set) var inbox: [String] = []
    /// The close code of the server's close frame, once received.
    private(set) var closeCode: UInt16?
    private(set) var closeReason: String?
    /// The Engine.IO open packet's JSON.
    private(set) var open: JSONValue?
    /// Lifetimes of pings seen and answered.
    private(set) var pingsSeen = 0
    /// Answer the server's pings automatically (a live client).
    var answersPings = true

    init(connection: InMemoryConnection) {
        self.connection = connection
    }

    /// The upgrade request and the open packet.
    func upgrade(query: String, headers: [(String, String)]) async throws {
        let http = TestHTTPClient(connection: connection)
        let key = Base64.encode(SecureRandom.bytes(16))
        let response = try await http.request(.GET, "/socket.io/?\(query)", headers: [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13"),
        ] + headers)
        guard response.status == 101 else {
            throw UpgradeRefused(response: response)
        }
        parser.append(http.unread())
        let first = try await next()
        guard first.first == "0", let json = try? JSONParser.parse(Array(first.utf8.dropFirst())) else {
            throw GatewayHarness.SetupFailure(description: "expected the open packet, got \(first)")
        }
        open = json
    }

    struct UpgradeRefused: Error {
        let response: TestResponse
    }

    // MARK: Sending

    /// Sends a text message in one masked frame.
    func send(_ text: String) {
        connection.receive(WebSocketFrameEncoder.frame(.text, payload: Array(text.utf8), maskingKey: (1, 2, 3, 4)))
    }

    /// Sends a raw frame.
    func send(frame opcode: WebSocketOpcode, payload: [UInt8], fin: Bool = true) {
        connection.receive(WebSocketFrameEncoder.frame(opcode, payload: payload, fin: fin, maskingKey: (9, 8, 7, 6)))
    }

    /// `40` with an auth object; returns the server's answer (`40{...}` or `44{...}`).
    func connectNamespace(auth: JSONValue? = nil) async throws -> String {
        send("40" + (auth.map { $0.jsonString } ?? ""))
        return try await next()
    }

    /// `42[<event>, <data>...]`, with `42<ack>[...]` when `ack` is given.
    func emit(_ event: String, _ arguments: [JSONValue], ack: Int64? = nil) {
        let array = JSONValue.array([.string(event)] + arguments)
        send("42" + (ack.map(String.init) ?? "") + array.jsonString)
    }

    // MARK: Receiving

    /// The next text message (pings answered and skipped when `answersPings`).
    func next(seconds: Double = 5) async throws -> String {
        var message: String?
        try await until("a socket message", seconds: seconds) {
            self.pump()
            if !self.inbox.isEmpty { message = self.inbox.removeFirst(); return true }
            if self.closeCode != nil || self.connection.isClosed {
                throw GatewayHarness.SetupFailure(description: "socket closed (\(self.closeCode.map(String.init) ?? "no close frame"))")
            }
            return false
        }
        return message!
    }

    /// The next `42` event's name and arguments, skipping other packets unless `strict`.
    func nextEvent(seconds: Double = 5) async throws -> (name: String, arguments: [JSONValue]) {
        while true {
            let text = try await next(seconds: seconds)
            guard text.hasPrefix("42"), case .array(let items)? = try? JSONParser.parse(Array(text.utf8.dropFirst(2))),
                  let name = items.first?.stringValue else { continue }
            return (name, Array(items.dropFirst()))
        }
    }

    /// The next event named `name`, skipping others.
    func event(_ name: String, seconds: Double = 5) async throws -> [JSONValue] {
        while true {
            let event = try await nextEvent(seconds: seconds)
            if event.name == name { return event.arguments }
        }
    }

    /// The ack `43<id>[...]` for `id`. Other messages stay in the inbox (acks of concurrent requests
    /// may come in any order), so a later `next()` still sees them.
    func ack(_ id: Int64, seconds: Double = 5) async throws -> [JSONValue] {
        let prefix = "43\(id)"
        var arguments: [JSONValue]?
        try await until("the ack \(id)", seconds: seconds) {
            self.pump()
            for (index, text) in self.inbox.enumerated() where text.hasPrefix(prefix) {
                guard case .array(let items)? = try? JSONParser.parse(Array(text.utf8.dropFirst(prefix.utf8.count))) else { continue }
                self.inbox.remove(at: index)
                arguments = items
                return true
            }
            if self.closeCode != nil || self.connection.isClosed {
                throw GatewayHarness.SetupFailure(description: "socket closed (\(self.closeCode.map(String.init) ?? "no close frame")) before the ack \(id)")
            }
            return false
        }
        return arguments!
    }

    /// Waits for the server's close frame (or the connection's end); returns the close code.
    func closed(seconds: Double = 5) async throws -> UInt16? {
        try await until("the socket to close", seconds: seconds) {
            self.pump()
            return self.closeCode != nil || self.connection.isClosed
        }
        return closeCode
    }

    /// Messages already received, without waiting.
    func drainInbox() -> [String] {
        pump()
        defer { inbox = [] }
        return inbox
    }

    /// Reads what the server wrote.
    func pump() {
        parser.append(connection.takeOutput())
        while true {
            switch parser.next() {
            case .needMoreData:
                return
            case .message(.text(let text)):
                if text == "2" {
                    pingsSeen += 1
                    if answersPings { send("3") }
                } else {
                    inbox.append(text)
                }
            case .message(.binary):
                inbox.append("<binary>")
            case .ping, .pong:
                continue
            case .close(let code, let reason):
                closeCode = code ?? 1005
                closeReason = reason
                return
            case .failure(let code, let reason):
                closeCode = code
                closeReason = "client parser: \(reason)"
                return
            }
        }
    }
}
