import API

/// What a deployment allows as attachment URLs (issue 14): `https` only, unless `allowHTTP`
/// (development); any host, or only `hosts` (exact names, or `*.example.com` for its subdomains).
/// Gateways check it; workers check only the shape (`structural`), since the policy is the edge's.
package struct AttachmentPolicy: Sendable, Equatable {
    package var allowHTTP: Bool
    /// Lowercased host names; empty: any host.
    package var hosts: [String]

    package init(allowHTTP: Bool = false, hosts: [String] = []) {
        self.allowHTTP = allowHTTP
        self.hosts = hosts.map { $0.lowercased() }
    }

    /// The shape only: `http` or `https`, any host.
    package static let structural = AttachmentPolicy(allowHTTP: true)

    /// Whether `host` (lowercased) is allowed.
    package func allows(host: String) -> Bool {
        guard !hosts.isEmpty else { return true }
        return hosts.contains { entry in
            if entry.hasPrefix("*.") { return host.hasSuffix(entry.dropFirst()) && host.count > entry.count - 1 }
            return host == entry
        }
    }

    /// Parses `ATTACHMENT_HOSTS`: host names separated by commas (spaces ignored); nil on a bad entry.
    package static func hosts(from text: String) -> [String]? {
        var hosts: [String] = []
        for item in text.split(separator: ",") {
            let entry = item.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed().map(String.init).joined().lowercased()
            guard !entry.isEmpty else { continue }
            let name = entry.hasPrefix("*.") ? String(entry.dropFirst(2)) : entry
            guard !name.isEmpty, name.utf8.count <= 253,
                  name.utf8.allSatisfy({ $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) }),
                  !name.hasPrefix("."), !name.hasSuffix(".") else { return nil }
            hosts.append(entry)
        }
        return hosts
    }
}

