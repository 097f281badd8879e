import Support

extension SettingsReader {
    /// A `RateLimitPolicy` from `<count>/<window>` or `off` (nil).
    package func rateLimit(_ name: String, policyName: String) throws(ConfigurationError) -> RateLimitPolicy? {
        let text = try string(name)
        do throws(RateLimitPolicyError) {
            return try RateLimitPolicy.parse(text, name: policyName)
        } catch {
            throw ConfigurationError(name, error.message)
        }
    }

    /// `allow`, `deny` or `local`.
    package func rateLimitFailureMode(_ name: String) throws(ConfigurationError) -> RateLimitFailureMode {
        let text = try string(name)
        guard let mode = RateLimitFailureMode(rawValue: text.lowercased()) else {
            throw ConfigurationError(name, "must be allow, deny or local; got '\(text)'")
        }
        return mode
    }
}
