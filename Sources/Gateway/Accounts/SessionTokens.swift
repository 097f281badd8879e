import Shared

/// Issues and checks the two tokens of a login session.
///
/// - The **access token** is a short-lived HS256 JWT (`sub`, `iat`, `exp`, `jti`, `sid`). Logout and
///   refresh-token reuse revoke it in Redis until it would have expired anyway.
/// - The **refresh token** is opaque (`<id>.<secret>`); Postgres keeps only a SHA-256 of the secret.
///   Each use rotates it; presenting a rotated one means it was stolen or replayed, so the whole
///   family (the session, `sid`) is revoked.
@LoopActor
final class SessionTokens {
    private let signer: JWTSigner
    private let database: PostgresPool
    private let redis: RedisClient
    let accessTokenTTLSeconds: Int64
    private let refreshTokenTTLSeconds: Int64
    /// Token times (the system clock; a manual clock in tests, the one the sockets use).
    private let clock: any LoopClock

    init(signer: JWTSigner, database: PostgresPool, redis: RedisClient, accessTokenTTLSeconds: Int64, refreshTokenTTLSeconds: Int64,
         clock: any LoopClock = SystemClock.shared) {
        self.signer = signer
        self.clock = clock
        self.database = database
        self.redis = redis
        self.accessTokenTTLSeconds = accessTokenTTLSeconds
        self.refreshTokenTTLSeconds = refreshTokenTTLSeconds
    }

    struct IssuedTokens {
        let accessToken: String
        let refreshToken: String
        let expiresIn: Int64
    }

    static func revokedTokenKey(_ tokenID: String) -> String { "chat:revoked:\(tokenID)" }
    static func revokedSessionKey(_ sessionID: String) -> String { "chat:revoked:sid:\(sessionID)" }

    // MARK: Access tokens

    func makeAccessToken(userID: Int64, sessionID: String) -> String {
        let now = clock.wallSeconds()
        let claims = JWTClaims(subject: String(userID), issuedAt: now, expiresAt: now + accessTokenTTLSeconds,
                               id: SecureRandom.token(byteCount: 16), issuer: signer.issuer, audience: signer.audience,
                               sessionID: sessionID)
        return signer.sign(claims)
    }

    /// Verifies signature, algorithm, time and audience, then asks Redis whether the token or its
    /// session was revoked. Redis down → 503: revocation must not be skipped silently.
    func authenticate(bearer token: String) async throws -> Principal {
        let principal = try verify(token)
        try await checkNotRevoked(principal)
        return principal
    }

    /// The caller a token names, from the token alone (signature, algorithm, times, issuer,
    /// audience); revocation is `checkNotRevoked`'s job.
    func verify(_ token: String) throws(APIError) -> Principal {
        let claims: JWTClaims
        do {
            claims = try signer.verify(token, now: clock.wallSeconds())
        } catch {
            throw APIError.unauthorized(error)
        }
        return try Principal(verified: claims)
    }

    /// Throws `token_revoked` when the token or its session was revoked.
    func checkNotRevoked(_ principal: Principal) async throws {
        let revoked = try await redis.send(Self.revocationKeysCommand(principal))
        if case .integer(let count) = revoked, count > 0 { throw Self.revokedError }
    }

    /// Which of `principals` were revoked (one pipelined `EXISTS` each).
    func revoked(_ principals: [Principal]) async throws(RedisError) -> [Principal] {
        let replies = try await redis.pipeline(principals.map(Self.revocationKeysCommand))
        return zip(principals, replies).compactMap { principal, reply in
            if case .integer(let count) = reply, count > 0 { return principal }
            return nil
        }
    }

    /// `EXISTS` of the token's revocation key and, for a token of a session, the session's.
    private static func revocationKeysCommand(_ principal: Principal) -> RedisCommand {
        guard let sessionID = principal.sessionID else { return .exists([revokedTokenKey(principal.tokenID)]) }
        return .exists([revokedTokenKey(principal.tokenID), revokedSessionKey(sessionID)])
    }

    static let revokedError = APIError.unauthorized(.tokenRevoked)
    /// A valid token of an account that was deleted: treated as a dead token.
    static let accountGone = APIError.unauthorized(.tokenRevoked, "this account no longer exists")

    /// The signer (for checks that need no revocation lookup).
    var verifier: JWTSigner { signer }

    // MARK: Sessions

    /// Starts a session for a user who just proved their password.
    func startSession(userID: Int64) async throws -> IssuedTokens {
        let sessionID = SecureRandom.token(byteCount: 16)
        let refresh = try await insertRefreshToken(userID: userID, familyID: sessionID, connection: nil)
        return IssuedTokens(accessToken: makeAccessToken(userID: userID, sessionID: sessionID),
                            refreshToken: refresh, expiresIn: accessTokenTTLSeconds)
    }

