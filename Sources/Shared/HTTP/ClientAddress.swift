import Support

/// An IPv4 or IPv6 address as 128 bits, IPv4 held in its IPv4-mapped form (`::ffff:a.b.c.d`).
///
/// One representation for both families means `10.0.0.1` and `::ffff:10.0.0.1` are the same
/// address (the kernel reports IPv4 clients of a dual-stack socket in the mapped form), so a
/// network written in either form matches both.
package struct IPAddressBytes: Sendable, Hashable, CustomStringConvertible {
    /// The first 64 bits, network byte order read as a big-endian number.
    package let high: UInt64
    /// The last 64 bits.
    package let low: UInt64

    /// The longest address text accepted (`ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255` is 45);
    /// anything longer is rejected before it is looked at byte by byte.
    package static let maximumTextLength = 45

    /// An address from its two halves.
    package init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An IPv4 address (`0x0A00_0001` is `10.0.0.1`), stored IPv4-mapped.
    package init(ipv4: UInt32) {
        self.init(high: 0, low: 0xFFFF_0000_0000 | UInt64(ipv4))
    }

    /// Parses `192.168.1.7`, `::1`, `fd00::1`, `::ffff:10.0.0.1`. No ports, brackets or zone ids
    /// (`%eth0`); IPv4 must be four decimal parts without leading zeros (`010.0.0.1` is octal to
    /// some parsers and decimal to others, so it is refused rather than guessed).
    package init?(_ text: some StringProtocol) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= Self.maximumTextLength else { return nil }
        if bytes.contains(UInt8(ascii: ":")) {
            guard let (high, low) = Self.parseIPv6(bytes[...]) else { return nil }
            self.init(high: high, low: low)
        } else {
            guard let value = Self.parseIPv4(bytes[...]) else { return nil }
            self.init(ipv4: value)
        }
    }

    /// Whether this is an IPv4 address (IPv4-mapped, `::ffff:0:0/96`).
    package var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }

    /// The IPv4 address, if this is one.
    package var ipv4: UInt32? { isIPv4 ? UInt32(truncatingIfNeeded: low) : nil }

    /// One text per address: dotted quad for IPv4 (mapped or not), otherwise the RFC 5952
    /// canonical form (lowercase, no leading zeros, the longest run of two or more zero groups
    /// as `::`, the first such run on a tie), so a client has exactly one key.
    package var description: String {
        if let ipv4 {
            return "\(ipv4 >> 24).\(ipv4 >> 16 & 0xFF).\(ipv4 >> 8 & 0xFF).\(ipv4 & 0xFF)"
        }
        let groups = (0..<8).map { index -> UInt16 in
            let half = index < 4 ? high : low
            return UInt16(truncatingIfNeeded: half >> (UInt64(3 - index % 4) * 16))
        }
        var bestStart = -1, bestLength = 0, runStart = -1
        for index in 0...8 {
            if index < 8, groups[index] == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                if index - runStart > bestLength { bestStart = runStart; bestLength = index - runStart }
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }  // RFC 5952 4.2.2: a single zero group is not compressed
        var text = ""
        var index = 0
        while index < 8 {
            if index == bestStart {
                text += "::"
                index += bestLength
                continue
            }
            if !text.isEmpty, !text.hasSuffix(":") { text += ":" }
            text += String(groups[index], radix: 16)
            index += 1
        }
        return text
    }

    /// Shifts a prefix length in `0...128` into the two 64-bit masks.
    static func masks(prefixLength: Int) -> (high: UInt64, low: UInt64) {
        let highBits = min(max(prefixLength, 0), 64), lowBits = min(max(prefixLength - 64, 0), 64)
        let high: UInt64 = highBits == 0 ? 0 : ~0 << UInt64(64 - highBits)
        let low: UInt64 = lowBits == 0 ? 0 : ~0 << UInt64(64 - lowBits)
        return (high, low)
    }

    private static let colon = UInt8(ascii: ":"), dot = UInt8(ascii: ".")

    /// Four decimal parts `0...255`, no leading zeros, nothing else.
    static func parseIPv4(_ bytes: ArraySlice<UInt8>) -> UInt32? {
        var value: UInt32 = 0, part: UInt32 = 0, digits = 0, parts = 0
        for byte in bytes {
            if byte == dot {
                guard digits > 0, parts < 3 else { return nil }
                value = value << 8 | part
                parts += 1
                part = 0
                digits = 0
            } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                if digits == 1, part == 0 { return nil }  // leading zero
                part = part * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                guard part <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, parts == 3 else { return nil }
        return value << 8 | part
    }

    /// RFC 4291 2.2 text: eight groups of one to four hex digits, at most one `::` standing for
    /// one or more zero groups, optionally ending in a dotted IPv4 address for the last 32 bits.
    static func parseIPv6(_ bytes: ArraySlice<UInt8>) -> (UInt64, UInt64)? {
        var gap: Int?
        var index = bytes.startIndex
        while index + 1 < bytes.endIndex {
            if bytes[index] == colon, bytes[index + 1] == colon {
                guard gap == nil else { return nil }
                gap = index
                index += 2
            } else {
                index += 1
            }
        }
        let groups: [UInt16]
        if let gap {
            guard let head = parseGroups(bytes[bytes.startIndex..<gap], dottedTail: false),
                  let tail = parseGroups(bytes[(gap + 2)...], dottedTail: true),
                  head.count + tail.count <= 7
            else { return nil }
            groups = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let all = parseGroups(bytes, dottedTail: true), all.count == 8 else { return nil }
            groups = all
        }
        var high: UInt64 = 0, low: UInt64 = 0
        for (position, group) in groups.enumerated() {
            if position < 4 { high = high << 16 | UInt64(group) } else { low = low << 16 | UInt64(group) }
        }
        return (high, low)
    }

    /// Colon-separated hex groups (empty input is no groups); the last may be a dotted IPv4
    /// address, which counts as two groups.
    private static func parseGroups(_ bytes: ArraySlice<UInt8>, dottedTail: Bool) -> [UInt16]? {
        guard !bytes.isEmpty else { return [] }
        let pieces = bytes.split(separator: colon, omittingEmptySubsequences: false)
        guard pieces.count <= 8 else { return nil }
        var groups: [UInt16] = []
        for (position, piece) in pieces.enumerated() {
            if dottedTail, position == pieces.count - 1, piece.contains(dot) {
                guard let ipv4 = parseIPv4(piece) else { return nil }
                groups.append(UInt16(truncatingIfNeeded: ipv4 >> 16))
                groups.append(UInt16(truncatingIfNeeded: ipv4))
                continue
            }
            guard (1...4).contains(piece.count) else { return nil }
            var group: UInt16 = 0
            for byte in piece {
                guard let digit = hexValue(byte) else { return nil }
                group = group << 4 | UInt16(digit)
            }
            groups.append(group)
        }
        return groups
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// An IPv4 or IPv6 network: `10.0.0.0/8`, `fd00::/8`, or a single host (`192.168.1.7`, `::1`).
///
/// IPv4 networks are held as IPv4-mapped IPv6 (`10.0.0.0/8` is `::ffff:10.0.0.0/104`), so the
/// mapped and plain forms of an address or network match each other. A consequence worth
/// knowing: `::/0` contains every IPv4 address too, while `0.0.0.0/0` contains only IPv4.
package struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    /// The first address of the network (host bits cleared).
    package let base: IPAddressBytes
    /// Prefix length over all 128 bits (`10.0.0.0/8` has 104).
    package let prefixLength128: Int

    /// Parses `address` or `address/prefix`. The prefix is decimal without leading zeros,
    /// `0...32` after an IPv4 address, `0...128` after an IPv6 one. Host bits below the prefix
    /// are cleared (`10.1.2.3/8` is `10.0.0.0/8`), as most proxy configurations do.
    package init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let address = IPAddressBytes(parts[0]) else { return nil }
        let isIPv6Text = parts[0].contains(":")
        let maximum = isIPv6Text ? 128 : 32
        var prefix = maximum
        if parts.count == 2 {
            let digits = parts[1]
            guard (1...3).contains(digits.utf8.count),
                  digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  digits == "0" || !digits.hasPrefix("0"),
                  let value = Int(digits), value <= maximum
            else { return nil }
            prefix = value
        }
        self.init(containing: address, prefixLength128: isIPv6Text ? prefix : 96 + prefix)
    }

    /// The network of `prefixLength128` bits (`0...128`, clamped) around `address`.
    package init(containing address: IPAddressBytes, prefixLength128: Int) {
        let length = min(max(prefixLength128, 0), 128)
        let mask = IPAddressBytes.masks(prefixLength: length)
        base = IPAddressBytes(high: address.high & mask.high, low: address.low & mask.low)
        self.prefixLength128 = length
    }

    /// Whether `address` lies inside this network.
    package func contains(_ address: IPAddressBytes) -> Bool {
        let mask = IPAddressBytes.masks(prefixLength: prefixLength128)
        return address.high & mask.high == base.high && address.low & mask.low == base.low
    }

    /// `10.0.0.0/8` for IPv4 networks (prefix 96 or longer inside `::ffff:0:0/96`), `fd00::/8` otherwise.
    package var description: String {
        if prefixLength128 >= 96, base.isIPv4 { return "\(base)/\(prefixLength128 - 96)" }
        return "\(base)/\(prefixLength128)"
    }
}

