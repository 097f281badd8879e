import API
import Support

/// The rules every account obeys, checked before anything touches the database.
package enum AccountRules {
    package static let usernameLength = 3...32
    package static let passwordLength = 8...128
    package static let displayNameLength = 1...64
    package static let maxEmailLength = 254

    /// A username: 3-32 of `[A-Za-z0-9_.-]`. Unique case-insensitively (enforced by the database).
    package static func username(_ raw: String) throws(APIError) -> String {
        let bytes = Array(raw.utf8)
        guard usernameLength.contains(bytes.count) else {
            throw APIError.invalidField("username", "field 'username' must be \(usernameLength.lowerBound)-\(usernameLength.upperBound) characters")
        }
        for byte in bytes where !isUsernameByte(byte) {
            throw APIError.invalidField("username", "field 'username' may contain only letters, digits, '_', '.' and '-'")
        }
        guard !raw.lowercased().hasPrefix(deletedUsernamePrefix) else {
            throw APIError.invalidField("username", "field 'username' must not start with '\(deletedUsernamePrefix)'")
        }
        return raw
    }

    /// Deleted accounts are renamed `deleted-<id>` (issue 14), a prefix signups may not take.
    package static let deletedUsernamePrefix = "deleted-"

    private static func isUsernameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// A plausible address (`local@domain.tld`), trimmed and lower-cased for storage.
    package static func email(_ raw: String) throws(APIError) -> String {
        let email = String(Substring(raw).trimmingSpaces()).lowercased()
        let invalid = APIError.invalidField("email", "field 'email' must be a valid email address")
        guard email.utf8.count <= maxEmailLength else { throw invalid }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw invalid }
        let local = parts[0], domain = parts[1]
        guard (1...64).contains(local.utf8.count), !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..") else { throw invalid }
        for byte in local.utf8 where byte <= 0x20 || byte >= 0x7F || "\"(),:;<>[\\]".utf8.contains(byte) { throw invalid }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, domain.utf8.count <= 253 else { throw invalid }
        for label in labels {
            guard (1...63).contains(label.utf8.count), !label.hasPrefix("-"), !label.hasSuffix("-") else { throw invalid }
            for byte in label.utf8 {
                let ok = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-")
                guard ok else { throw invalid }
            }
        }
        guard let tld = labels.last, tld.utf8.contains(where: { $0 >= UInt8(ascii: "a") }) else { throw invalid }
        return email
    }

    /// Text bound to SQL as typed (login identifiers, tokens, search terms): PostgreSQL text
    /// cannot hold NUL, so it is refused here with a 422 naming the field, not by the database.
    package static func sqlText(_ raw: String?, field: String) throws(APIError) -> String? {
        guard let raw else { return nil }
        guard !raw.utf8.contains(0) else {
            throw APIError.invalidField(field, "field '\(field)' must not contain NUL characters")
        }
        return raw
    }

    /// `sqlText` for a value that is present.
    package static func sqlText(_ raw: String, field: String) throws(APIError) -> String {
        guard !raw.utf8.contains(0) else {
            throw APIError.invalidField(field, "field '\(field)' must not contain NUL characters")
        }
        return raw
    }

    /// 8-128 characters (Unicode scalars).
    package static func password(_ raw: String) throws(APIError) {
        let length = raw.unicodeScalars.count
        guard passwordLength.contains(length) else {
            throw APIError.invalidField("password", "field 'password' must be \(passwordLength.lowerBound)-\(passwordLength.upperBound) characters")
        }
    }

    /// An optional display name, 1-64 characters without control characters; defaults to the username.
    package static func displayName(_ raw: String?, username: String) throws(APIError) -> String {
        guard let raw else { return username }
        return try printableLine(raw, field: "displayName", length: displayNameLength)
    }

    /// A one-line name (a display name, a room's name): trimmed, `length` characters (Unicode
    /// scalars), no control characters (NUL included).
    package static func printableLine(_ raw: String, field: String, length: ClosedRange<Int>) throws(APIError) -> String {
        let trimmed = String(Substring(raw).trimmingSpaces())
        guard length.contains(trimmed.unicodeScalars.count) else {
            throw APIError.invalidField(field, "field '\(field)' must be \(length.lowerBound)-\(length.upperBound) characters")
        }
        for scalar in trimmed.unicodeScalars where scalar.properties.generalCategory == .control {
            throw APIError.invalidField(field, "field '\(field)' must not contain control characters")
        }
        return trimmed
    }
}
