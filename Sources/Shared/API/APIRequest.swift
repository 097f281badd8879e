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
            guard let principal else { throw APIError.unauthorized("token_missing", "this endpoint needs a bearer token") }
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
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type",
                           message: contentType.isEmpty ? "send the body as application/json (Content-Type is missing)"
                                                        : "send the body as application/json, not \(contentType)")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(http.body)
        } catch {
            throw APIError(.badRequest, code: "invalid_json", message: "invalid JSON: \(error.message)")
        }
        guard case .object(let object) = value else {
            throw APIError.validation("the request body must be a JSON object")
        }
        return object
    }

    /// A path parameter that must be a positive integer id.
    package func idParameter(_ name: String) throws(APIError) -> Int64 {
        guard let text = parameters[name], let id = Int64(text), id > 0 else {
            throw APIError.validation("path parameter '\(name)' must be a positive integer")
        }
        return id
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
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    package func trimmingSpaces() -> Substring {
        var slice = self
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return slice
    }
}
