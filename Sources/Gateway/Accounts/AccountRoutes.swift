import Shared

/// `/api/auth/*` and `/api/users/me`: signup, login, refresh, logout, profile.
@LoopActor
final class AccountRoutes: RequestAuthenticator {
    private let database: PostgresPool
    private let tokens: SessionTokens
    private let hasher: PasswordHasher
    private let hashPool: ThreadPool
    private let logger: Logger
    /// Attempts per account and per address, checked before any password hashing.
    private let loginLimits: LoginLimits
    /// Which avatar URLs a profile may carry (the attachment policy: https, ATTACHMENT_HOSTS).
    var avatarPolicy = AttachmentPolicy()

    init(database: PostgresPool, tokens: SessionTokens, hasher: PasswordHasher, hashPool: ThreadPool, loginLimits: LoginLimits,
         logger: Logger) {
        self.database = database
        self.tokens = tokens
        self.hasher = hasher
        self.hashPool = hashPool
        self.loginLimits = loginLimits
        self.logger = logger
    }

    func register(on router: APIRouter) {
        for path in ["/api/auth/signup", "/api/auth/register"] {
            router.add(.POST, path) { [unowned self] in try await self.signup($0) }
        }
        router.add(.POST, "/api/auth/login") { [unowned self] in try await self.login($0) }
        router.add(.POST, "/api/auth/refresh") { [unowned self] in try await self.refresh($0) }
        router.add(.POST, "/api/auth/logout", authenticated: true) { [unowned self] in try await self.logout($0) }
        for path in ["/api/auth/profile", "/api/users/me"] {
            router.add(.GET, path, authenticated: true) { [unowned self] in try await self.profile($0) }
            router.add(.PATCH, path, authenticated: true) { [unowned self] in try await self.updateProfile($0) }
        }
        router.add(.POST, "/api/auth/change-password", authenticated: true) { [unowned self] in try await self.changePassword($0) }
        router.add(.DELETE, "/api/users/me", authenticated: true) { [unowned self] in try await self.deleteAccount($0) }
    }

    /// Throws `invalid_credentials` unless `password` is the user's (the login limits apply: a
    /// stolen access token cannot guess the password faster than a login could).
    private func confirmPassword(_ password: String, of userID: Int64) async throws {
        try await loginLimits.checkLoginAccount(LoginLimits.accountKey(userID: userID))
        let rows = try await database.query("SELECT password_hash FROM users WHERE id = $1", [.int64(userID)])
        guard let stored = try rows.first?.string("password_hash") else { throw SessionTokens.accountGone }
        let hasher = self.hasher
        guard password.utf8.count <= 1024, try await hashPool.run({ hasher.verify(password, against: stored) }) else {
            throw Self.invalidCredentials
        }
    }

    /// `DELETE /api/users/me {password}` (issue 14): the account becomes "Deleted user": its
    /// username (`deleted-<id>`) and email are freed, its display name, avatar, status and
    /// password erased, every session ended (refresh tokens, access tokens, sockets). Its messages,
    /// reactions and memberships stay, shown under "Deleted user" (the conversations of the others
    /// keep their history and seqs). 200 `{message}`.
    private func deleteAccount(_ request: APIRequest) async throws -> HTTPResponse {
        let principal = try request.caller
        let password = try request.jsonObject().requiredString("password")
        try await confirmPassword(password, of: principal.userID)
        try await database.query("""
            UPDATE users SET username = $2 || id, email = $2 || id || '@deleted.invalid', display_name = 'Deleted user',
                password_hash = '!', avatar_url = NULL, status_text = NULL
            WHERE id = $1
            """, [.int64(principal.userID), .string(AccountRules.deletedUsernamePrefix)])
        let sessions = try await database.query(
            "SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL", [.int64(principal.userID)])
        for row in sessions { try await tokens.revokeSession(try row.string("family_id"), userID: principal.userID) }
        try await tokens.logout(principal)
        logger.info("account deleted", ["userId": .int(principal.userID)])
        return .json(.ok, ["message": "Account deleted"])
    }

    /// Longest status line, in characters.
    static let statusTextLength = 140

