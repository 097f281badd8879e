import JSON
import Runtime

/// The claims this service puts in, and reads from, its access and refresh tokens.
package struct JWTClaims: Sendable, Equatable {
    /// `sub`: the user id.
    package var subject: String
    /// `iat`: issue time, seconds since the epoch.
    package var issuedAt: Int64
    /// `exp`: expiry time, seconds since the epoch.
    package var expiresAt: Int64
    /// `jti`: unique token id, the key for revocation.
    package var id: String
    /// `iss`, when the service is configured with one.
    package var issuer: String?
    /// `aud`. When a verified token carries an array, this is the configured audience it matched (or
    /// the first entry when no audience is configured).
    package var audience: String?
    /// `typ` (a private claim, not the header's `typ`): distinguishes e.g. "access" from "refresh"
    /// tokens so one cannot be used as the other.
    package var tokenType: String?
    /// `sid`: the login session (refresh-token family) the token belongs to, when there is one.
    package var sessionID: String?

    /// Creates a claim set.
    package init(
        subject: String,
        issuedAt: Int64,
        expiresAt: Int64,
        id: String,
        issuer: String? = nil,
        audience: String? = nil,
        tokenType: String? = nil,
        sessionID: String? = nil
    ) {
        self.subject = subject
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.id = id
        self.issuer = issuer
        self.audience = audience
        self.tokenType = tokenType
        self.sessionID = sessionID
    }
}

/// Why a token was refused; `message` is a sentence for people (the API layer names the code, `ErrorCode.token`).
package enum JWTError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not a well-formed JWS compact token of ours; the text says which part is wrong.
    case malformed(String)
    /// The header names an algorithm other than HS256 (empty when `alg` is missing or not a string).
    case unsupportedAlgorithm(String)
    /// The signature does not match.
    case badSignature
    /// `exp` has passed (beyond the leeway).
    case expired
    /// `iat` or `nbf` lies in the future (beyond the leeway).
    case notYetValid
    /// `iss` is not the configured issuer.
    case wrongIssuer
    /// `aud` does not contain the configured audience.
    case wrongAudience

    /// A sentence explaining the refusal.
    package var message: String {
        switch self {
        case .malformed(let detail): "token is malformed: \(detail)"
        case .unsupportedAlgorithm(let algorithm) where algorithm.isEmpty:
            "token header does not name an algorithm; only HS256 is accepted"
        case .unsupportedAlgorithm(let algorithm): "token algorithm '\(algorithm)' is not accepted; only HS256 is"
        case .badSignature: "token signature is invalid"
        case .expired: "token has expired"
        case .notYetValid: "token is not valid yet"
        case .wrongIssuer: "token was issued by another issuer"
        case .wrongAudience: "token is intended for another audience"
        }
    }

    /// Same as `message`.
    package var description: String { message }
}

