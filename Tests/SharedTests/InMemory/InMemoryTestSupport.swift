import Testing

@testable import Shared

// What the in-memory tests of the HTTP server, the API router and WebSocket connections share: a
// wait on the loop, an HTTP response reader and a WebSocket peer. Everything runs on the loop over
// `InMemoryConnection`s; time moves only through a `ManualClock`.

/// A wait that ran out.
struct WaitTimedOut: Error, CustomStringConvertible {
    let description: String
}

/// Polls `condition` on the loop until it holds, so tasks the code under test started (the router's
/// handlers) get to run in between; fails after `seconds` of real time.
@LoopActor
func until(_ what: String, seconds: Double = 5, _ condition: @LoopActor () async throws -> Bool) async throws {
    let deadline = MonotonicClock.now() + UInt64(seconds * 1e9)
    while true {
        if try await condition() { return }
        guard MonotonicClock.now() < deadline else { throw WaitTimedOut(description: "timed out waiting for \(what)") }
        await EventLoop.shared.sleep(for: .milliseconds(1))
    }
}

/// A quiet logger for servers under test.
let quietLogger = Logger(service: "test", minimumLevel: .error)

/// Fixed wall time for manual clocks: 2023-11-14T22:13:20Z, so `Date` headers are known.
let fixedWallMilliseconds: Int64 = 1_700_000_000_000
/// The `Date` header at `fixedWallMilliseconds`.
let fixedHTTPDate = "Tue, 14 Nov 2023 22:13:20 GMT"

/// An HTTP response as the peer read it off the connection.
struct ReceivedResponse {
    let status: Int
    let reason: String
    /// Header fields in order, names as written.
    let headers: [(name: String, value: String)]
    let body: [UInt8]

    /// The first field called `name` (any case).
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Every field called `name` (any case).
    func headerValues(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSONValue? { try? JSONParser.parse(body) }
    /// `error.code` of a house error body.
    var errorCode: String? { json?["error"]?["code"]?.stringValue }
    /// `error.message` of a house error body.
    var errorMessage: String? { json?["error"]?["message"]?.stringValue }

    /// Parses one response from the front of `bytes`: nil until it is complete, else the response and
    /// the number of bytes it took. `bodyless` for the answer to a `HEAD`.
    static func parse(_ bytes: [UInt8], bodyless: Bool = false) -> (ReceivedResponse, Int)? {
        guard bytes.count >= 4,
              let headEnd = (0...(bytes.count - 4)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 && bytes[$0 + 2] == 13 && bytes[$0 + 3] == 10 })
        else { return nil }
        let lines = String(decoding: bytes[0..<headEnd], as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusParts = lines[0].split(separator: " ", maxSplits: 2)
        guard statusParts.count == 3, statusParts[0] == "HTTP/1.1", let status = Int(statusParts[1]) else { return nil }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            var value = line[line.index(after: colon)...]
            while value.first == " " { value = value.dropFirst() }
            headers.append((String(line[..<colon]), String(value)))
        }
        let partial = ReceivedResponse(status: status, reason: String(statusParts[2]), headers: headers, body: [])
        let length = bodyless || status < 200 || status == 204 || status == 304 ? 0 : Int(partial.header("Content-Length") ?? "0") ?? 0
        let bodyStart = headEnd + 4
        guard bytes.count >= bodyStart + length else { return nil }
        let response = ReceivedResponse(status: status, reason: partial.reason, headers: headers,
                                        body: Array(bytes[bodyStart..<bodyStart + length]))
        return (response, bodyStart + length)
    }
}

/// Plays an HTTP client on one in-memory connection: writes requests, reads responses back.
@LoopActor
final class HTTPPeer {
    let connection: InMemoryConnection
    /// Output read off the connection and not yet parsed as a response.
    private(set) var unread: [UInt8] = []

    init(connection: InMemoryConnection = InMemoryConnection()) {
        self.connection = connection
    }

    /// A request's bytes: `Host` first, then `headers`, then `Content-Length` when there is a body.
    static func request(_ method: String = "GET", _ target: String, version: String = "HTTP/1.1",
                        headers: [(String, String)] = [], body: String? = nil) -> [UInt8] {
        var head = "\(method) \(target) \(version)\r\nHost: test.local\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.utf8.count)\r\n" }
        return Array((head + "\r\n" + (body ?? "")).utf8)
    }

    /// The peer sends `bytes`, in chunks of `chunkSize`.
    func send(_ bytes: [UInt8], chunkSize: Int = .max) { connection.receive(bytes, chunkSize: chunkSize) }

    /// Sends a request.
    func send(_ method: String = "GET", _ target: String, headers: [(String, String)] = [], body: String? = nil) {
        send(Self.request(method, target, headers: headers, body: body))
    }

    /// Every complete response written so far (what follows stays unread).
    func responses(bodyless: Bool = false) -> [ReceivedResponse] {
        unread += connection.takeOutput()
        var parsed: [ReceivedResponse] = []
        while let (response, used) = ReceivedResponse.parse(unread, bodyless: bodyless) {
            unread.removeFirst(used)
            parsed.append(response)
        }
        return parsed
    }

    /// The raw output not yet taken as a response (for 100 Continue or a silent close).
    func takeUnread() -> [UInt8] {
        unread += connection.takeOutput()
        defer { unread = [] }
        return unread
    }

    /// Waits for the next response (the router answers from a task).
    func nextResponse(bodyless: Bool = false) async throws -> ReceivedResponse {
        var parsed: ReceivedResponse?
        try await until("an HTTP response") {
            self.unread += self.connection.takeOutput()
            if let (response, used) = ReceivedResponse.parse(self.unread, bodyless: bodyless) {
                self.unread.removeFirst(used)
                parsed = response
                return true
            }
            if self.connection.isClosed {
                throw WaitTimedOut(description: "closed before a response: \(String(decoding: self.unread, as: UTF8.self))")
            }
            return false
        }
        return parsed!
    }

    /// Sends a request and waits for its response.
    func exchange(_ method: String = "GET", _ target: String, headers: [(String, String)] = [],
                  body: String? = nil) async throws -> ReceivedResponse {
        send(method, target, headers: headers, body: body)
        return try await nextResponse(bodyless: method == "HEAD")
    }
}
