import Testing

@testable import Shared

private let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

/// A v2 header built field by field; `length` defaults to the payload's.
private func v2(_ versionCommand: UInt8 = 0x21, _ family: UInt8, _ payload: [UInt8], length: Int? = nil) -> [UInt8] {
    let announced = length ?? payload.count
    return v2Signature + [versionCommand, family, UInt8(truncatingIfNeeded: announced >> 8), UInt8(truncatingIfNeeded: announced)] + payload
}

/// One TLV: type, big-endian 16-bit length, value.
private func tlv(_ type: UInt8, _ value: [UInt8]) -> [UInt8] {
    [type, UInt8(truncatingIfNeeded: value.count >> 8), UInt8(truncatingIfNeeded: value.count)] + value
}

private func parse(_ text: String) -> ProxyHeaderParse {
    ProxyProtocol.parse(Array(text.utf8))
}

private func endpoint(_ address: String, _ port: UInt16) -> ProxyEndpoint? {
    IPAddressBytes(address).map { ProxyEndpoint(address: $0, port: port) }
}

private func header(_ source: ProxyEndpoint?, _ destination: ProxyEndpoint?, version: Int) -> ProxyHeader {
    ProxyHeader(source: source, destination: destination, version: version)
}

/// `.header` with the given endpoints occupying all of `bytes`.
private func whole(_ bytes: [UInt8], _ source: ProxyEndpoint?, _ destination: ProxyEndpoint?, version: Int) -> ProxyHeaderParse {
    .header(header(source, destination, version: version), length: bytes.count)
}

/// Whether `a` and `b` are one hex letter in two cases.
private func sameHexDigit(_ a: UInt8, _ b: UInt8) -> Bool {
    let hexLetters = UInt8(ascii: "a")...UInt8(ascii: "f")
    return hexLetters.contains(a | 0x20) && a | 0x20 == b | 0x20
}

private let unknownV1 = ProxyHeader(source: nil, destination: nil, version: 1)
private let noAddressV2 = ProxyHeader(source: nil, destination: nil, version: 2)

/// 127.0.0.1:50000 -> 127.0.0.1:3000 exactly as HAProxy's `send-proxy-v2` writes it (no TLVs
/// unless `proxy-v2-options` asks for them): signature, 0x21 (v2, PROXY), 0x11 (TCP over IPv4),
/// length 12, the two addresses, then the ports 0xC350 and 0x0BB8.
private let haproxyLocalhostV2: [UInt8] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
    0x21, 0x11, 0x00, 0x0C,
    0x7F, 0x00, 0x00, 0x01, 0x7F, 0x00, 0x00, 0x01,
    0xC3, 0x50, 0x0B, 0xB8,
]

/// The same connection over IPv6 (`::1` both ends), as `send-proxy-v2` writes it.
private let haproxyLocalhostV2IPv6: [UInt8] = v2(0x21, 0x21, Array(repeating: 0, count: 15) + [1] + Array(repeating: 0, count: 15) + [1] + [0xC3, 0x50, 0x0B, 0xB8])

/// An AWS NLB-style TLV: type 0xEA (PP2_TYPE_AWS), subtype 0x01 (VPC endpoint id), the id.
private let awsTLV = tlv(0xEA, [0x01] + Array("vpce-08d2bf15fac5001c9".utf8))

private let validV1: [String] = [
    "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
    "PROXY TCP4 255.255.255.255 0.0.0.0 0 65535\r\n",
    "PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n",
    "PROXY TCP6 ::1 ::ffff:10.0.0.1 1 80\r\n",
    "PROXY TCP6 1:2:3:4:5:6:7:8 1::8 1 80\r\n",
    "PROXY TCP6 1:2:3:4:5:6:1.2.3.4 :: 65535 0\r\n",
    "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
    "PROXY UNKNOWN\r\n",
    "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
]

private let validV2: [[UInt8]] = [
    haproxyLocalhostV2,
    haproxyLocalhostV2IPv6,
    v2(0x21, 0x11, Array(haproxyLocalhostV2[16...]) + awsTLV),
    v2(0x20, 0x00, []),
    v2(0x20, 0x11, Array(haproxyLocalhostV2[16...])),
    v2(0x21, 0x00, []),
    v2(0x21, 0x31, Array(repeating: 0x2F, count: 216) + tlv(0x04, [])),
]

