import Glibc
import Testing
@testable import Shared

@Suite struct IPAddressBytesTests {
    @Test(arguments: [
        ("192.168.1.7", "192.168.1.7"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("::1", "::1"),
        ("::", "::"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:0db8::0001", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  // RFC 5952 4.2.3: first of equal runs
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // 4.2.2: a single zero group stays
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),  // 4.2.3: the longest run
        ("1:0:0:0:0:0:0:0", "1::"),
        ("fe80::", "fe80::"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("::FFFF:0102:0304", "1.2.3.4"),
        ("0:0:0:0:0:ffff:10.0.0.1", "10.0.0.1"),
        ("::1.2.3.4", "::102:304"),  // IPv4-compatible (deprecated) is not IPv4
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
        ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ])
    func parsesAndPrintsCanonically(text: String, canonical: String) throws {
        let address = try #require(IPAddressBytes(text))
        #expect(address.description == canonical)
        #expect(IPAddressBytes(canonical) == address)
    }

    @Test(arguments: [
        "", " ", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1.02.3.4", "1..2.3", "1.2.3.4 ", " 1.2.3.4",
        "-1.2.3.4", "1.2.3.4/8", "0x7f.0.0.1", "1.2.3.", ".1.2.3", "1234.1.1.1",
        ":", ":::", "1:::2", "1::2::3", "12345::", "g::", ":1::", "1::2:", "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7", "1:2:3:4:5:6:7::8", "::1.2.3", "1.2.3.4::", "::1.2.3.4:5", "1:2:3:4:5:6:7:1.2.3.4",
        "fe80::1%eth0", "[::1]", "localhost", "unknown", "::ffff:01.2.3.4",
        "1111:2222:3333:4444:5555:6666:7777:8888:", String(repeating: "0", count: 50) + "::1",
    ])
    func rejectsInvalidText(text: String) {
        #expect(IPAddressBytes(text) == nil)
    }

    /// Differential check against glibc: random addresses with runs of zero groups round-trip
    /// through both parsers to the same bits, and print as glibc prints them (glibc also follows
    /// RFC 5952, except that it writes `::a.b.c.d` for the deprecated IPv4-compatible range).
    @Test func agreesWithGlibc() throws {
        var random = SplitMix64(state: 0xADD2_2E55)
        for _ in 0..<3_000 {
            var groups = (0..<8).map { _ in UInt16(truncatingIfNeeded: random.next()) }
            for index in groups.indices where random.next() % 2 == 0 { groups[index] = 0 }
            if random.next() % 8 == 0 { groups[0...4] = [0, 0, 0, 0, 0]; groups[5] = 0xFFFF }  // IPv4-mapped
            let high = groups[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
            let low = groups[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
            let address = IPAddressBytes(high: high, low: low)

            var raw = in6_addr()
            withUnsafeMutableBytes(of: &raw) { bytes in
                for (index, group) in groups.enumerated() {
                    bytes[index * 2] = UInt8(group >> 8)
                    bytes[index * 2 + 1] = UInt8(group & 0xFF)
                }
            }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            let glibcText = try #require(inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count)).map { String(cString: $0) })
            #expect(IPAddressBytes(glibcText) == address, "\(glibcText)")

            var parsed = in6_addr()
            let ours = address.description
            if address.isIPv4 {
                var v4 = in_addr()
                #expect(inet_pton(AF_INET, ours, &v4) == 1, "\(ours)")
                #expect(glibcText == "::ffff:" + ours)
            } else {
                #expect(inet_pton(AF_INET6, ours, &parsed) == 1, "\(ours)")
                #expect(withUnsafeBytes(of: parsed) { Array($0) } == withUnsafeBytes(of: raw) { Array($0) }, "\(ours)")
                if high != 0 || low >> 32 != 0 { #expect(ours == glibcText) }
            }
        }
    }

    @Test func ipv4AndMappedAreOneAddress() throws {
        let plain = try #require(IPAddressBytes("10.0.0.1"))
        let mapped = try #require(IPAddressBytes("::ffff:10.0.0.1"))
        #expect(plain == mapped)
        #expect(plain.isIPv4)
        #expect(plain.ipv4 == 0x0A00_0001)
        #expect(IPAddressBytes(ipv4: 0x0A00_0001) == plain)
        #expect(try #require(IPAddressBytes("::1")).ipv4 == nil)
    }
}

@Suite struct IPNetworkTests {
    private func address(_ text: String) throws -> IPAddressBytes { try #require(IPAddressBytes(text)) }

    @Test func ipv4PrefixBoundaries() throws {
        let network = try #require(IPNetwork("10.0.0.0/8"))
        #expect(network.contains(try address("10.0.0.0")))
        #expect(network.contains(try address("10.255.255.255")))
        #expect(!network.contains(try address("11.0.0.0")))
        #expect(!network.contains(try address("9.255.255.255")))
        #expect(network.description == "10.0.0.0/8")

        let private172 = try #require(IPNetwork("172.16.0.0/12"))
        #expect(private172.contains(try address("172.31.255.255")))
        #expect(!private172.contains(try address("172.32.0.0")))
        #expect(!private172.contains(try address("172.15.255.255")))
    }

    @Test func hostAndPointToPointNetworks() throws {
        let host = try #require(IPNetwork("192.168.1.7"))
        #expect(host == IPNetwork("192.168.1.7/32"))
        #expect(host.contains(try address("192.168.1.7")))
        #expect(!host.contains(try address("192.168.1.6")))
        #expect(!host.contains(try address("192.168.1.8")))

        let pair = try #require(IPNetwork("192.168.1.6/31"))
        #expect(pair.contains(try address("192.168.1.6")))
        #expect(pair.contains(try address("192.168.1.7")))
        #expect(!pair.contains(try address("192.168.1.5")))
        #expect(!pair.contains(try address("192.168.1.8")))

        let loopback6 = try #require(IPNetwork("::1"))
        #expect(loopback6 == IPNetwork("::1/128"))
        #expect(loopback6.contains(try address("::1")))
        #expect(!loopback6.contains(try address("::2")))
        #expect(!loopback6.contains(try address("::")))
    }

    @Test func zeroPrefixes() throws {
        let allIPv4 = try #require(IPNetwork("0.0.0.0/0"))
        #expect(allIPv4.contains(try address("0.0.0.0")))
        #expect(allIPv4.contains(try address("255.255.255.255")))
        #expect(allIPv4.contains(try address("::ffff:1.2.3.4")))
        #expect(!allIPv4.contains(try address("::1")))
        #expect(!allIPv4.contains(try address("2001:db8::1")))

        let everything = try #require(IPNetwork("::/0"))
        #expect(everything.contains(try address("::1")))
        #expect(everything.contains(try address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")))
        #expect(everything.contains(try address("1.2.3.4")))
    }

    @Test func ipv6Networks() throws {
        let ula = try #require(IPNetwork("fd00::/8"))
        #expect(ula.contains(try address("fd00::1")))
        #expect(ula.contains(try address("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")))
        #expect(!ula.contains(try address("fe00::")))
        #expect(!ula.contains(try address("fc00::1")))
        #expect(ula.description == "fd00::/8")

        // Prefix boundaries on both sides of the 64-bit halves.
        let slash64 = try #require(IPNetwork("2001:db8:1:2::/64"))
        #expect(slash64.contains(try address("2001:db8:1:2:ffff:ffff:ffff:ffff")))
        #expect(!slash64.contains(try address("2001:db8:1:3::")))
        let slash65 = try #require(IPNetwork("2001:db8::/65"))
        #expect(slash65.contains(try address("2001:db8::7fff:ffff:ffff:ffff")))
        #expect(!slash65.contains(try address("2001:db8::8000:0:0:0")))
        let slash127 = try #require(IPNetwork("2001:db8::/127"))
        #expect(slash127.contains(try address("2001:db8::1")))
        #expect(!slash127.contains(try address("2001:db8::2")))
    }

    @Test func mappedAndPlainIPv4NetworksAreTheSame() throws {
        let plain = try #require(IPNetwork("10.0.0.0/8"))
        let mapped = try #require(IPNetwork("::ffff:10.0.0.0/104"))
        #expect(plain == mapped)
        #expect(mapped.description == "10.0.0.0/8")
        #expect(plain.contains(try address("::ffff:10.1.2.3")))
        #expect(mapped.contains(try address("10.1.2.3")))
        #expect(try #require(IPNetwork("::ffff:10.0.0.1")).contains(try address("10.0.0.1")))
        let allMapped = try #require(IPNetwork("::ffff:0:0/96"))
        #expect(allMapped == IPNetwork("0.0.0.0/0"))
    }

    @Test func hostBitsAreCleared() throws {
        let network = try #require(IPNetwork("10.1.2.3/8"))
        #expect(network == IPNetwork("10.0.0.0/8"))
        #expect(network.base.description == "10.0.0.0")
        #expect(try #require(IPNetwork("fd12:3456::1/16")).description == "fd12::/16")
    }

    @Test(arguments: [
        "", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/08", "10.0.0.0/+8", "10.0.0.0/8/8",
        "10.0.0.0/ 8", "10.0.0.0 /8", "::/129", "::/1000", "fd00::/8a", "10.0.0/8", "example.com/8", "junk",
        "10.0.0.0/0x8",
    ])
    func rejectsInvalidNetworks(text: String) {
        #expect(IPNetwork(text) == nil)
    }
}

@Suite struct TrustedProxiesTests {
    @Test func parsesCommaAndSpaceSeparatedLists() throws {
        let proxies = try TrustedProxies(parsing: " 10.0.0.0/8,127.0.0.1  fd00::/8 ,\t::1,, ")
        #expect(proxies.networks.map(\.description) == ["10.0.0.0/8", "127.0.0.1/32", "fd00::/8", "::1/128"])
        #expect(proxies.contains("10.9.8.7"))
        #expect(proxies.contains("::ffff:10.9.8.7"))
        #expect(proxies.contains("127.0.0.1"))
        #expect(proxies.contains("::1"))
        #expect(proxies.contains("fd00::abcd"))
        #expect(!proxies.contains("127.0.0.2"))
        #expect(!proxies.contains("192.168.0.1"))
        #expect(!proxies.contains("unix"))
        #expect(!proxies.contains("?"))
    }

    @Test func emptyListTrustsNobody() throws {
        for list in ["", "  ", ",", " , "] {
            let proxies = try TrustedProxies(parsing: list)
            #expect(proxies.isEmpty)
            #expect(!proxies.contains("127.0.0.1"))
            #expect(!proxies.contains("::1"))
        }
        #expect(TrustedProxies.none.isEmpty)
    }

    @Test(arguments: ["localhost", "10.0.0.0/33", "10.0.0.0/8;192.168.0.1", "fd00::/129", "1.2.3.4:80", "*"])
    func rejectsInvalidEntriesNamingThem(entry: String) {
        #expect {
            try TrustedProxies(parsing: "127.0.0.1, \(entry)")
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return error.variable == "TRUSTED_PROXIES" && error.reason.contains("'\(entry)'")
        }
    }
}

@Suite struct ClientAddressTests {
    private let proxies: TrustedProxies

    init() throws {
        proxies = try TrustedProxies(parsing: "10.0.0.0/8, 127.0.0.1, fd00::/8")
    }

    private func resolve(_ peer: String, _ forwardedFor: [String]) -> String {
        ClientAddress.resolve(peer: peer, forwardedFor: forwardedFor, trusted: proxies)
    }

    @Test func untrustedPeerIgnoresForwardedFor() {
        #expect(resolve("203.0.113.9", ["1.2.3.4"]) == "203.0.113.9")
        #expect(resolve("203.0.113.9", ["1.2.3.4, 10.0.0.1"]) == "203.0.113.9")
        #expect(ClientAddress.resolve(peer: "127.0.0.1", forwardedFor: ["1.2.3.4"], trusted: .none) == "127.0.0.1")
    }

    @Test func trustedPeerWithoutHeaderIsTheClient() {
        #expect(resolve("10.0.0.5", []) == "10.0.0.5")
        #expect(resolve("10.0.0.5", [""]) == "10.0.0.5")
        #expect(resolve("10.0.0.5", [" , "]) == "10.0.0.5")
    }

    @Test func trustedPeerPicksRightmostUntrusted() {
        #expect(resolve("10.0.0.5", ["198.51.100.7"]) == "198.51.100.7")
        // The client spoofed 6.6.6.6; the proxy appended the real address to the right.
        #expect(resolve("10.0.0.5", ["6.6.6.6, 198.51.100.7"]) == "198.51.100.7")
        #expect(resolve("127.0.0.1", ["  6.6.6.6 ,\t198.51.100.7  "]) == "198.51.100.7")
    }

    @Test func chainsOfProxies() {
        // client -> CDN edge (untrusted to us, so it is "the client") -> 10.1.1.1 -> 10.2.2.2 -> us
        #expect(resolve("10.2.2.2", ["6.6.6.6, 198.51.100.7, 10.1.1.1"]) == "198.51.100.7")
        // Field lines are joined in order, as if one comma-separated list.
        #expect(resolve("10.2.2.2", ["6.6.6.6", "198.51.100.7, 10.1.1.1"]) == "198.51.100.7")
        #expect(resolve("10.2.2.2", ["6.6.6.6, 198.51.100.7", "10.1.1.1"]) == "198.51.100.7")
        // Every hop trusted: the leftmost is the best we know.
        #expect(resolve("10.2.2.2", ["10.3.3.3, 127.0.0.1, 10.1.1.1"]) == "10.3.3.3")
    }

    @Test func garbageStopsAtTheLastTrustedHop() {
        #expect(resolve("10.0.0.5", ["unknown"]) == "10.0.0.5")
        #expect(resolve("10.0.0.5", ["1.2.3.4, unknown"]) == "10.0.0.5")
        #expect(resolve("10.0.0.5", ["1.2.3.4, _hidden, 10.1.1.1"]) == "10.1.1.1")
        #expect(resolve("10.0.0.5", ["1.2.3.4, 300.1.1.1, 10.1.1.1"]) == "10.1.1.1")
        #expect(resolve("10.0.0.5", ["1.2.3.4, example.com"]) == "10.0.0.5")
        #expect(resolve("10.0.0.5", ["<script>, 1.2.3.4"]) == "1.2.3.4")  // never reached
        #expect(resolve("10.0.0.5", ["1.2.3.4 5.6.7.8"]) == "10.0.0.5")
        #expect(resolve("10.0.0.5", ["1.2.3.4:99999"]) == "10.0.0.5")
    }

    @Test func portsAreStripped() {
        #expect(resolve("10.0.0.5", ["198.51.100.7:5678"]) == "198.51.100.7")
        #expect(resolve("10.0.0.5", ["[2001:db8::7]:443"]) == "2001:db8::7")
        #expect(resolve("10.0.0.5", ["[2001:db8::7]"]) == "2001:db8::7")
        #expect(resolve("10.0.0.5", ["198.51.100.7, 10.1.1.1:80"]) == "198.51.100.7")
        #expect(resolve("10.0.0.5", ["[1.2.3.4]:80"]) == "10.0.0.5")  // brackets are for IPv6
        #expect(resolve("10.0.0.5", ["[2001:db8::7]x"]) == "10.0.0.5")
        #expect(resolve("10.0.0.5", ["[2001:db8::7"]) == "10.0.0.5")
    }

    @Test func ipv6AndMappedFormsAreNormalized() {
        #expect(resolve("fd00::1", ["2001:0DB8:0000:0000:0000:0000:0000:0007"]) == "2001:db8::7")
        #expect(resolve("::ffff:10.0.0.5", ["::ffff:198.51.100.7"]) == "198.51.100.7")
        #expect(resolve("10.0.0.5", ["::FFFF:c633:6407"]) == "198.51.100.7")
        // A trusted hop written mapped is still trusted.
        #expect(resolve("fd00::1", ["198.51.100.7, ::ffff:10.1.1.1"]) == "198.51.100.7")
        // Untrusted peers come back normalized too (one client, one key).
        #expect(resolve("2001:DB8:0:0::1", ["1.2.3.4"]) == "2001:db8::1")
        #expect(resolve("::ffff:203.0.113.9", []) == "203.0.113.9")
        // Not an address at all (a Unix socket peer): returned unchanged.
        #expect(resolve("unix", ["1.2.3.4"]) == "unix")
    }

    @Test func onlyTheRightmostEntriesAreExamined() {
        let limit = ClientAddress.maximumForwardedEntries
        let trustedHops = Array(repeating: "10.1.1.1", count: limit - 1)
        let withinLimit = (["198.51.100.7"] + trustedHops).joined(separator: ", ")
        #expect(resolve("10.0.0.5", [withinLimit]) == "198.51.100.7")
        let beyondLimit = (["198.51.100.7"] + trustedHops + ["10.2.2.2"]).joined(separator: ", ")
        #expect(resolve("10.0.0.5", [beyondLimit]) == "10.1.1.1")
    }

    @Test func randomChainsResolveToThePeerOrAnEntry() {
        var random = SplitMix64(state: 0x5EED_ADD2)
        let pool = [
            "10.0.0.1", "10.255.255.255", "127.0.0.1", "fd00::1", "::ffff:10.9.9.9", "[fd00::2]:80", "10.4.4.4:8080",
            "198.51.100.7", "203.0.113.1:443", "2001:db8::1", "[2001:db8::2]", "::ffff:1.2.3.4", "11.0.0.0",
            "unknown", "", " ", "garbage", "1.2.3", ":::", "[::1", "256.1.1.1", "1.2.3.4:", "::", "0.0.0.0",
        ]
        let peers = ["10.0.0.5", "127.0.0.1", "fd00::9", "203.0.113.50", "::1", "unix"]
        for _ in 0..<2_000 {
            let peer = peers[Int(random.next() % UInt64(peers.count))]
            var lines: [String] = []
            var entries: [String] = []
            for _ in 0..<Int(random.next() % 4) {
                let count = Int(random.next() % 6)
                let line = (0..<count).map { _ in pool[Int(random.next() % UInt64(pool.count))] }
                entries += line
                lines.append(line.joined(separator: random.next() % 2 == 0 ? "," : " , "))
            }
            let result = resolve(peer, lines)
            let candidates = ([peer] + entries).compactMap { entry -> String? in
                ClientAddress.forwardedAddress(Substring(entry))?.description ?? (entry == peer ? peer : nil)
            }
            #expect(candidates.contains(result), "peer \(peer), header \(lines) gave \(result)")
            if !proxies.contains(peer) {
                #expect(result == (IPAddressBytes(peer)?.description ?? peer))
            }
        }
    }
}
