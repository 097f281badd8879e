import HTTP
import JSON
import Runtime
import Security
import Support

/// A routed request as handlers see it: the HTTP request, its context, path parameters and,
/// after authentication, the caller.
package struct APIRequest: Sendable {
    package let http: HTTPRequest
    package let context: HTTPRequestContext
    package let parameters: RouteParameters
    /// The authenticated caller, for routes that require a token.
    package var principal: Principal?

    package init(http: HTTPRequest, context: HTTPRequestContext, parameters: RouteParameters, principal: Principal? = nil) {
        self.http = http
        self.context = context
        self.parameters = parameters
        self.principal = principal
    }

    /// The caller of an authenticated route (a programming error to ask on a public route).
    package var caller: Principal {
        get throws(APIError) {
            guard let principal else { throw APIError.unauthorized(.tokenMissing) }
            return principal
        }
    }

    /// The body as a JSON object: 415 unless the body is JSON, 400 saying where JSON is invalid,
    /// 422 when it is not an object.
    package func jsonObject() throws(APIError) -> JSONObject {
        let contentType = http.headers["Content-Type"] ?? ""
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map {
            $0.trimmingSpaces().lowercased()
        } ?? ""
        guard mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json")) else {
            throw APIError(.unsupportedMediaType,
                           message: contentType.isEmpty ? "send the body as application/json (Content-Type is missing)"
                                                        : "send the body as application/json, not \(contentType)")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(http.body)
        } catch {
            throw APIError(.invalidJSON, message: "invalid JSON: \(error.message)")
        }
        guard case .object(let object) = value else {
            throw APIError.validation("the request body must be a JSON object")
        }
        return object
    }

    /// A path parameter that must be a positive integer id.
    package func idParameter(_ name: String) throws(APIError) -> Int64 {
        guard let text = parameters[name], let id = Int64(text), id > 0 else {
            throw APIError.invalidField(name, "path parameter '\(name)' must be a positive integer")
        }
        return id
    }

    /// A positive integer id; a decimal too large for 64 bits names nothing, so it gets
    /// `outOfRange(text)` (a 404) rather than a validation error.
    package func idParameter(_ name: String, outOfRange: (String) -> APIError) throws(APIError) -> Int64 {
        if let text = parameters[name], !text.isEmpty, text.utf8.count <= 1_000,
           text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), Int64(text) == nil {
            throw outOfRange(text)
        }
        return try idParameter(name)
    }
}

/// The `Authorization: Bearer <token>` header, read the same way by REST and socket upgrades.
package enum BearerToken {
    /// The token, or nil when the header is absent, not `Bearer` (any case), or empty.
    package static func parse(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingSpaces()
        return token.isEmpty ? nil : String(token)
    }
}

/// Who is calling, from a verified access token.
package struct Principal: Sendable, Equatable {
    package let userID: Int64
    /// The token's id (`jti`), for revocation.
    package let tokenID: String
    /// The login session (refresh-token family) the token belongs to.
    package let sessionID: String?
    /// Expiry of the token, seconds since the epoch.
    package let expiresAt: Int64

    package init(userID: Int64, tokenID: String, sessionID: String?, expiresAt: Int64) {
        self.userID = userID
        self.tokenID = tokenID
        self.sessionID = sessionID
        self.expiresAt = expiresAt
    }

    /// The caller a verified token names; its `sub` must be a positive user id.
    package init(verified claims: JWTClaims) throws(APIError) {
        guard let userID = Int64(claims.subject), userID > 0 else {
            throw APIError.unauthorized(.tokenMalformed, "the token's subject is not a user id")
        }
        self.init(userID: userID, tokenID: claims.id, sessionID: claims.sessionID, expiresAt: claims.expiresAt)
    }

    /// `exp` in milliseconds since the epoch (saturating: `exp` is the token holder's choice).
    package var expiresAtMilliseconds: Int64 { expiresAt.multipliedSaturated(by: 1000) }

    /// Milliseconds from `nowMilliseconds` until the token stops being accepted (`exp` plus the
    /// leeway), at least 0. Saturating, so an absurd `exp` gives a far deadline, never a trap.
    package func millisecondsUntilExpiry(nowMilliseconds: Int64, leewaySeconds: Int64) -> Int64 {
        let deadline = expiresAt.addingSaturated(leewaySeconds).multipliedSaturated(by: 1000)
        return max(0, deadline.subtractingSaturated(nowMilliseconds))
    }

    /// Seconds a revocation mark of this token must live: until the token would be refused anyway
    /// (`exp` plus the leeway), at least 1 and at most `maximum`.
    package func revocationTTLSeconds(now: Int64, leewaySeconds: Int64, maximum: Int64) -> Int64 {
        let remaining = expiresAt.addingSaturated(leewaySeconds).subtractingSaturated(now)
        return min(max(1, remaining), max(1, maximum))
    }

    /// Whether a revocation of `sessionID` or of the token `tokenID` covers this principal.
    package func isRevoked(by revocation: TokenRevocation) -> Bool {
        if let tokenID = revocation.tokenID, tokenID == self.tokenID { return true }
        if let sessionID = revocation.sessionID, sessionID == self.sessionID { return true }
        return false
    }
}

/// Tokens that stopped being valid before their expiry: one access token (`jti`, at logout) and/or
/// a whole login session (`sid`, at logout and at refresh-token reuse). Published on the user's
/// channel so every gateway holding a socket of the user ends those sockets at once.
package struct TokenRevocation: Sendable, Equatable {
    /// The revoked access token's `jti`.
    package var tokenID: String?
    /// The revoked login session (refresh-token family).
    package var sessionID: String?

    package init(tokenID: String? = nil, sessionID: String? = nil) {
        self.tokenID = tokenID
        self.sessionID = sessionID
    }
}