@Suite struct ProxyProtocolV1Tests {
    @Test func tcp4() {
        let line = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
        #expect(parse(line) == whole(Array(line.utf8), endpoint("192.168.0.1", 56324), endpoint("192.168.0.11", 443), version: 1))
    }

    @Test func tcp6() {
        let line = "PROXY TCP6 2001:db8::1 2001:DB8:0:0:0:0:0:2 56324 443\r\n"
        #expect(parse(line) == whole(Array(line.utf8), endpoint("2001:db8::1", 56324), endpoint("2001:db8::2", 443), version: 1))
    }

    /// The spec's worst cases: 104 bytes for TCP6, 107 for UNKNOWN with the same fields.
    @Test func theLongestLinesAreAccepted() throws {
        let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        let line = "PROXY TCP6 \(full) \(full) 65535 65535\r\n"
        #expect(line.utf8.count == 104)
        #expect(parse(line) == whole(Array(line.utf8), endpoint(full, 65535), endpoint(full, 65535), version: 1))
        let unknown = "PROXY UNKNOWN \(full) \(full) 65535 65535\r\n"
        #expect(unknown.utf8.count == ProxyProtocol.maximumV1Length)
        #expect(parse(unknown) == .header(unknownV1, length: 107))
    }

    /// IPv4-mapped text is IPv6 text: dual-stack proxies send it for IPv4 clients after TCP6.
    @Test func tcp6CarriesMappedIPv4() {
        let line = "PROXY TCP6 ::ffff:10.0.0.1 ::1 1 2\r\n"
        #expect(parse(line) == whole(Array(line.utf8), endpoint("10.0.0.1", 1), endpoint("::1", 2), version: 1))
    }

    @Test(arguments: [
        "PROXY UNKNOWN\r\n",
        "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
        "PROXY UNKNOWN anything at all, even \u{7F} and double  spaces\r\n",
    ])
    func unknownIgnoresTheRestOfTheLine(line: String) {
        #expect(parse(line) == .header(unknownV1, length: line.utf8.count))
    }

    @Test func theRestIsTheApplicationStream() {
        let line = "PROXY TCP4 203.0.113.7 10.0.0.2 41000 8080\r\n"
        let request = "GET /health HTTP/1.1\r\nHost: a\r\n\r\n"
        let bytes = Array((line + request).utf8)
        #expect(parse(line + request) == .header(header(endpoint("203.0.113.7", 41000), endpoint("10.0.0.2", 8080), version: 1), length: line.utf8.count))
        if case .header(_, let length) = ProxyProtocol.parse(bytes) {
            #expect(Array(bytes[length...]) == Array(request.utf8))
        }
        // Application bytes that happen to look like another header are not read.
        #expect(parse(line + line) == parse(line).withLength(line.utf8.count))
    }

    @Test(arguments: validV1)
    func everyPrefixAsksForMore(line: String) {
        let bytes = Array(line.utf8)
        for count in 0..<bytes.count {
            #expect(ProxyProtocol.parse(bytes[..<count]) == .needMoreBytes, "prefix of \(count) bytes")
        }
        guard case .header = ProxyProtocol.parse(bytes) else {
            Issue.record("\(line) did not parse")
            return
        }
    }