/// The proxies and load balancers whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
package struct TrustedProxies: Sendable, Equatable {
    /// The configuration variable named in errors.
    package static let variable = "TRUSTED_PROXIES"

    /// The trusted networks, in configuration order.
    package let networks: [IPNetwork]

    /// Trusts nobody: `X-Forwarded-For` is always ignored.
    package static let none = TrustedProxies(networks: [])

    /// Trusts exactly `networks`.
    package init(networks: [IPNetwork]) {
        self.networks = networks
    }

    /// Parses a comma- and/or space-separated list of addresses and CIDR networks
    /// (`10.0.0.0/8, 127.0.0.1 fd00::/8`). An empty list trusts nobody.
    package init(parsing list: String) throws(ConfigurationError) {
        var networks: [IPNetwork] = []
        let entries = list.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
        for entry in entries {
            guard let network = IPNetwork(String(entry)) else {
                throw ConfigurationError(Self.variable, "'\(entry)' is not an IP address or CIDR network (like 10.0.0.0/8, 192.168.1.7 or fd00::/8)")
            }
            networks.append(network)
        }
        self.networks = networks
    }

    /// Whether nobody is trusted.
    package var isEmpty: Bool { networks.isEmpty }

    /// Whether `address` is inside a trusted network.
    package func contains(_ address: IPAddressBytes) -> Bool {
        networks.contains { $0.contains(address) }
    }

    /// Whether the numeric address `address` (`127.0.0.1`, `::1`) is trusted; text that is not
    /// an address (`unix`, a name) is not.
    package func contains(_ address: String) -> Bool {
        guard !networks.isEmpty, let parsed = IPAddressBytes(address) else { return false }
        return contains(parsed)
    }
}

