import Shared

/// The user directory: `GET /api/users/online` (online contacts), `GET /api/users/:id`, and
/// `GET /api/users?query=` (username prefix search, for starting a conversation). Users appear as
/// `{id, username, displayName, isOnline, lastSeen}`; emails are never shown to other users, and
/// presence (`isOnline`, `lastSeen`) only to contacts (users sharing a conversation): null otherwise,
/// the same rule as the `userOnline` / `userOffline` events.
@LoopActor
final class UserRoutes {
    private let directory: ContactDirectory
    private let presence: any PresenceLookup

    static let defaultLimit = 20
    static let maxLimit = 100
    static let maxQueryLength = 64

    init(directory: ContactDirectory, presence: any PresenceLookup) {
        self.directory = directory
        self.presence = presence
    }

    func register(on router: APIRouter) {
        router.add(.GET, "/api/users/online", authenticated: true) { [unowned self] in try await self.onlineContacts($0) }
        router.add(.GET, "/api/users/by-username/:username", authenticated: true) { [unowned self] in try await self.userNamed($0) }
        router.add(.GET, "/api/users/:id", authenticated: true) { [unowned self] in try await self.user($0) }
        router.add(.GET, "/api/users", authenticated: true) { [unowned self] in try await self.search($0) }
    }

    private func onlineContacts(_ request: APIRequest) async throws -> HTTPResponse {
        let caller = try request.caller
        let users = try await presence.onlineContacts(of: caller.userID, in: directory)
            .sorted { $0.username.lowercased() < $1.username.lowercased() }
        return .json(.ok, ["users": .array(users.map { $0.json(isOnline: true) })])
    }

    private func user(_ request: APIRequest) async throws -> HTTPResponse {
        let id = try request.idParameter("id", outOfRange: Self.noSuchUser)
        guard let user = try await directory.user(id) else { throw Self.noSuchUser(id) }
        return .json(.ok, try await shown(user, to: try request.caller.userID))
    }

    /// `GET /api/users/by-username/:username` (issue 14): as `GET /api/users/:id`, by name (any case).
    private func userNamed(_ request: APIRequest) async throws -> HTTPResponse {
        guard let name = request.parameters["username"], (1...64).contains(name.utf8.count) else {
            throw APIError.invalidField("username", "the username must be 1-64 characters")
        }
        guard let user = try await directory.user(named: name) else {
            throw APIError(.userNotFound, message: "no user named \(name)")
        }
        return .json(.ok, try await shown(user, to: try request.caller.userID))
    }

    /// A user as the caller may see them: presence only for a contact, never the email.
    private func shown(_ user: PublicUser, to callerID: Int64) async throws -> JSONValue {
        guard try await !directory.contacts(of: callerID, among: [user.id]).isEmpty else { return user.json(isOnline: nil) }
        let online = await presence.onlineUsers(among: [user.id])
        return user.json(isOnline: online.contains(user.id))
    }

    /// 404 for an id that names no user (any decimal, even beyond 64 bits).
    private static func noSuchUser(_ id: String) -> APIError {
        APIError(.userNotFound, message: "no user with id \(id)")
    }

    private static func noSuchUser(_ id: Int64) -> APIError { noSuchUser(String(id)) }

    private func search(_ request: APIRequest) async throws -> HTTPResponse {
        let caller = try request.caller
        let query = request.http.queryParameter("query") ?? request.http.queryParameter("q") ?? ""
        guard query.count <= Self.maxQueryLength else {
            throw APIError.invalidField("query", "query parameter 'query' must be at most \(Self.maxQueryLength) characters")
        }
        guard !query.utf8.contains(0) else {
            throw APIError.invalidField("query", "query parameter 'query' must not contain NUL characters")
        }
        var limit = Self.defaultLimit
        if let text = request.http.queryParameter("limit") {
            guard let value = Int(text), (1...Self.maxLimit).contains(value) else {
                throw APIError.validation("query parameter 'limit' must be an integer from 1 to \(Self.maxLimit)")
            }
            limit = value
        }
        let cursor = try request.http.queryParameter("cursor").map { text throws(APIError) -> String in
            guard let decoded = UserCursor.decode(text) else { throw APIError.validation("query parameter 'cursor' is not a cursor this API returned") }
            return decoded
        }
        let prefix = query.lowercased()
        var page = try await directory.search(prefix: prefix, after: cursor, limit: limit, excluding: caller.userID)
        var next: JSONValue = .null
        if page.count > limit {
            page.removeLast(page.count - limit)
            if let last = page.last { next = .string(UserCursor.encode(last.username.lowercased())) }
        }
        let contacts = try await directory.contacts(of: caller.userID, among: page.map(\.id))
        let online = await presence.onlineUsers(among: page.map(\.id).filter(contacts.contains))
        return .json(.ok, ["users": .array(page.map { contacts.contains($0.id) ? $0.json(isOnline: online.contains($0.id)) : $0.json(isOnline: nil) }),
                           "nextCursor": next])
    }
}

/// The opaque `nextCursor` of the user search: the last lowercased username, base64url-encoded
/// (so clients treat it as opaque and the format can change).
enum UserCursor {
    static func encode(_ username: String) -> String { Base64URL.encode(Array(username.utf8)) }

    static func decode(_ text: String) -> String? {
        guard text.utf8.count <= 128, let bytes = Base64URL.decode(text), let name = String(validating: bytes, as: UTF8.self),
              !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return name
    }
}