    /// Every byte of a TCP line matters: a change gives an error or another header, never the same
    /// (but for the case of a hex digit).
    @Test(arguments: validV1.filter { !$0.contains("UNKNOWN") })
    func everyCorruptionIsNoticed(line: String) {
        let original = parse(line)
        let bytes = Array(line.utf8)
        for position in bytes.indices {
            for value in 0...UInt8.max where value != bytes[position] && !sameHexDigit(value, bytes[position]) {
                var corrupted = bytes
                corrupted[position] = value
                let result = ProxyProtocol.parse(corrupted)
                #expect(result != original, "byte \(position) set to \(value)")
                if case .header(_, let length) = result { #expect(length > 0 && length <= corrupted.count) }
            }
        }
    }

    @Test func noLineEndWithin107BytesIsTooLong() {
        let padding = String(repeating: "a", count: 200)
        #expect(parse("PROXY UNKNOWN \(padding)") == .invalid(.tooLong(limit: 107)))
        // 105 bytes then CRLF: 107, accepted; one more byte before the CRLF is too many.
        let exact = "PROXY UNKNOWN " + String(repeating: "a", count: 105 - 14) + "\r\n"
        #expect(exact.utf8.count == 107)
        #expect(parse(exact) == .header(unknownV1, length: 107))
        let over = Array(("PROXY UNKNOWN " + String(repeating: "a", count: 106 - 14) + "\r\n").utf8)
        #expect(ProxyProtocol.parse(over) == .invalid(.tooLong(limit: 107)))
        #expect(ProxyProtocol.parse(over.dropLast()) == .invalid(.tooLong(limit: 107)))
        // 106 bytes without a line end may still become a 107-byte header.
        #expect(ProxyProtocol.parse(over.dropLast(2)) == .needMoreBytes)
        // A TCP6 line whose addresses are too long to leave room for the ports and CRLF.
        let wide = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
        #expect(parse("PROXY TCP6 \(wide) \(wide) 65535 65535\r\n") == .invalid(.tooLong(limit: 107)))
    }

    @Test(arguments: [
        "PROXY TCP4 1.2.3.4 5.6.7.8 080 80\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 80 00\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 80\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 80 99999\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 80 100000\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 +80 80\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 80\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 8a 80\r\n",
    ])
    func badPorts(line: String) {
        #expect(parse(line) == .invalid(.badPort))
    }

    @Test(arguments: [
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
        "PROXY TCP4 ::ffff:1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        "PROXY TCP6 ::1 5.6.7.8 1 2\r\n",
        "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
        "PROXY TCP4 256.0.0.1 5.6.7.8 1 2\r\n",
        "PROXY TCP4 localhost 5.6.7.8 1 2\r\n",
        "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
        "PROXY TCP6 [::1] ::1 1 2\r\n",
        "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
    ])
    func addressesOfTheWrongFamilyOrForm(line: String) {
        #expect(parse(line) == .invalid(.badAddress))
    }

    @Test(arguments: [
        ("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", ProxyHeaderError.badV1Syntax("the protocol is not TCP4, TCP6 or UNKNOWN")),
        ("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", .badV1Syntax("the protocol is not TCP4, TCP6 or UNKNOWN")),
        ("PROXY UNKNOWNX\r\n", .badV1Syntax("the protocol is not TCP4, TCP6 or UNKNOWN")),
        ("PROXY \r\n", .badV1Syntax("the protocol is not TCP4, TCP6 or UNKNOWN")),
        ("PROXY\r\n", .badV1Syntax("PROXY is not followed by a space")),
        ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", .badV1Syntax("more than four fields follow the protocol")),
        ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", .badV1Syntax("more than four fields follow the protocol")),
        ("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", .badV1Syntax("a TCP4 or TCP6 line needs source and destination addresses and ports")),
        ("PROXY TCP4 1.2.3.4\r\n", .badV1Syntax("a TCP4 or TCP6 line needs source and destination addresses and ports")),
        ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", .badV1Syntax("the line ends in LF without CR")),
        ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", .badV1Syntax("CR is not followed by LF")),
        ("PROXY UNKNOWN a\nb\r\n", .badV1Syntax("the line ends in LF without CR")),
        ("GET / HTTP/1.1\r\n", .notProxyProtocol),
        ("POST / HTTP/1.1\r\n", .notProxyProtocol),
        ("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", .notProxyProtocol),
        ("\u{16}\u{03}\u{01}", .notProxyProtocol),  // a TLS ClientHello
    ])
    func malformedLines(line: String, error: ProxyHeaderError) {
        #expect(parse(line) == .invalid(error))
    }

    /// A line that cannot become valid is refused at once, without waiting for CRLF.
    @Test(arguments: [
        "PROXY TCP4 1.2.3.x", "PROXY TCP4 1..", "PROXY TCP4 01", "PROXY TCP4 256", "PROXY TCP4 1.2.3.4.",
        "PROXY TCP4 ::", "PROXY TCP6 1:::", "PROXY TCP6 1::2::", "PROXY TCP6 12345", "PROXY TCP6 1:2:3:4:5:6:7:8:",
        "PROXY TCP6 ::1.2.3.4.", "PROXY TCP6 ::g", "PROXY TCP4 1.2.3.4 5.6.7.8 00", "PROXY TCP4 1.2.3.4 5.6.7.8 1 655350",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ", "PROXY TCP3", "PROXY UNKNOWNS", "PROXY  ",
        "PROXY TCP4 1.2.3.4  ", "PROXYX", "PRX", "\r\n\r\n\r",
    ])
    func impossiblePrefixesAreRefusedEarly(prefix: String) {
        let result = parse(prefix)
        #expect(result != .needMoreBytes)
        guard case .invalid = result else {
            Issue.record("\(prefix): \(result)")
            return
        }
    }

    /// Once invalid, always invalid, with the same error, whatever arrives next.
    @Test func refusalsDoNotDependOnLaterBytes() {
        for prefix in ["PROXY TCP4 1.2.3.x", "PROXY TCP4 1.2.3.4 5..", "PROXY TCP4  ", "GET", "PROXY TCP6 ::1 ::2 1 2\rX", "PROXY TCP4 1.2.3.4\r"] {
            let refusal = parse(prefix)
            guard case .invalid = refusal else {
                Issue.record("\(prefix): \(refusal)")
                continue
            }
            for suffix in ["9", " ", "\r", "\n", "\r\n", ".1 2 3\r\n"] {
                #expect(parse(prefix + suffix) == refusal, "\(prefix) + \(suffix)")
            }
        }
    }

    /// Prefixes of many valid IPv6 texts (the early refusal must not refuse any of them).
    @Test func everyPrefixOfAnyIPv6AddressWaits() {
        var random = SplitMix64(state: 0x0050_6F78_7936)
        for _ in 0..<400 {
            var groups = (0..<8).map { _ in String(UInt16.random(in: 0...0xFFFF, using: &random) >> (UInt16.random(in: 0...4, using: &random) * 4), radix: 16) }
            let zeroStart = Int.random(in: 0..<8, using: &random)
            for index in zeroStart..<min(8, zeroStart + Int.random(in: 0...4, using: &random)) { groups[index] = "0" }
            var text = groups.joined(separator: ":")
            if Bool.random(using: &random) { text = IPAddressBytes(text)?.description ?? text }
            if Bool.random(using: &random) {
                text = groups[0..<6].joined(separator: ":") + ":\(Int.random(in: 0...255, using: &random)).0.\(Int.random(in: 10...255, using: &random)).1"
            }
            for line in ["PROXY TCP6 \(text) ::1 1 2\r\n", "PROXY TCP6 ::1 \(text) 1 2\r\n"].map({ Array($0.utf8) }) {
                guard case .header = ProxyProtocol.parse(line) else {
                    Issue.record("\(text) did not parse")
                    continue
                }
                for count in 0..<line.count where ProxyProtocol.parse(line[..<count]) != .needMoreBytes {
                    Issue.record("prefix \(count) of \(text)")
                }
            }
        }
    }
}

@Suite struct ProxyProtocolV2Tests {
    @Test func haproxySendProxyV2KnownAnswer() {
        #expect(haproxyLocalhostV2.count == 28)
        #expect(ProxyProtocol.parse(haproxyLocalhostV2) == whole(haproxyLocalhostV2, endpoint("127.0.0.1", 50000), endpoint("127.0.0.1", 3000), version: 2))
    }