    /// `PATCH /api/users/me {displayName? | fullName?, avatarUrl?, statusText?}` (issue 14): each
    /// field given is set (`null` clears the avatar and the status); 200 with the profile.
    private func updateProfile(_ request: APIRequest) async throws -> HTTPResponse {
        let userID = try request.caller.userID
        let body = try request.jsonObject()
        var displayName: String?
        for field in ["displayName", "fullName"] {
            guard let value = body[field], !value.isNull else { continue }
            guard let text = value.stringValue else { throw APIError.invalidField(field, "field '\(field)' must be a string") }
            displayName = try AccountRules.printableLine(text, field: field, length: AccountRules.displayNameLength)
        }
        func clearable(_ field: String, _ check: (String) throws(APIError) -> String) throws(APIError) -> String?? {
            guard let value = body[field] else { return nil }  // not given: unchanged
            if value.isNull { return .some(nil) }
            guard let text = value.stringValue else { throw APIError.invalidField(field, "field '\(field)' must be a string or null") }
            return .some(try check(text))
        }
        let policy = avatarPolicy
        let avatar = try clearable("avatarUrl") { url throws(APIError) in
            do {
                try AttachmentRules.validateURL(url, policy: policy)
            } catch {
                throw APIError.invalidField("avatarUrl", "field 'avatarUrl' must be an absolute https:// URL of at most 2048 bytes on an allowed host (ATTACHMENT_HOSTS)")
            }
            return url
        }
        let status = try clearable("statusText") { text throws(APIError) in
            try AccountRules.printableLine(text, field: "statusText", length: 0...Self.statusTextLength)
        }
        guard displayName != nil || avatar != nil || status != nil else {
            throw APIError.validation("give at least one of displayName (or fullName), avatarUrl, statusText")
        }
        let update: PostgresQuery = """
            UPDATE users SET display_name = coalesce(\(displayName), display_name),
                avatar_url = CASE WHEN \(avatar != nil ? "set" : "keep") = 'set' THEN \(avatar ?? nil) ELSE avatar_url END,
                status_text = CASE WHEN \(status != nil ? "set" : "keep") = 'set' THEN nullif(\(status ?? nil), '') ELSE status_text END
            WHERE id = \(userID)
            RETURNING \(unescaped: UserRecord.columns)
            """
        guard let row = try await database.query(update).first else { throw SessionTokens.accountGone }
        return .json(.ok, ["user": try UserRecord(row: row).json])
    }

    /// `POST /api/auth/change-password {currentPassword, newPassword}` (issue 14): the current
    /// password must match (the login limits apply); the new one follows the signup rules. Every
    /// other session of the user ends (its refresh tokens, its access tokens, its sockets); the
    /// caller's stays. 200 `{message, revokedSessions}`.
    private func changePassword(_ request: APIRequest) async throws -> HTTPResponse {
        let principal = try request.caller
        let body = try request.jsonObject()
        let current = try body.requiredString("currentPassword")
        let next = try body.requiredString("newPassword")
        try AccountRules.password(next)
        try await confirmPassword(current, of: principal.userID)
        let hasher = self.hasher
        let hash = try await hashPool.run { () -> String? in try? hasher.hash(next) }
        guard let hash else { throw APIError.internalError("could not hash the password") }
        try await database.query("UPDATE users SET password_hash = $2 WHERE id = $1", [.int64(principal.userID), .string(hash)])
        let sessions = try await database.query("""
            SELECT DISTINCT family_id FROM refresh_tokens
            WHERE user_id = $1 AND revoked_at IS NULL AND family_id IS DISTINCT FROM $2
            """, [.int64(principal.userID), principal.sessionID.map { .string($0) }])
        for row in sessions { try await tokens.revokeSession(try row.string("family_id"), userID: principal.userID) }
        logger.info("password changed", ["userId": .int(principal.userID), "revokedSessions": .int(Int64(sessions.count))])
        return .json(.ok, ["message": "Password changed", "revokedSessions": .int(Int64(sessions.count))])
    }

    // MARK: RequestAuthenticator

    func authenticate(_ request: HTTPRequest) async throws -> Principal {
        guard let header = request.headers["Authorization"] else {
            throw APIError.unauthorized(.tokenMissing, "send 'Authorization: Bearer <token>'")
        }
        guard let token = BearerToken.parse(header) else {
            throw APIError.unauthorized(.tokenMalformed, "the Authorization header must be 'Bearer <token>'")
        }
        return try await tokens.authenticate(bearer: token)
    }

    // MARK: Handlers

    private func signup(_ request: APIRequest) async throws -> HTTPResponse {
        try await loginLimits.checkSignup(request: request)
        let body = try request.jsonObject()
        let username = try AccountRules.username(try body.requiredString("username"))
        let email = try AccountRules.email(try body.requiredString("email"))
        let password = try body.requiredString("password")
        try AccountRules.password(password)
        let displayName = try AccountRules.displayName(try body.optionalString("displayName"), username: username)

        // Cheap duplicate check first, so a taken name costs no hashing; the unique indexes still decide races.
        try await rejectDuplicates(username: username, email: email)
        let hasher = self.hasher
        let hash = try await hashPool.run { () -> String? in try? hasher.hash(password) }
        guard let hash else { throw APIError.internalError("could not hash the password") }
        let insert: PostgresQuery = """
            INSERT INTO users (username, email, password_hash, display_name) VALUES (\(username), \(email), \(hash), \(displayName))
            RETURNING \(unescaped: UserRecord.columns)
            """
        let rows: PostgresRows
        do {
            rows = try await database.query(insert)
        } catch {
            throw Self.duplicateError(error) ?? error
        }
        guard let row = rows.first else { throw APIError.internalError() }
        let user = try UserRecord(row: row)
        logger.info("user registered", ["userId": .int(user.id), "requestId": .string(request.context.requestID)])
        return .json(.created, ["message": "User registered successfully", "user": user.json])
    }

