import Shared

/// The REST paths of the seed dialects (issue 16), as rewrites to native routes at the front door:
/// a request on a dialect path becomes the native request (path, and body where a field is named
/// otherwise), runs through the same router, limits and handlers, and its answer is reshaped
/// where the dialect documents another shape. Dialect paths do not collide with native ones; where
/// a seed documents a path the native API also has (`/api/auth/register`, `/api/users`,
/// `/health`), the native route answers. Pure: a request in, the rewrite (or nil) out.
struct DialectRoutes: Sendable {
    let enabled: Set<Dialect>

    /// How a native answer becomes the dialect's.
    enum Reshape: Sendable, Equatable {
        case none
        /// Seed 002's history: each message also as `message` and `timestamp`.
        case seed002Messages
        /// Seed 001's `GET /api/messages`: every message of the native sync answer, one array.
        case seed001AllMessages
        /// Seed 003's envelopes and pages.
        case seed003(Seed003Routes.Answer)
    }

    struct Rewrite: Sendable {
        var request: HTTPRequest
        var dialect: Dialect
        var reshape: Reshape
    }

    func rewrite(_ request: HTTPRequest) -> Rewrite? {
        let path = request.path
        if enabled.contains(.seed001) {
            switch (request.method, path) {
            case (.POST, "/api/auth/register"):
                // The native route answers; seed 001 registers without a username: one is derived
                // from the email (the native rules then apply as usual).
                guard let body = Self.withDerivedUsername(request.body) else { break }
                var native = request
                native.body = body
                return Rewrite(request: native, dialect: .seed001, reshape: .none)
            case (.GET, "/api/messages"):
                return Rewrite(request: Self.moved(request, to: "/api/sync"), dialect: .seed001, reshape: .seed001AllMessages)
            case (.POST, "/api/messages/send"):
                var native = Self.moved(request, to: "/api/messages")
                native.body = Self.renamed(native.body, ["toUserId": "receiverId"])
                return Rewrite(request: native, dialect: .seed001, reshape: .none)
            default:
                break
            }
        }
        if enabled.contains(.seed002), request.method == .GET, path.hasPrefix("/api/chat/history/") {
            let user = path.dropFirst("/api/chat/history/".count)
            guard !user.isEmpty, !user.contains("/") else { return nil }
            return Rewrite(request: Self.moved(request, to: "/api/messages/conversation/\(user)"), dialect: .seed002, reshape: .seed002Messages)
        }
        if enabled.contains(.seed003), let rewrite = Seed003Routes.rewrite(request) { return rewrite }
        if enabled.contains(.seed004), path.hasPrefix("/api/v1/auth/") || path == "/api/v1/rooms" || path.hasPrefix("/api/v1/rooms/") {
            var native = Self.moved(request, to: "/api" + path.dropFirst("/api/v1".count))
            if request.method == .POST, path == "/api/v1/auth/register" { native.body = Self.renamed(native.body, ["fullName": "displayName"]) }
            return Rewrite(request: native, dialect: .seed004, reshape: .none)
        }
        return nil
    }

    /// The native answer reshaped for the dialect (errors are left as they are).
    static func reshape(_ response: HTTPResponse, _ reshape: Reshape) -> HTTPResponse {
        if case .seed003(let answer) = reshape { return Seed003Routes.reshape(response, answer) }
        guard reshape != .none, (200..<300).contains(response.status.code), let body = try? JSONParser.parse(response.body) else {
            return response
        }
        var reshaped = response
        switch reshape {
        case .none:
            return response
        case .seed002Messages:
            guard case .array(let messages) = body else { return response }
            reshaped.body = JSONValue.array(messages.map(DialectEvents.seed002Message)).serialized()
        case .seed003:
            return response
        case .seed001AllMessages:
            let messages = (body["conversations"]?.arrayValue ?? []).flatMap { $0["messages"]?.arrayValue ?? [] }
            reshaped.body = JSONValue.array(messages).serialized()
        }
        return reshaped
    }

    /// A register body without `username` but with an email gets one derived from the email's
    /// local part (letters, digits, `_ . -`, at most 20) and 6 hex digits of its SHA-256, so two
    /// addresses with the same local part do not collide; nil when nothing is to be derived.
    static func withDerivedUsername(_ body: [UInt8]) -> [UInt8]? {
        guard case .object(var fields)? = try? JSONParser.parse(body), fields["username"] == nil,
              case .string(let email)? = fields["email"], let at = email.firstIndex(of: "@") else { return nil }
        let allowed = email[..<at].utf8.filter { byte in
            RealtimeConfiguration.isURLSafe(byte) || byte == UInt8(ascii: ".")
        }
        let local = String(decoding: allowed.prefix(20), as: UTF8.self)
        let suffix = Hex.encode(Digest.sha256(Array(email.lowercased().utf8)).prefix(3))
        fields["username"] = .string((local.isEmpty ? "user" : local) + "_" + suffix)
        return JSONValue.object(fields).serialized()
    }

    static func moved(_ request: HTTPRequest, to path: String) -> HTTPRequest {
        var moved = request
        moved.path = path
        moved.target = request.query.map { path + "?" + $0 } ?? path
        return moved
    }

    /// A JSON object body with fields renamed (other bodies unchanged: the native route refuses them).
    private static func renamed(_ body: [UInt8], _ names: [String: String]) -> [UInt8] {
        guard let object = try? JSONParser.parse(body), object.objectValue != nil else { return body }
        return DialectEvents.renamed(object, names).serialized()
    }
}