    @Test func inet6() {
        #expect(haproxyLocalhostV2IPv6.count == 52)
        #expect(ProxyProtocol.parse(haproxyLocalhostV2IPv6) == whole(haproxyLocalhostV2IPv6, endpoint("::1", 50000), endpoint("::1", 3000), version: 2))
        let addresses: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + Array(repeating: 0, count: 11) + [7] + [0xFE, 0x80] + Array(repeating: 0, count: 13) + [1] + [0, 1, 0xFF, 0xFF]
        let bytes = v2(0x21, 0x21, addresses)
        #expect(ProxyProtocol.parse(bytes) == whole(bytes, endpoint("2001:db8::7", 1), endpoint("fe80::1", 65535), version: 2))
    }

    @Test func tlvsAreSkipped() {
        let addresses = Array(haproxyLocalhostV2[16...])
        let tlvs = awsTLV + tlv(0x03, [1, 2, 3, 4]) + tlv(0x20, [0x01, 0, 0, 0, 0] + tlv(0x21, Array("TLSv1.3".utf8))) + tlv(0x04, [])
        let bytes = v2(0x21, 0x11, addresses + tlvs)
        let expected = header(endpoint("127.0.0.1", 50000), endpoint("127.0.0.1", 3000), version: 2)
        #expect(ProxyProtocol.parse(bytes) == .header(expected, length: bytes.count))
        #expect(ProxyProtocol.parse(bytes + Array("GET / HTTP/1.1\r\n".utf8)) == .header(expected, length: bytes.count))
    }