/// Signs and verifies HS256 JSON Web Tokens (RFC 7519 / RFC 7515 compact form).
///
/// The algorithm is pinned: whatever the header says, only HMAC-SHA256 with this signer's secrets is
/// ever computed, and a header naming anything else (`none`, `HS512`, `RS256`, nothing) is refused
/// before the signature is looked at. The signature is checked in constant time over the exact bytes
/// received, before any payload claim is trusted.
///
/// Key rotation without logging anyone out (issue 18): tokens are signed with `secret` and carry
/// its key id (`kid`, derived from the secret, so every gateway with the same secret agrees);
/// `acceptedSecrets` are verified too, never used to sign. A token names its key; one without a
/// `kid` (issued before key ids) is tried against each key in turn.
package struct JWTSigner: Sendable {
    /// Tokens longer than this are refused without further work.
    package static let maximumTokenLength = 8192
    /// Most clock skew a signer tolerates: a leeway beyond a token's lifetime would accept expired tokens.
    package static let maximumLeewaySeconds: Int64 = 3_600
    /// RFC 7518 requires an HS256 key of at least 256 bits; configuration should enforce this.
    package static let minimumSecretLength = 32
    /// `iat`, `exp` and `nbf` outside this range (1970-01-01 to 9999-12-31, in seconds) are refused as
    /// malformed: no service issues them, and every later computation on a token time (expiry
    /// timers in milliseconds, revocation TTLs) then stays far from overflow.
    package static let timestampRange: ClosedRange<Int64> = 0...253_402_300_799
    /// Header and payload are flat objects; deeper JSON is not ours.
    private static let maximumClaimDepth = 8
    /// At most this many keys (the signing one and those accepted during a rotation).
    package static let maximumKeys = 4

    /// `{"alg":"HS256","typ":"JWT","kid":"<signing key id>"}`, encoded once.
    private let encodedHeader: String
    /// The signing key first, then the accepted ones: `(kid, secret)`.
    private let keys: [(id: String, secret: [UInt8])]
    /// The signing key's id (`kid` of every token this signer issues).
    package var keyID: String { keys[0].id }
    /// Required `iss`, when set.
    package let issuer: String?
    /// Required `aud` member, when set.
    package let audience: String?
    /// Clock skew tolerated on `exp`, `iat` and `nbf`, in seconds.
    package let leewaySeconds: Int64

    /// Creates a signer. Each secret should be at least `minimumSecretLength` random bytes;
    /// `acceptedSecrets` (verified, never used to sign) beyond `maximumKeys - 1` are ignored.
    package init(secret: [UInt8], acceptedSecrets: [[UInt8]] = [], issuer: String?, audience: String?, leewaySeconds: Int64 = 5) {
        keys = ([secret] + acceptedSecrets.prefix(Self.maximumKeys - 1)).map { (Self.keyID(of: $0), $0) }
        encodedHeader = Base64URL.encode(JSONValue.object(["alg": "HS256", "typ": "JWT", "kid": .string(Self.keyID(of: secret))]).serialized())
        self.issuer = issuer
        self.audience = audience
        // Configuration allows 0-300 s; an hour bounds it even for other callers.
        self.leewaySeconds = min(max(0, leewaySeconds), Self.maximumLeewaySeconds)
    }

    /// Claims for a new token: this signer's issuer and audience, a random 128-bit `jti`.
    package func makeClaims(
        subject: String,
        issuedAt: Int64,
        lifetimeSeconds: Int64,
        tokenType: String? = nil,
        sessionID: String? = nil
    ) -> JWTClaims {
        JWTClaims(
            subject: subject,
            issuedAt: issuedAt,
            expiresAt: issuedAt.addingSaturated(lifetimeSeconds),
            id: SecureRandom.token(byteCount: 16),
            issuer: issuer,
            audience: audience,
            tokenType: tokenType,
            sessionID: sessionID
        )
    }

    /// The signed compact token for `claims`.
    package func sign(_ claims: JWTClaims) -> String {
        var payload = JSONObject()
        if let issuer = claims.issuer {
            payload["iss"] = .string(issuer)
        }
        payload["sub"] = .string(claims.subject)
        if let audience = claims.audience {
            payload["aud"] = .string(audience)
        }
        payload["iat"] = .int(claims.issuedAt)
        payload["exp"] = .int(claims.expiresAt)
        payload["jti"] = .string(claims.id)
        if let tokenType = claims.tokenType {
            payload["typ"] = .string(tokenType)
        }
        if let sessionID = claims.sessionID {
            payload["sid"] = .string(sessionID)
        }
        let signingInput = encodedHeader + "." + Base64URL.encode(JSONValue.object(payload).serialized())
        let signature = HMACSHA256.authenticationCode(key: keys[0].secret, message: signingInput.utf8)
        return signingInput + "." + Base64URL.encode(signature)
    }

    /// Verifies `token` at time `now` (seconds since the epoch) and returns its claims.
    package func verify(_ token: String, now: Int64) throws(JWTError) -> JWTClaims {
        let bytes = Array(token.utf8)
        guard bytes.count <= Self.maximumTokenLength else {
            throw .malformed("token is longer than \(Self.maximumTokenLength) bytes")
        }
        let segments = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard segments.count == 3 else {
            throw .malformed("expected three segments separated by '.'")
        }
        guard !segments[0].isEmpty, !segments[1].isEmpty else {
            throw .malformed("header and payload must not be empty")
        }

        // 1. Header: the algorithm must be ours before anything else happens.
        let header = try decodeObject(segments[0], part: "header")
        guard case .string(let algorithm)? = header["alg"] else {
            throw .unsupportedAlgorithm("")
        }
        guard algorithm == "HS256" else {
            throw .unsupportedAlgorithm(algorithm)
        }
        if header.contains("crit") {
            throw .malformed("critical header parameters are not supported")
        }

        // 2. Signature over the bytes exactly as received.
        guard let signature = Base64URL.decode(bytes: segments[2]) else {
            throw .malformed("signature is not valid base64url")
        }
        let signingInput = bytes[..<segments[1].endIndex]
        let candidates: [[UInt8]]
        switch header["kid"] {
        case .string(let keyID)?:
            // A token names its key: only that one is tried (an unknown id is a bad signature).
            candidates = keys.filter { $0.id == keyID }.map(\.secret)
        case nil:
            candidates = keys.map(\.secret)
        default:
            throw .malformed("kid must be a string")
        }
        guard candidates.contains(where: { ConstantTime.equals(signature, HMACSHA256.authenticationCode(key: $0, message: signingInput)) }) else {
            throw .badSignature
        }

        // 3. Only now is the payload trusted enough to read.
        let payload = try decodeObject(segments[1], part: "payload")
        let claims = try readClaims(payload)
        try checkIssuerAndAudience(payload)

        if claims.expiresAt <= now.subtractingSaturated(leewaySeconds) {
            throw .expired
        }
        let latestAcceptedStart = now.addingSaturated(leewaySeconds)
        if claims.issuedAt > latestAcceptedStart {
            throw .notYetValid
        }
        let notBefore = try claim(payload) { (object) throws(JSONFieldError) in try object.optionalInt64("nbf") }
        if let notBefore { try Self.checkTime(notBefore, claim: "nbf") }
        if let notBefore, notBefore > latestAcceptedStart {
            throw .notYetValid
        }
        return claims
    }

    /// A key's id: the first 8 bytes of HMAC-SHA256(secret, "swift-chat jwt key id"), in hex. It
    /// names the key without revealing it, and every process with the same secret derives the same.
    package static func keyID(of secret: [UInt8]) -> String {
        Hex.encode(Array(HMACSHA256.authenticationCode(key: secret, message: "swift-chat jwt key id".utf8).prefix(8)))
    }

    private func decodeObject(_ segment: ArraySlice<UInt8>, part: String) throws(JWTError) -> JSONObject {
        guard let json = Base64URL.decode(bytes: segment) else {
            throw .malformed("\(part) is not valid base64url")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(json, maxDepth: Self.maximumClaimDepth)
        } catch {
            throw .malformed("\(part) is not valid JSON (\(error.reason))")
        }
        guard case .object(let object) = value else {
            throw .malformed("\(part) is not a JSON object")
        }
        return object
    }

    private func readClaims(_ payload: JSONObject) throws(JWTError) -> JWTClaims {
        let claims = try claim(payload) { (object) throws(JSONFieldError) in
            var claims = JWTClaims(
                subject: try object.requiredString("sub"),
                issuedAt: try object.requiredInt64("iat"),
                expiresAt: try object.requiredInt64("exp"),
                id: try object.requiredString("jti"),
                issuer: try object.optionalString("iss"),
                tokenType: try object.optionalString("typ"),
                sessionID: try object.optionalString("sid")
            )
            claims.audience = try audienceClaim(object)
            return claims
        }
        try Self.checkTime(claims.issuedAt, claim: "iat")
        try Self.checkTime(claims.expiresAt, claim: "exp")
        return claims
    }

    /// Refuses a token time outside `timestampRange` as malformed.
    private static func checkTime(_ seconds: Int64, claim: String) throws(JWTError) {
        guard timestampRange.contains(seconds) else {
            throw .malformed("claim '\(claim)' must be a time between 1970 and 9999 (seconds since the epoch)")
        }
    }

    /// `aud` as RFC 7519 allows it: one string or an array of strings.
    private func audienceClaim(_ payload: JSONObject) throws(JSONFieldError) -> String? {
        guard let value = payload["aud"], !value.isNull else { return nil }
        if case .string(let audience) = value {
            return audience
        }
        guard case .array(let elements) = value else {
            throw JSONFieldError(field: "aud", problem: .wrongType(expected: "a string or an array of strings"))
        }
        var audiences: [String] = []
        for element in elements {
            guard case .string(let audience) = element else {
                throw JSONFieldError(field: "aud", problem: .wrongType(expected: "a string or an array of strings"))
            }
            audiences.append(audience)
        }
        if let configured = self.audience, audiences.contains(configured) {
            return configured
        }
        return audiences.first
    }

    private func checkIssuerAndAudience(_ payload: JSONObject) throws(JWTError) {
        if let issuer, payload["iss"] != .string(issuer) {
            throw .wrongIssuer
        }
        guard let audience else { return }
        switch payload["aud"] {
        case .string(let value)? where value == audience:
            return
        case .array(let values)? where values.contains(.string(audience)):
            return
        default:
            throw .wrongAudience
        }
    }

    /// Runs a field read, turning its error into `.malformed` that names the claim.
    private func claim<T>(
        _ payload: JSONObject,
        _ read: (JSONObject) throws(JSONFieldError) -> T
    ) throws(JWTError) -> T {
        do {
            return try read(payload)
        } catch {
            switch error.problem {
            case .missing: throw .malformed("claim '\(error.field)' is missing")
            case .wrongType(let expected): throw .malformed("claim '\(error.field)' must be \(expected)")
            case .invalid(let requirement): throw .malformed("claim '\(error.field)' \(requirement)")
            }
        }
    }
}