/// Who the client is when requests may arrive through reverse proxies.
///
/// `X-Forwarded-For` is written by anyone, so it is believed only as far as it was appended by
/// trusted proxies: starting at the TCP peer and walking the header right to left, each hop is
/// kept while it is trusted, and the first untrusted address is the client. Whatever a client
/// puts to the left of that is never read.
package enum ClientAddress {
    /// At most this many `X-Forwarded-For` entries (the rightmost) are examined: more proxies
    /// than this in a chain is not a deployment, and it keeps the walk bounded.
    package static let maximumForwardedEntries = 32

    /// The client's address for logs and per-IP limits.
    ///
    /// - `peer` is the TCP peer (`SocketAddress.host`); if it is not trusted it is the answer
    ///   and `forwardedFor` is ignored, so a direct client cannot spoof its address.
    /// - Otherwise the `X-Forwarded-For` field lines (in order) are joined and split on commas;
    ///   walking from the right, trusted addresses are skipped and the first untrusted one is
    ///   returned. An entry that is not an address (`unknown`, garbage, an obfuscated name)
    ///   stops the walk: the last trusted hop (the address to its right, or the peer) is
    ///   returned, since nothing left of it can be attributed. If every entry is trusted the
    ///   leftmost one examined is returned.
    /// - Addresses come back normalized (`IPAddressBytes.description`: IPv4-mapped as plain
    ///   IPv4, IPv6 in RFC 5952 form) and without ports; a `peer` that is not an address is
    ///   returned unchanged.
    package static func resolve(peer: String, forwardedFor: [String], trusted: TrustedProxies) -> String {
        guard let peerAddress = IPAddressBytes(peer) else { return peer }
        var lastTrusted = peerAddress.description
        guard trusted.contains(peerAddress) else { return lastTrusted }
        var examined = 0
        for line in forwardedFor.reversed() {
            for entry in line.split(separator: ",").reversed() {
                let trimmed = trimmingWhitespace(entry)
                if trimmed.isEmpty { continue }  // `a, , b`: empty list elements are allowed (RFC 9110 5.6.1)
                guard examined < maximumForwardedEntries else { return lastTrusted }
                examined += 1
                guard let address = forwardedAddress(trimmed) else { return lastTrusted }
                if !trusted.contains(address) { return address.description }
                lastTrusted = address.description
            }
        }
        return lastTrusted
    }

    /// One `X-Forwarded-For` entry as an address: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
    /// `[2001:db8::1]` or `[2001:db8::1]:443` (some proxies append the client's port).
    package static func forwardedAddress(_ entry: Substring) -> IPAddressBytes? {
        if entry.hasPrefix("[") {
            guard let close = entry.firstIndex(of: "]") else { return nil }
            let rest = entry[entry.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && isPort(rest.dropFirst())) else { return nil }
            let inside = entry[entry.index(after: entry.startIndex)..<close]
            guard inside.contains(":") else { return nil }  // brackets are for IPv6 only
            return IPAddressBytes(inside)
        }
        let colons = entry.utf8.reduce(0) { $1 == UInt8(ascii: ":") ? $0 + 1 : $0 }
        if colons == 1 {  // IPv4 with a port; bare IPv6 has at least two colons
            let parts = entry.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, isPort(parts[1]) else { return nil }
            return IPAddressBytes(parts[0])
        }
        return IPAddressBytes(entry)
    }

    /// Without leading and trailing spaces and tabs (HTTP optional whitespace).
    private static func trimmingWhitespace(_ text: Substring) -> Substring {
        var result = text
        while let first = result.first, first == " " || first == "\t" { result.removeFirst() }
        while let last = result.last, last == " " || last == "\t" { result.removeLast() }
        return result
    }

    private static func isPort(_ text: Substring) -> Bool {
        guard (1...5).contains(text.utf8.count),
              text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let value = Int(text)
        else { return false }
        return value <= 65_535
    }
}

extension TrustedProxies {
    /// The client of `request` received from `peer`: the peer itself, or the `X-Forwarded-For`
    /// client when the peer is a trusted proxy (`ClientAddress.resolve`).
    package func client(of request: HTTPRequest, peer: String) -> String {
        ClientAddress.resolve(peer: peer, forwardedFor: request.headers.values("X-Forwarded-For"), trusted: self)
    }
}