    @Test func tlvsThatOverrunAreRefused() {
        let addresses = Array(haproxyLocalhostV2[16...])
        #expect(ProxyProtocol.parse(v2(0x21, 0x11, addresses + [0xEA, 0x00, 0x05, 1, 2])) == .invalid(.badTLV))
        #expect(ProxyProtocol.parse(v2(0x21, 0x11, addresses + [0xEA])) == .invalid(.badTLV))
        #expect(ProxyProtocol.parse(v2(0x21, 0x11, addresses + [0xEA, 0x00])) == .invalid(.badTLV))
        #expect(ProxyProtocol.parse(v2(0x21, 0x11, addresses + awsTLV + [0x04, 0xFF, 0xFF])) == .invalid(.badTLV))
    }

    /// LOCAL: the balancer's own connection (health checks); addresses, family and TLVs are ignored.
    @Test(arguments: [
        v2(0x20, 0x00, []),
        v2(0x20, 0x11, Array(haproxyLocalhostV2[16...])),
        v2(0x20, 0x12, [1, 2, 3]),
        v2(0x20, 0xFF, [0xEA, 0xFF, 0xFF]),
    ])
    func local(bytes: [UInt8]) {
        #expect(ProxyProtocol.parse(bytes) == .header(noAddressV2, length: bytes.count))
    }

    @Test func unspecifiedAndUnixLeaveThePeerAddress() {
        let unspecified = v2(0x21, 0x00, [])
        #expect(ProxyProtocol.parse(unspecified) == .header(noAddressV2, length: 16))
        let unspecifiedWithData = v2(0x21, 0x00, [1, 2, 3])
        #expect(ProxyProtocol.parse(unspecifiedWithData) == .header(noAddressV2, length: 19))
        let unix = v2(0x21, 0x31, Array("/run/haproxy.sock".utf8) + Array(repeating: 0, count: 216 - 17) + awsTLV)
        #expect(ProxyProtocol.parse(unix) == .header(noAddressV2, length: unix.count))
    }

    @Test(arguments: [0x01, 0x11, 0x31, 0xF1] as [UInt8])
    func otherVersionsAreRefused(versionCommand: UInt8) {
        #expect(ProxyProtocol.parse(v2(versionCommand, 0x11, Array(haproxyLocalhostV2[16...]))) == .invalid(.unsupportedVersion(versionCommand >> 4)))
        #expect(ProxyProtocol.parse(v2Signature + [versionCommand]) == .invalid(.unsupportedVersion(versionCommand >> 4)))
    }

    @Test(arguments: Array(0x22...0x2F) as [UInt8])
    func otherCommandsAreRefused(versionCommand: UInt8) {
        #expect(ProxyProtocol.parse(v2(versionCommand, 0x11, Array(haproxyLocalhostV2[16...]))) == .invalid(.unsupportedCommand(versionCommand & 0x0F)))
    }

    /// Datagrams (0x12, 0x22, 0x32) are not TCP connections; other values are unassigned, and the
    /// spec says to reject them.
    @Test(arguments: [0x12, 0x22, 0x32, 0x10, 0x20, 0x30, 0x01, 0x02, 0x13, 0x41, 0xFF] as [UInt8])
    func otherFamiliesAreRefused(family: UInt8) {
        #expect(ProxyProtocol.parse(v2(0x21, family, Array(repeating: 0, count: 216))) == .invalid(.unsupportedFamily(family)))
        #expect(ProxyProtocol.parse(v2Signature + [0x21, family]) == .invalid(.unsupportedFamily(family)))
    }

