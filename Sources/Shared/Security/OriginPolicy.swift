import Support

/// Which browser origins may open sockets (the `Origin` header of the upgrade request).
///
/// Requests without `Origin` come from non-browser clients (mobile apps, servers, python-socketio)
/// that a cross-site attacker cannot drive, so they are allowed; a browser always sends it.
package struct OriginPolicy: Sendable, Equatable {
    /// `nil` means any origin (`*`, development only).
    private let allowed: Set<String>?

    /// Parses a comma-separated list (`https://app.example.com, http://localhost:5173`) or `*`.
    package init(list: String) throws(ConfigurationError) {
        let entries = list.split(separator: ",").map { String($0.trimmingSpaces()) }.filter { !$0.isEmpty }
        if entries.contains("*") {
            allowed = nil
            return
        }
        var origins = Set<String>()
        for entry in entries {
            guard let origin = Self.normalize(entry) else {
                throw ConfigurationError("ALLOWED_ORIGINS", "'\(entry)' is not an origin like https://app.example.com")
            }
            origins.insert(origin)
        }
        allowed = origins
    }

    /// Whether every origin is allowed.
    package var allowsAny: Bool { allowed == nil }

    /// Whether a request with this `Origin` header may connect. A same-origin request (the
    /// origin's host and port are the request's `Host`) is always allowed: a page served by this
    /// very host is not a cross-site attacker, and some clients send such an `Origin` by default.
    package func allows(_ origin: String?, host: String? = nil) -> Bool {
        guard let origin else { return true }
        guard let allowed else { return true }
        guard let normalized = Self.normalize(origin) else { return false }
        if let host, Self.authority(ofOrigin: normalized) == Self.authority(host: host, scheme: Self.scheme(of: normalized)) {
            return true
        }
        return allowed.contains(normalized)
    }

    private static func scheme(of normalized: String) -> String {
        normalized.hasPrefix("https://") ? "https" : "http"
    }

    /// `host:port` of a normalized origin, with the scheme's default port made explicit.
    private static func authority(ofOrigin normalized: String) -> String {
        let scheme = scheme(of: normalized)
        let rest = String(normalized.dropFirst(scheme.count + 3))
        return authority(host: rest, scheme: scheme)
    }

    /// `host:port` of a `Host` header value, lower-cased, with the default port made explicit.
    private static func authority(host: String, scheme: String) -> String {
        let lower = host.lowercased()
        // An IPv6 literal ends with "]" when it has no port.
        if let colon = lower.lastIndex(of: ":"), !lower.hasSuffix("]") {
            return lower[colon...].count > 1 ? lower : String(lower[..<colon]) + (scheme == "https" ? ":443" : ":80")
        }
        return lower + (scheme == "https" ? ":443" : ":80")
    }

    /// `scheme://host[:port]`, lower-cased, default ports dropped; nil if it is not such a thing.
    static func normalize(_ text: String) -> String? {
        let lower = text.lowercased()
        let scheme: String
        if lower.hasPrefix("https://") { scheme = "https" } else if lower.hasPrefix("http://") { scheme = "http" } else { return nil }
        var rest = lower.dropFirst(scheme.count + 3)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@"), !rest.contains(" ") else { return nil }
        if scheme == "https", rest.hasSuffix(":443") { rest = rest.dropLast(4) }
        if scheme == "http", rest.hasSuffix(":80") { rest = rest.dropLast(3) }
        return "\(scheme)://\(rest)"
    }
}