    private func insertRefreshToken(userID: Int64, familyID: String, connection: PostgresConnection?) async throws -> String {
        let tokenID = SecureRandom.token(byteCount: 12)
        let secret = SecureRandom.token(byteCount: 32)
        let insert: PostgresQuery = """
            INSERT INTO refresh_tokens (id, family_id, user_id, secret_hash, expires_at)
            VALUES (\(tokenID), \(familyID), \(userID), \(Self.hashSecret(secret)), now() + make_interval(secs => \(refreshTokenTTLSeconds)))
            """
        if let connection {
            _ = try await connection.query(insert)
        } else {
            _ = try await database.query(insert)
        }
        return "\(tokenID).\(secret)"
    }

    private static func hashSecret(_ secret: String) -> String {
        Hex.encode(Digest.sha256(Array(secret.utf8)))
    }

    /// Exchanges a refresh token for a new pair. Reuse of a rotated token revokes the session.
    func refresh(_ presented: String) async throws -> (userID: Int64, tokens: IssuedTokens) {
        let invalid = APIError.unauthorized(.refreshTokenInvalid)
        let parts = presented.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, presented.utf8.count <= 256 else { throw invalid }
        let tokenID = String(parts[0]), secret = String(parts[1])
        let rows = try await database.query("""
            SELECT user_id, family_id, secret_hash, expires_at > now() AS live,
                   rotated_at IS NOT NULL AS rotated, revoked_at IS NOT NULL AS revoked
            FROM refresh_tokens WHERE id = $1
            """, [.string(tokenID)])
        guard let row = rows.first else { throw invalid }
        let storedHash = try row.string("secret_hash")
        guard ConstantTime.equals(Array(Self.hashSecret(secret).utf8), Array(storedHash.utf8)) else { throw invalid }
        let userID = try row.int64("user_id")
        let familyID = try row.string("family_id")
        if try row.bool("revoked") {
            throw APIError.unauthorized(.refreshTokenRevoked)
        }
        if try row.bool("rotated") {
            try await revokeSession(familyID, userID: userID)
            throw APIError.unauthorized(.refreshTokenReused)
        }
        guard try row.bool("live") else {
            throw APIError.unauthorized(.refreshTokenExpired)
        }
        let rotated: String? = try await database.transaction { connection in
            // Conditional update: of two concurrent refreshes with the same token, exactly one wins.
            let claimed = try await connection.query("""
                UPDATE refresh_tokens SET rotated_at = now()
                WHERE id = $1 AND rotated_at IS NULL AND revoked_at IS NULL RETURNING id
                """, [.string(tokenID)])
            guard claimed.count == 1 else { return nil }
            return try await self.insertRefreshToken(userID: userID, familyID: familyID, connection: connection)
        }
        guard let rotated else {
            try await revokeSession(familyID, userID: userID)
            throw APIError.unauthorized(.refreshTokenReused)
        }
        return (userID, IssuedTokens(accessToken: makeAccessToken(userID: userID, sessionID: familyID),
                                     refreshToken: rotated, expiresIn: accessTokenTTLSeconds))
    }

    /// Ends a session: its refresh tokens stop working, its access tokens are refused, and the
    /// sockets running on them are ended on every gateway (the revocation is published on the
    /// user's channel after the mark is set, so a socket whose check raced it still sees one).
    func revokeSession(_ sessionID: String, userID: Int64) async throws {
        try await markRevoked(sessionID: sessionID)
        await publish(TokenRevocation(sessionID: sessionID), userID: userID)
    }

    private func markRevoked(sessionID: String) async throws {
        _ = try await database.query(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
            [.string(sessionID)])
        // Every access token of the session is younger than the access TTL, so the mark can expire then.
        let ttl = accessTokenTTLSeconds.addingSaturated(signer.leewaySeconds)
        _ = try await redis.send(.set(Self.revokedSessionKey(sessionID), "1", expireSeconds: ttl))
    }

    /// Logout: revokes the presented access token and its session.
    func logout(_ principal: Principal) async throws {
        let ttl = principal.revocationTTLSeconds(now: clock.wallSeconds(), leewaySeconds: signer.leewaySeconds,
                                                 maximum: JWTSigner.timestampRange.upperBound)
        _ = try await redis.send(.set(Self.revokedTokenKey(principal.tokenID), "1", expireSeconds: ttl))
        if let sessionID = principal.sessionID { try await markRevoked(sessionID: sessionID) }
        await publish(TokenRevocation(tokenID: principal.tokenID, sessionID: principal.sessionID), userID: principal.userID)
    }

    /// Tells the gateways holding the user's sockets. Pub/sub may lose it (a gateway whose
    /// subscription is down); such a gateway re-checks every socket when it resubscribes.
    private func publish(_ revocation: TokenRevocation, userID: Int64) async {
        _ = try? await redis.send(UserChannelControl.revoke(revocation).publishCommand(userID: userID))
    }
}