    @Test func lengthShorterThanTheAddresses() {
        #expect(ProxyProtocol.parse(v2(0x21, 0x11, Array(repeating: 0, count: 11))) == .invalid(.truncatedAddresses(length: 11, required: 12)))
        #expect(ProxyProtocol.parse(v2(0x21, 0x21, Array(repeating: 0, count: 12))) == .invalid(.truncatedAddresses(length: 12, required: 36)))
        #expect(ProxyProtocol.parse(v2(0x21, 0x31, [])) == .invalid(.truncatedAddresses(length: 0, required: 216)))
        // Refused as soon as the length is known, before the payload arrives.
        #expect(ProxyProtocol.parse(Array(v2(0x21, 0x21, [], length: 35))) == .invalid(.truncatedAddresses(length: 35, required: 36)))
    }

    @Test func lengthOverTheMaximum() {
        let addresses = Array(haproxyLocalhostV2[16...])
        let filler = tlv(0x04, Array(repeating: 0, count: ProxyProtocol.maximumV2Payload - addresses.count - 3))
        let largest = v2(0x21, 0x11, addresses + filler)
        #expect(largest.count == ProxyProtocol.maximumLength)
        #expect(ProxyProtocol.parse(largest) == .header(header(endpoint("127.0.0.1", 50000), endpoint("127.0.0.1", 3000), version: 2), length: largest.count))
        let tooLong = ProxyHeaderParse.invalid(.tooLong(limit: 16 + 4096))
        #expect(ProxyProtocol.parse(v2(0x21, 0x11, addresses, length: 4097)) == tooLong)
        #expect(ProxyProtocol.parse(v2(0x21, 0x11, [], length: 0xFFFF)) == tooLong)
        #expect(ProxyProtocol.parse(v2(0x20, 0x00, [], length: 0xFFFF)) == tooLong)
    }

    @Test func notTheSignature() {
        #expect(ProxyProtocol.parse([0x0D, 0x0A, 0x0D, 0x0A, 0x01]) == .invalid(.notProxyProtocol))
        #expect(ProxyProtocol.parse(Array("\r\n\r\nGET".utf8)) == .invalid(.notProxyProtocol))
        #expect(ProxyProtocol.parse(Array(v2Signature.dropLast()) + [0x0D]) == .invalid(.notProxyProtocol))
        #expect(ProxyProtocol.parse([UInt8]()) == .needMoreBytes)
    }

    /// Split at every byte: the first part asks for more until the header is whole, and then the
    /// header is the same whatever follows it.
    @Test(arguments: validV2)
    func everySplitAsksForMoreUntilWhole(bytes: [UInt8]) {
        guard case .header(let expected, let length) = ProxyProtocol.parse(bytes) else {
            Issue.record("did not parse")
            return
        }
        #expect(length == bytes.count)
        for count in 0..<bytes.count where ProxyProtocol.parse(bytes[..<count]) != .needMoreBytes {
            Issue.record("prefix of \(count) bytes")
        }
        #expect(ProxyProtocol.parse(bytes + [0x16, 0x03, 0x01]) == .header(expected, length: length))
    }

    @Test(arguments: validV2)
    func everyCorruptionIsSafe(bytes: [UInt8]) {
        for position in bytes.indices {
            for value in [0x00, 0x01, 0x0F, 0x10, 0x20, 0x21, 0x7F, 0x80, 0xFF] as [UInt8] where value != bytes[position] {
                var corrupted = bytes
                corrupted[position] = value
                if case .header(_, let length) = ProxyProtocol.parse(corrupted) {
                    #expect(length > 0 && length <= corrupted.count)
                }
            }
        }
    }
}

@Suite struct ProxyProtocolFuzzTests {
    /// Random and mutated inputs: no crash, and every answer keeps the parser's promises.
    @Test func seededFuzz() {
        var random = SplitMix64(state: 0x9E0C_7E55)
        let seeds = validV1.map { Array($0.utf8) } + validV2
        var headers = 0, invalid = 0, waiting = 0
        for round in 0..<20_000 {
            var input: [UInt8]
            if round % 4 == 0 {
                // Random bytes after one of the signatures' first bytes, or none.
                let count = Int.random(in: 0...64, using: &random)
                input = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
                if !input.isEmpty, Bool.random(using: &random) { input[0] = Bool.random(using: &random) ? 0x50 : 0x0D }
            } else {
                input = seeds[Int.random(in: 0..<seeds.count, using: &random)]
                for _ in 0..<Int.random(in: 1...4, using: &random) { mutate(&input, using: &random) }
            }
            let result = ProxyProtocol.parse(input)
            check(result, input)
            switch result {
            case .header: headers += 1
            case .invalid: invalid += 1
            case .needMoreBytes: waiting += 1
            }
        }
        // The mutations reach all three answers.
        #expect(headers > 1000 && invalid > 1000 && waiting > 100)
    }