/// The rules of a message's type and attachment (issue 14). Pure.
///
/// - `text` and `emoji` carry content and no attachment; `emoji` content is 1-32 emoji (with their
///   joiners, variation selectors and modifiers);
/// - `image`, `file`, `voice` need `attachmentUrl`; their content is an optional caption;
///   `mimeType`, when given, must fit the type (`image/*`, `audio/*`, any for files);
///   `attachmentName` is 1-255 bytes without control characters; `attachmentSize` 0 to 1 TiB.
package enum AttachmentRules {
    /// Longest `attachmentName`, in UTF-8 bytes.
    package static let maxNameBytes = 255
    /// Largest `attachmentSize` (1 TiB).
    package static let maxSize: Int64 = 1 << 40
    /// Longest `mimeType`, in bytes.
    package static let maxMimeTypeBytes = 127
    /// Most scalars of an `emoji` message.
    package static let maxEmojiScalars = 32

    /// Whether a message of `type` carries an attachment.
    package static func needsAttachment(_ type: MessageType) -> Bool {
        type == .image || type == .file || type == .voice
    }

    /// Checks a message's type, content and attachment fields together.
    package static func validate(type: MessageType, content: String, url: String?, name: String?, size: Int64?, mimeType: String?,
                                 maxContentLength: Int, policy: AttachmentPolicy) throws(APIError) {
        guard needsAttachment(type) else {
            for (field, value) in [("attachmentUrl", url), ("attachmentName", name), ("mimeType", mimeType)] where value != nil {
                throw APIError.validation("field '\(field)' is only for image, file and voice messages")
            }
            guard size == nil else { throw APIError.validation("field 'attachmentSize' is only for image, file and voice messages") }
            try ChatCommand.validateContent(content, maxLength: maxContentLength)
            if type == .emoji { try validateEmoji(content) }
            return
        }
        guard let url else { throw APIError.validation("field 'attachmentUrl' is required for \(type.rawValue) messages") }
        try validateURL(url, policy: policy)
        try validateCaption(content, maxLength: maxContentLength)
        if let name { try validateName(name) }
        if let size, !(0...maxSize).contains(size) {
            throw APIError.validation("field 'attachmentSize' must be a byte count from 0 to \(maxSize)")
        }
        if let mimeType { try validateMimeType(mimeType, for: type) }
    }

    /// An absolute `https` URL (or `http` when the policy allows) with a host the policy allows,
    /// no user info, at most 2,048 bytes, no spaces or control characters.
    package static func validateURL(_ url: String, policy: AttachmentPolicy) throws(APIError) {
        let bytes = Array(url.utf8)
        guard bytes.count <= ChatLimits.maxAttachmentURLBytes else {
            throw APIError.validation("field 'attachmentUrl' must be at most \(ChatLimits.maxAttachmentURLBytes) bytes")
        }
        for byte in bytes where byte <= 0x20 || byte == 0x7F {
            throw APIError.validation("field 'attachmentUrl' must not contain spaces or control characters")
        }
        let lower = String(decoding: bytes.prefix(8), as: UTF8.self).lowercased()
        let schemeLength: Int
        if lower.hasPrefix("https://") {
            schemeLength = 8
        } else if lower.hasPrefix("http://"), policy.allowHTTP {
            schemeLength = 7
        } else {
            throw APIError.validation(policy.allowHTTP ? "field 'attachmentUrl' must be an http:// or https:// URL"
                                                       : "field 'attachmentUrl' must be an https:// URL")
        }
        let rest = bytes[schemeLength...]
        let authorityEnd = rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? rest.endIndex
        let authority = rest[rest.startIndex..<authorityEnd]
        guard !authority.contains(UInt8(ascii: "@")) else { throw APIError.validation("field 'attachmentUrl' must not carry user info") }
        var host = authority
        if host.first == UInt8(ascii: "[") {
            guard let close = host.firstIndex(of: UInt8(ascii: "]")) else { throw APIError.validation("field 'attachmentUrl' has a malformed host") }
            host = host[host.startIndex...close]
        } else if let colon = host.firstIndex(of: UInt8(ascii: ":")) {
            let port = host[host.index(after: colon)...]
            guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let number = Int(String(decoding: port, as: UTF8.self)), (1...65_535).contains(number) else {
                throw APIError.validation("field 'attachmentUrl' has a malformed port")
            }
            host = host[host.startIndex..<colon]
        }
        guard !host.isEmpty else { throw APIError.validation("field 'attachmentUrl' must name a host") }
        let name = String(decoding: host, as: UTF8.self).lowercased()
        guard policy.allows(host: name) else {
            throw APIError.validation("field 'attachmentUrl' must point to an allowed host (ATTACHMENT_HOSTS)")
        }
    }

    /// A caption: may be empty; at most `maxLength` scalars; no NUL.
    package static func validateCaption(_ content: String, maxLength: Int) throws(APIError) {
        var count = 0
        for scalar in content.unicodeScalars {
            count += 1
            if scalar.value == 0 { throw APIError.validation("field 'content' must not contain NUL characters") }
        }
        guard count <= maxLength else { throw APIError.validation("field 'content' must be at most \(maxLength) characters (has \(count))") }
    }

    static func validateName(_ name: String) throws(APIError) {
        guard (1...maxNameBytes).contains(name.utf8.count),
              !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw APIError.validation("field 'attachmentName' must be 1-\(maxNameBytes) bytes without control characters")
        }
    }

    /// `type/subtype` of token characters (RFC 6838), fitting the message type.
    static func validateMimeType(_ mimeType: String, for type: MessageType) throws(APIError) {
        let lower = mimeType.lowercased()
        let parts = lower.split(separator: "/", omittingEmptySubsequences: false)
        let token: (Substring) -> Bool = { part in
            !part.isEmpty && part.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7A) || "!#$&-^_.+".utf8.contains(byte)
            }
        }
        guard mimeType.utf8.count <= maxMimeTypeBytes, parts.count == 2, token(parts[0]), token(parts[1]) else {
            throw APIError.validation("field 'mimeType' must be a media type like image/png")
        }
        switch type {
        case .image where parts[0] != "image": throw APIError.validation("field 'mimeType' must be an image/* type for image messages")
        case .voice where parts[0] != "audio": throw APIError.validation("field 'mimeType' must be an audio/* type for voice messages")
        default: break
        }
    }

    /// Only emoji: pictographs with their joiners (U+200D), variation selectors, skin-tone
    /// modifiers, keycaps and tags; 1-32 scalars.
    static func validateEmoji(_ content: String) throws(APIError) {
        let scalars = content.unicodeScalars
        guard scalars.count <= maxEmojiScalars else { throw APIError.validation("field 'content' of an emoji message must be at most \(maxEmojiScalars) emoji scalars") }
        var pictographs = 0
        for scalar in scalars {
            let value = scalar.value
            if scalar.properties.isEmojiPresentation || (scalar.properties.isEmoji && value > 0x7F) {
                pictographs += 1
            } else if value == 0x200D || (0xFE00...0xFE0F).contains(value) || value == 0x20E3 || (0xE0020...0xE007F).contains(value)
                        || scalar.properties.isEmojiModifier || (value < 0x80 && scalar.properties.isEmoji) {
                continue  // joiner, variation selector, keycap, tag, modifier, keycap base (#, *, 0-9)
            } else {
                throw APIError.validation("field 'content' of an emoji message must hold only emoji")
            }
        }
        guard pictographs > 0 || scalars.contains(where: { $0.value == 0x20E3 }) else {
            throw APIError.validation("field 'content' of an emoji message must hold only emoji")
        }
    }
}

/// Reactions (issue 14): any single emoji (one grapheme cluster of emoji scalars, skin tones and
/// joined sequences included); at most `maxDistinct` different emoji on one message.
package enum ReactionRules {
    package static let maxDistinct = 20

    package static func validate(_ emoji: String) throws(APIError) {
        guard emoji.count == 1 else { throw APIError.validation("field 'emoji' must be a single emoji") }
        do {
            try AttachmentRules.validateEmoji(emoji)
        } catch {
            throw APIError.validation("field 'emoji' must be a single emoji")
        }
    }
}
