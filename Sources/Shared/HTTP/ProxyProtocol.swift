// HAProxy PROXY protocol header parser, versions 1 (text) and 2 (binary), after
// https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt. A TCP balancer sends the header
// before the application bytes to say who the client is. Pure: bytes in, a verdict out, no I/O.
// It keeps no state between calls: a header is at most `maximumLength` bytes, so the caller holds
// the connection's first bytes and parses them again as more arrive, and that costs little.

/// What a PROXY protocol header says about the connection.
package struct ProxyHeader: Sendable, Equatable {
    /// The original client. Nil for v1 `UNKNOWN`, v2 `LOCAL` (the balancer's own health checks),
    /// and v2 `AF_UNSPEC` or `AF_UNIX`: then the TCP peer address stands.
    package var source: ProxyEndpoint?
    /// The address the client connected to (the balancer's listener); nil when `source` is.
    package var destination: ProxyEndpoint?
    /// The protocol version the header was written in: 1 (text) or 2 (binary).
    package var version: Int

    /// A header with the given endpoints.
    package init(source: ProxyEndpoint?, destination: ProxyEndpoint?, version: Int) {
        self.source = source
        self.destination = destination
        self.version = version
    }
}

/// One end of the proxied TCP connection.
package struct ProxyEndpoint: Sendable, Equatable {
    /// The IPv4 or IPv6 address (IPv4 held IPv4-mapped, as everywhere in `IPAddressBytes`).
    package var address: IPAddressBytes
    /// The TCP port.
    package var port: UInt16

    /// The endpoint `address`:`port`.
    package init(address: IPAddressBytes, port: UInt16) {
        self.address = address
        self.port = port
    }
}

/// Why the first bytes of a connection are not a PROXY protocol header this server accepts. The
/// connection is closed: past a broken header there is no telling where the application bytes start.
package enum ProxyHeaderError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The bytes start with neither the v1 `PROXY` nor the v2 signature: something reached the
    /// port directly, or the balancer in front is not configured to send the header.
    case notProxyProtocol
    /// A v1 line without CRLF within `limit` bytes, or a v2 header announcing more than `limit`
    /// bytes in all.
    case tooLong(limit: Int)
    /// A v1 line that is not `PROXY TCP4|TCP6|UNKNOWN ...` with single spaces and a CRLF; says what.
    case badV1Syntax(String)
    /// A v1 address that is not a dotted quad after `TCP4`, or not IPv6 text after `TCP6`.
    case badAddress
    /// A v1 port that is not decimal `0...65535` without leading zeros.
    case badPort
    /// A v2 version nibble other than 2.
    case unsupportedVersion(UInt8)
    /// A v2 command other than `LOCAL` (0) and `PROXY` (1).
    case unsupportedCommand(UInt8)
    /// A v2 `PROXY` family and transport byte other than UNSPEC (`0x00`), TCP over IPv4 (`0x11`)
    /// or IPv6 (`0x21`), and UNIX stream (`0x31`): datagrams and unassigned values.
    case unsupportedFamily(UInt8)
    /// A v2 length shorter than the address block its family needs.
    case truncatedAddresses(length: Int, required: Int)
    /// A v2 TLV (type, 16-bit length, value) that runs past the end of the header.
    case badTLV

    /// What was wrong, for the operator who set up the balancer.
    package var description: String {
        switch self {
        case .notProxyProtocol:
            "The connection did not start with a PROXY protocol header; the balancer in front must send one (HAProxy send-proxy or send-proxy-v2, proxy protocol v2 on a cloud load balancer)."
        case .tooLong(let limit):
            "The PROXY protocol header is longer than \(limit) bytes."
        case .badV1Syntax(let reason):
            "Malformed PROXY protocol v1 header: \(reason)."
        case .badAddress:
            "A PROXY protocol v1 address is not an address of the announced family (a dotted quad after TCP4, IPv6 after TCP6)."
        case .badPort:
            "A PROXY protocol v1 port is not a decimal number 0-65535 without leading zeros."
        case .unsupportedVersion(let version):
            "PROXY protocol v2 signature with version \(version); only version 2 exists."
        case .unsupportedCommand(let command):
            "PROXY protocol v2 command \(command); only LOCAL (0) and PROXY (1) exist."
        case .unsupportedFamily(let family):
            "PROXY protocol v2 address family and transport 0x\(String(family, radix: 16)); only TCP over IPv4 or IPv6, UNIX streams and UNSPEC are accepted."
        case .truncatedAddresses(let length, let required):
            "The PROXY protocol v2 header has \(length) bytes after its 16-byte preamble; its address family needs \(required)."
        case .badTLV:
            "A PROXY protocol v2 TLV runs past the end of the header."
        }
    }
}