    /// Contiguous and non-contiguous collections, and the raw buffer, give the same answer.
    @Test func everyEntryPointAgrees() {
        for bytes in validV1.map({ Array($0.utf8) }) + validV2 {
            let raw = bytes.withUnsafeBytes { ProxyProtocol.parse($0) }
            #expect(ProxyProtocol.parse(bytes) == raw)
            #expect(ProxyProtocol.parse(bytes.lazy.map { $0 }) == raw)
            #expect(ProxyProtocol.parse((bytes + Array(repeating: 0x41, count: 9000)).lazy.map { $0 }) == raw)
        }
    }

    @Test func errorsSayWhatWasWrong() {
        let errors: [ProxyHeaderError] = [
            .notProxyProtocol, .tooLong(limit: 107), .badV1Syntax("x"), .badAddress, .badPort, .unsupportedVersion(1),
            .unsupportedCommand(2), .unsupportedFamily(0x12), .truncatedAddresses(length: 1, required: 12), .badTLV,
        ]
        #expect(Set(errors.map(\.description)).count == errors.count)
        #expect(ProxyHeaderError.unsupportedFamily(0x12).description.contains("0x12"))
    }
}

/// The parser's promises for `input`.
private func check(_ result: ProxyHeaderParse, _ input: [UInt8]) {
    #expect(ProxyProtocol.parse(input) == result, "not deterministic")
    switch result {
    case .header(let header, let length):
        #expect(length > 0 && length <= input.count)
        #expect(length <= ProxyProtocol.maximumLength)
        #expect(header.version == (input.first == 0x50 ? 1 : 2))
        #expect((header.source == nil) == (header.destination == nil))
        // The header is the same without what follows it, and no shorter prefix is complete.
        #expect(ProxyProtocol.parse(input[..<length]) == result)
        for count in 0..<length where ProxyProtocol.parse(input[..<count]) != .needMoreBytes {
            Issue.record("prefix \(count) of \(input) is not needMoreBytes")
            break
        }
    case .needMoreBytes:
        #expect(input.count < ProxyProtocol.maximumLength, "would wait past the longest header")
        for count in 0..<input.count where ProxyProtocol.parse(input[..<count]) != .needMoreBytes {
            Issue.record("prefix \(count) of \(input) is not needMoreBytes")
            break
        }
    case .invalid:
        for more in ["\r\n", " 1.2.3.4 5.6.7.8 1 2\r\n", "1 ::1 2 3\r\n", "\n"] {
            #expect(ProxyProtocol.parse(input + Array(more.utf8)) == result, "more bytes changed a refusal")
        }
    }
}

private func mutate(_ input: inout [UInt8], using random: inout SplitMix64) {
    let interesting: [UInt8] = [0x00, 0x0A, 0x0D, 0x20, 0x2E, 0x30, 0x31, 0x3A, 0x39, 0x11, 0x21, 0x31, 0xFF]
    switch Int.random(in: 0..<6, using: &random) {
    case 0 where !input.isEmpty:
        input[Int.random(in: 0..<input.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
    case 1 where !input.isEmpty:
        input[Int.random(in: 0..<input.count, using: &random)] = interesting[Int.random(in: 0..<interesting.count, using: &random)]
    case 2:
        input.insert(interesting[Int.random(in: 0..<interesting.count, using: &random)], at: Int.random(in: 0...input.count, using: &random))
    case 3 where !input.isEmpty:
        input.remove(at: Int.random(in: 0..<input.count, using: &random))
    case 4:
        input.removeLast(Int.random(in: 0...min(input.count, 8), using: &random))
    default:
        input += (0..<Int.random(in: 0...20, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
    }
}

extension ProxyHeaderParse {
    /// The same header occupying `length` bytes (for comparisons).
    fileprivate func withLength(_ length: Int) -> ProxyHeaderParse {
        guard case .header(let header, _) = self else { return self }
        return .header(header, length: length)
    }
}