    private func rejectDuplicates(username: String, email: String) async throws {
        let rows = try await database.query("""
            SELECT lower(username) = lower($1) AS same_username, email = $2 AS same_email
            FROM users WHERE lower(username) = lower($1) OR email = $2 LIMIT 2
            """, [.string(username), .string(email)])
        for row in rows {
            if try row.bool("same_username") { throw Self.usernameTaken }
            if try row.bool("same_email") { throw Self.emailTaken }
        }
    }

    private static let usernameTaken = APIError(.usernameTaken)
    private static let emailTaken = APIError(.emailTaken)

    private static func duplicateError(_ error: PostgresError) -> APIError? {
        guard case .server(let server) = error, server.sqlState == PostgresSQLState.uniqueViolation else { return nil }
        switch server.constraint {
        case "users_username_key": return usernameTaken
        case "users_email_key": return emailTaken
        default: return nil
        }
    }

    private func login(_ request: APIRequest) async throws -> HTTPResponse {
        let body = try request.jsonObject()
        let email = try AccountRules.sqlText(try body.optionalString("email"), field: "email")
        let username = try AccountRules.sqlText(try body.optionalString("username"), field: "username")
        let password = try body.requiredString("password")
        guard let identifier = email ?? username else { throw APIError.validation("field 'email' or 'username' is required") }
        try await loginLimits.checkLoginAddress(request: request)
        let rows: PostgresRows
        if let email {
            rows = try await database.query("SELECT \(UserRecord.columns), password_hash FROM users WHERE email = $1",
                                            [.string(String(Substring(email).trimmingSpaces()).lowercased())])
        } else {
            rows = try await database.query("SELECT \(UserRecord.columns), password_hash FROM users WHERE lower(username) = lower($1)",
                                            [.string(identifier)])
        }
        // One budget per account, whichever identifier named it; misses on unknown names are limited per name.
        let accountKey = try rows.first.map { LoginLimits.accountKey(userID: try $0.int64("id")) } ?? LoginLimits.unknownAccountKey(identifier)
        try await loginLimits.checkLoginAccount(accountKey)
        let hasher = self.hasher
        guard let row = rows.first, password.utf8.count <= 1024 else {
            // Same work as a real check, so timing does not reveal whether the account exists.
            _ = try await hashPool.run { hasher.verifyWithoutAccount(password) }
            throw Self.invalidCredentials
        }
        let stored = try row.string("password_hash")
        let matches = try await hashPool.run { hasher.verify(password, against: stored) }
        guard matches else { throw Self.invalidCredentials }
        let user = try UserRecord(row: row)
        let issued = try await tokens.startSession(userID: user.id)
        logger.info("login", ["userId": .int(user.id), "requestId": .string(request.context.requestID)])
        return .json(.ok, Self.tokenBody(issued, user: user))
    }

    private static let invalidCredentials = APIError.unauthorized(.invalidCredentials)

    private static func tokenBody(_ issued: SessionTokens.IssuedTokens, user: UserRecord) -> JSONValue {
        [
            "token": .string(issued.accessToken),
            "refreshToken": .string(issued.refreshToken),
            "tokenType": "Bearer",
            "expiresIn": .int(issued.expiresIn),
            "user": user.json,
        ]
    }

    private func refresh(_ request: APIRequest) async throws -> HTTPResponse {
        let body = try request.jsonObject()
        let presented = try AccountRules.sqlText(try body.requiredString("refreshToken"), field: "refreshToken")
        let (userID, issued) = try await tokens.refresh(presented)
        let user = try await loadUser(userID)
        return .json(.ok, Self.tokenBody(issued, user: user))
    }

    private func logout(_ request: APIRequest) async throws -> HTTPResponse {
        try await tokens.logout(try request.caller)
        return .json(.ok, ["message": "Logged out"])
    }

    private func profile(_ request: APIRequest) async throws -> HTTPResponse {
        let user = try await loadUser(try request.caller.userID)
        return .json(.ok, ["user": user.json])
    }

    private func loadUser(_ id: Int64) async throws -> UserRecord {
        let rows = try await database.query("SELECT \(UserRecord.columns) FROM users WHERE id = $1", [.int64(id)])
        guard let row = rows.first else {
            // The token is valid but the account is gone: treat it as a dead token.
            throw SessionTokens.accountGone
        }
        return try UserRecord(row: row)
    }
}