/// What the first bytes of a connection amount to.
package enum ProxyHeaderParse: Sendable, Equatable {
    /// A valid beginning of a header so far: wait for more (the caller bounds the wait).
    case needMoreBytes
    /// A complete header occupying the first `length` bytes; the rest is the application stream.
    case header(ProxyHeader, length: Int)
    /// Not a header this server accepts, whatever follows.
    case invalid(ProxyHeaderError)
}

/// The PROXY protocol parser.
package enum ProxyProtocol {
    /// Longest v1 header, CRLF included: the spec's worst case, `UNKNOWN` followed by what a `TCP6`
    /// line carries (two 39-character IPv6 addresses, two five-digit ports).
    package static let maximumV1Length = 107

    /// Longest v2 payload (addresses and TLVs) accepted. The field allows 65535; balancers send
    /// TLVs of tens to hundreds of bytes (AWS VPC endpoint id, GCP PSC connection id, Azure Private
    /// Link id, TLS details), so 4 KiB leaves ample room while bounding what one peer makes us hold.
    package static let maximumV2Payload = 4096

    /// The v2 preamble: signature, version and command, family and transport, payload length.
    package static let v2PreambleLength = 16

    /// Longest header of either version: with this many bytes, `parse` never asks for more.
    package static let maximumLength = max(maximumV1Length, v2PreambleLength + maximumV2Payload)

    /// What `bytes`, the first bytes received on a connection, begin with. Reads at most
    /// `maximumLength` bytes and never past the buffer.
    package static func parse(_ bytes: UnsafeRawBufferPointer) -> ProxyHeaderParse {
        switch bytes.first {
        case nil: .needMoreBytes
        case v1Signature.first: parseV1(bytes)
        case v2Signature.first: parseV2(bytes)
        default: .invalid(.notProxyProtocol)
        }
    }

    /// `parse` over any bytes (tests, the fuzzer); copies at most `maximumLength` of them when
    /// they are not contiguous.
    package static func parse(_ bytes: some Collection<UInt8>) -> ProxyHeaderParse {
        if let result = bytes.withContiguousStorageIfAvailable({ parse(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(bytes.prefix(maximumLength)).withUnsafeBytes { parse($0) }
    }

    // MARK: Version 1

    private static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), space = UInt8(ascii: " ")
    private static let colon = UInt8(ascii: ":"), dot = UInt8(ascii: ".")
    private static let v1Signature = Array("PROXY ".utf8)
    private static let tcp4 = Array("TCP4".utf8), tcp6 = Array("TCP6".utf8), unknown = Array("UNKNOWN".utf8)
    private static let unknownProtocolReason = "the protocol is not TCP4, TCP6 or UNKNOWN"

    /// `PROXY <protocol> ...\r\n`. Errors are those of the earliest bad byte, so more bytes never
    /// change an `.invalid` into another answer.
    private static func parseV1(_ bytes: UnsafeRawBufferPointer) -> ProxyHeaderParse {
        let line = Array(bytes.prefix(maximumV1Length))
        for index in 0..<min(line.count, v1Signature.count) where line[index] != v1Signature[index] {
            // `PROXY` is the signature; after it, the text is known to be meant as a header.
            return .invalid(index < v1Signature.count - 1 ? .notProxyProtocol : .badV1Syntax("PROXY is not followed by a space"))
        }
        let start = min(line.count, v1Signature.count)
        let lineEnd = line[start...].firstIndex { $0 == cr || $0 == lf }
        let content = line[start..<(lineEnd ?? line.count)]
        do throws(ProxyHeaderError) {
            _ = try v1Fields(content, complete: false)
            guard let lineEnd else {
                return line.count < maximumV1Length ? .needMoreBytes : .invalid(.tooLong(limit: maximumV1Length))
            }
            guard line[lineEnd] == cr else { return .invalid(.badV1Syntax("the line ends in LF without CR")) }
            let length = lineEnd + 2
            guard length <= maximumV1Length else { return .invalid(.tooLong(limit: maximumV1Length)) }
            let header = try v1Fields(content, complete: true)
            guard lineEnd + 1 < line.count else { return .needMoreBytes }
            guard line[lineEnd + 1] == lf else { return .invalid(.badV1Syntax("CR is not followed by LF")) }
            return .header(header, length: length)
        } catch {
            return .invalid(error)
        }
    }

    /// The header in the text between `PROXY ` and the line end. When the line is not `complete`
    /// the last field may be unfinished: it must be the beginning of a valid field, and the header
    /// returned means nothing.
    private static func v1Fields(_ content: ArraySlice<UInt8>, complete: Bool) throws(ProxyHeaderError) -> ProxyHeader {
        let unknownHeader = ProxyHeader(source: nil, destination: nil, version: 1)
        // At most six pieces: the protocol, four fields, and whatever wrongly follows them.
        let fields = content.split(separator: space, maxSplits: 5, omittingEmptySubsequences: false)
        let name = fields.first ?? []
        let nameIsWhole = complete || fields.count > 1
        guard nameIsWhole else {
            guard [tcp4, tcp6, unknown].contains(where: { $0.starts(with: name) }) else { throw .badV1Syntax(unknownProtocolReason) }
            return unknownHeader
        }
        // UNKNOWN: "the receiver must ignore anything presented before the CRLF".
        if name.elementsEqual(unknown) { return unknownHeader }
        let isIPv6: Bool
        if name.elementsEqual(tcp4) {
            isIPv6 = false
        } else if name.elementsEqual(tcp6) {
            isIPv6 = true
        } else {
            throw .badV1Syntax(unknownProtocolReason)
        }
        var addresses: [IPAddressBytes] = []
        var ports: [UInt16] = []
        for (position, field) in fields.enumerated().dropFirst().prefix(4) {
            let isWhole = complete || position < fields.count - 1
            if position <= 2 {
                if isWhole {
                    guard let address = v1Address(field, isIPv6: isIPv6) else { throw .badAddress }
                    addresses.append(address)
                } else {
                    guard isV1AddressPrefix(field, isIPv6: isIPv6) else { throw .badAddress }
                }
            } else {
                if isWhole {
                    guard let port = v1Port(field) else { throw .badPort }
                    ports.append(port)
                } else {
                    guard field.isEmpty || v1Port(field) != nil else { throw .badPort }
                }
            }
        }
        // Checked after the fields, so that the error is the one of the earliest bad byte.
        guard fields.count <= 5 else { throw .badV1Syntax("more than four fields follow the protocol") }
        guard complete else { return unknownHeader }
        guard addresses.count == 2, ports.count == 2 else {
            throw .badV1Syntax("a TCP4 or TCP6 line needs source and destination addresses and ports")
        }
        return ProxyHeader(
            source: ProxyEndpoint(address: addresses[0], port: ports[0]),
            destination: ProxyEndpoint(address: addresses[1], port: ports[1]),
            version: 1
        )
    }

    /// A dotted quad (`TCP4`), or IPv6 text (`TCP6`; `::ffff:a.b.c.d` included, which dual-stack
    /// proxies send for IPv4 clients).
    private static func v1Address(_ text: ArraySlice<UInt8>, isIPv6: Bool) -> IPAddressBytes? {
        guard text.count <= IPAddressBytes.maximumTextLength else { return nil }
        if isIPv6 {
            guard let (high, low) = IPAddressBytes.parseIPv6(text) else { return nil }
            return IPAddressBytes(high: high, low: low)
        }
        return IPAddressBytes.parseIPv4(text).map { IPAddressBytes(ipv4: $0) }
    }

    /// Whether `text` begins some valid address of the family. It does when one of a few
    /// completions parses: any prefix of a valid address is itself valid, or becomes valid by
    /// adding `0`, `:` or `::`, or by filling in the dotted quad it ends in.
    private static func isV1AddressPrefix(_ text: ArraySlice<UInt8>, isIPv6: Bool) -> Bool {
        guard text.count <= IPAddressBytes.maximumTextLength else { return false }
        let lastPart = text.split(separator: colon, omittingEmptySubsequences: false).last ?? []
        let dots = lastPart.reduce(0) { $1 == dot ? $0 + 1 : $0 }
        var completions: [[UInt8]] = []
        if dots <= 3 {
            var dottedQuad = Array(text)
            if lastPart.isEmpty || lastPart.last == dot { dottedQuad.append(UInt8(ascii: "0")) }
            for _ in dots..<3 { dottedQuad += [dot, UInt8(ascii: "0")] }
            completions.append(dottedQuad)
        }
        guard isIPv6 else {
            return !text.contains(colon) && completions.contains { IPAddressBytes.parseIPv4($0[...]) != nil }
        }
        for suffix in ["", "0", ":", "::"] { completions.append(Array(text) + Array(suffix.utf8)) }
        return completions.contains { IPAddressBytes.parseIPv6($0[...]) != nil }
    }

    /// Decimal `0...65535`, no sign, no leading zeros.
    private static func v1Port(_ text: ArraySlice<UInt8>) -> UInt16? {
        guard (1...5).contains(text.count), text.first != UInt8(ascii: "0") || text.count == 1 else { return nil }
        var value = 0
        for byte in text {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))  // at most 99999: cannot overflow
        }
        return UInt16(exactly: value)
    }

    // MARK: Version 2

    private static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    private static let commandLocal: UInt8 = 0x0, commandProxy: UInt8 = 0x1
    private static let familyUnspecified: UInt8 = 0x00, tcpOverIPv4: UInt8 = 0x11, tcpOverIPv6: UInt8 = 0x21, unixStream: UInt8 = 0x31
    private static let tlvHeaderLength = 3

    /// The bytes of addresses and ports each accepted family and transport byte announces.
    private static func v2AddressBlockLength(_ family: UInt8) -> Int? {
        switch family {
        case familyUnspecified: 0
        case tcpOverIPv4: 12  // two 4-byte addresses, two ports
        case tcpOverIPv6: 36  // two 16-byte addresses, two ports
        case unixStream: 216  // two 108-byte paths
        default: nil
        }
    }

    /// The 16-byte preamble, then addresses and TLVs. Each field is checked as soon as it has
    /// arrived, so a bad header is refused without waiting for the rest.
    private static func parseV2(_ bytes: UnsafeRawBufferPointer) -> ProxyHeaderParse {
        let count = bytes.count
        for index in 0..<min(count, v2Signature.count) where bytes[index] != v2Signature[index] {
            return .invalid(.notProxyProtocol)
        }
        guard count > 12 else { return .needMoreBytes }
        let version = bytes[12] >> 4, command = bytes[12] & 0x0F
        guard version == 2 else { return .invalid(.unsupportedVersion(version)) }
        guard command == commandLocal || command == commandProxy else { return .invalid(.unsupportedCommand(command)) }
        guard count > 13 else { return .needMoreBytes }
        // LOCAL: "the receiver must ... discard the protocol block including the family".
        var addressBlockLength = 0
        if command == commandProxy {
            guard let length = v2AddressBlockLength(bytes[13]) else { return .invalid(.unsupportedFamily(bytes[13])) }
            addressBlockLength = length
        }
        guard count >= v2PreambleLength else { return .needMoreBytes }
        let payloadLength = Int(bytes[14]) << 8 | Int(bytes[15])
        guard payloadLength <= maximumV2Payload else { return .invalid(.tooLong(limit: v2PreambleLength + maximumV2Payload)) }
        guard payloadLength >= addressBlockLength else {
            return .invalid(.truncatedAddresses(length: payloadLength, required: addressBlockLength))
        }
        let length = v2PreambleLength + payloadLength  // at most 16 + 4096
        guard count >= length else { return .needMoreBytes }
        guard command == commandProxy else { return .header(ProxyHeader(source: nil, destination: nil, version: 2), length: length) }

        let payload = UnsafeRawBufferPointer(rebasing: bytes[v2PreambleLength..<length])
        // AF_UNSPEC may carry addresses of a size we cannot know, so its TLVs cannot be found.
        if bytes[13] != familyUnspecified {
            guard tlvsFit(UnsafeRawBufferPointer(rebasing: payload[addressBlockLength...])) else { return .invalid(.badTLV) }
        }
        let header: ProxyHeader
        switch bytes[13] {
        case tcpOverIPv4:
            header = ProxyHeader(
                source: ProxyEndpoint(address: IPAddressBytes(ipv4: UInt32(truncatingIfNeeded: bigEndian(payload, 0, 4))), port: port(payload, 8)),
                destination: ProxyEndpoint(address: IPAddressBytes(ipv4: UInt32(truncatingIfNeeded: bigEndian(payload, 4, 4))), port: port(payload, 10)),
                version: 2
            )
        case tcpOverIPv6:
            header = ProxyHeader(
                source: ProxyEndpoint(address: IPAddressBytes(high: bigEndian(payload, 0, 8), low: bigEndian(payload, 8, 8)), port: port(payload, 32)),
                destination: ProxyEndpoint(address: IPAddressBytes(high: bigEndian(payload, 16, 8), low: bigEndian(payload, 24, 8)), port: port(payload, 34)),
                version: 2
            )
        default:  // UNSPEC, UNIX: no IP endpoints, the TCP peer stands
            header = ProxyHeader(source: nil, destination: nil, version: 2)
        }
        return .header(header, length: length)
    }

    /// Whether `tlvs` is a whole number of TLVs, none running past the end (what HAProxy checks).
    /// Their contents are not used: CRC32C (`0x03`) is optional for receivers and not checked.
    private static func tlvsFit(_ tlvs: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < tlvs.count {
            guard tlvs.count - offset >= tlvHeaderLength else { return false }
            let valueLength = Int(tlvs[offset + 1]) << 8 | Int(tlvs[offset + 2])
            guard tlvs.count - offset - tlvHeaderLength >= valueLength else { return false }
            offset += tlvHeaderLength + valueLength
        }
        return true
    }

    /// `width` bytes at `offset` as a big-endian number; the caller has checked they are there.
    private static func bigEndian(_ bytes: UnsafeRawBufferPointer, _ offset: Int, _ width: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in offset..<(offset + width) { value = value << 8 | UInt64(bytes[index]) }
        return value
    }

    private static func port(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
        UInt16(truncatingIfNeeded: bigEndian(bytes, offset, 2))
    }
}
