import Testing

@testable import Shared

/// Engine.IO v4 long-polling bodies: packets joined by U+001E.
@Suite("EngineIOPayload")
struct EngineIOPayloadTests {
    private static let rs: UInt8 = 0x1E

    private static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    private static func decode(_ body: [UInt8], maxPackets: Int = 100) -> Result<[String], EngineIOPayload.DecodeError> {
        Result { () throws(EngineIOPayload.DecodeError) in try EngineIOPayload.decode(body, maxPackets: maxPackets) }
    }

    // MARK: Decoding

    @Test("one packet without a separator")
    func singlePacket() throws {
        #expect(try EngineIOPayload.decode(Self.bytes("4hello"), maxPackets: 10) == ["4hello"])
        #expect(try EngineIOPayload.decode(Self.bytes("2"), maxPackets: 1) == ["2"])
    }

    @Test("several packets, in order")
    func severalPackets() throws {
        let body = Self.bytes("4hello") + [Self.rs] + Self.bytes("2") + [Self.rs] + Self.bytes(#"42["ev",{}]"#) + [Self.rs]
            + Self.bytes("6")
        #expect(try EngineIOPayload.decode(body, maxPackets: 10) == ["4hello", "2", #"42["ev",{}]"#, "6"])
    }

    @Test("an empty body is refused")
    func emptyBody() {
        #expect(Self.decode([]) == .failure(.empty))
        #expect(Self.decode([], maxPackets: 0) == .failure(.empty))
    }

    @Test("a separator at either end or twice in a row is an empty packet")
    func emptyPackets() {
        let cases: [[UInt8]] = [
            [Self.rs],
            [Self.rs, Self.rs],
            [Self.rs] + Self.bytes("4a"),
            Self.bytes("4a") + [Self.rs],
            Self.bytes("4a") + [Self.rs, Self.rs] + Self.bytes("4b"),
            Self.bytes("4a") + [Self.rs] + Self.bytes("4b") + [Self.rs],
            [Self.rs] + Self.bytes("4a") + [Self.rs],
        ]
        for body in cases {
            #expect(Self.decode(body) == .failure(.emptyPacket), "\(body)")
        }
    }

    @Test("more packets than the limit are refused")
    func tooManyPackets() throws {
        let three = Self.bytes("1") + [Self.rs] + Self.bytes("2") + [Self.rs] + Self.bytes("3")
        #expect(try EngineIOPayload.decode(three, maxPackets: 3) == ["1", "2", "3"])
        #expect(Self.decode(three, maxPackets: 2) == .failure(.tooManyPackets(limit: 2)))
        #expect(Self.decode(three, maxPackets: 1) == .failure(.tooManyPackets(limit: 1)))
        #expect(Self.decode(Self.bytes("4x"), maxPackets: 0) == .failure(.tooManyPackets(limit: 0)))
        // A thousand and one packets against the default POST limit.
        let many = EngineIOPayload.encode(Array(repeating: Self.bytes("2"), count: 1_001))
        #expect(try EngineIOPayload.decode(many, maxPackets: 1_001).count == 1_001)
        #expect(Self.decode(many, maxPackets: 1_000) == .failure(.tooManyPackets(limit: 1_000)))
    }

    @Test("invalid UTF-8 is refused")
    func invalidUTF8() {
        let cases: [[UInt8]] = [
            [0xFF],
            Self.bytes("4a") + [0xC3],  // truncated two-byte sequence
            Self.bytes("4") + [0xC0, 0xAF],  // overlong
            Self.bytes("4") + [0xED, 0xA0, 0x80],  // surrogate
            Self.bytes("4ok") + [Self.rs] + Self.bytes("4") + [0x80],  // lone continuation in the second packet
            Self.bytes("4") + [0xF4, 0x90, 0x80, 0x80],  // beyond U+10FFFF
        ]
        for body in cases {
            #expect(Self.decode(body) == .failure(.invalidUTF8), "\(body)")
        }
    }

    @Test("multi-byte UTF-8 is kept exactly")
    func multiByteContent() throws {
        let packets = ["4é€😀", #"42["msg","日本語 👩‍👩‍👧"]"#, "4e\u{301}"]
        let body = EngineIOPayload.encode(packets.map(Self.bytes))
        let decoded = try EngineIOPayload.decode(body, maxPackets: 10)
        #expect(decoded == packets)
        #expect(decoded.map { Array($0.utf8) } == packets.map(Self.bytes))
    }

    @Test("decode works on slices")
    func slices() throws {
        let whole = Self.bytes("xx4a") + [Self.rs] + Self.bytes("4byy")
        #expect(try EngineIOPayload.decode(whole[2..<(whole.count - 2)], maxPackets: 5) == ["4a", "4b"])
    }

    // MARK: Encoding

    @Test("encode joins packets with the separator")
    func encoding() {
        #expect(EngineIOPayload.encode([[UInt8]]()) == [])
        #expect(EngineIOPayload.encode([Self.bytes("4a")]) == Self.bytes("4a"))
        #expect(EngineIOPayload.encode([Self.bytes("4a"), Self.bytes("2")]) == Self.bytes("4a") + [Self.rs] + Self.bytes("2"))
        #expect(EngineIOPayload.encode(["6".utf8, "1".utf8]) == [UInt8(ascii: "6"), Self.rs, UInt8(ascii: "1")])
    }

    @Test("encode then decode gives the packets back")
    func roundTrip() throws {
        let packets = ["0{\"sid\":\"abc\",\"upgrades\":[\"websocket\"]}", "40", #"42["hi",1]"#, "3", "6", "1"]
        let body = EngineIOPayload.encode(packets.map(Self.bytes))
        #expect(try EngineIOPayload.decode(body, maxPackets: packets.count) == packets)
    }

    @Test("every error has a message")
    func messages() {
        let errors: [EngineIOPayload.DecodeError] = [.empty, .emptyPacket, .tooManyPackets(limit: 7), .invalidUTF8]
        for error in errors { #expect(!error.message.isEmpty) }
        #expect(EngineIOPayload.DecodeError.tooManyPackets(limit: 7).message.contains("7"))
    }

    // MARK: Fuzz

    @Test("random bytes never crash, and whatever decodes re-encodes to the same bytes")
    func fuzzBytes() {
        var random = SplitMix64(state: 0xE1_0B0D)
        // Biased toward separators, digits and multi-byte starts so every path is taken.
        let alphabet: [UInt8] = [Self.rs, Self.rs, Self.rs] + Array(UInt8(ascii: "0")...UInt8(ascii: "9"))
            + [UInt8(ascii: "["), UInt8(ascii: "\""), 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0xFF, 0x00]
        var decodedCount = 0
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...24, using: &random)
            var body: [UInt8] = []
            for _ in 0..<length {
                if Int.random(in: 0..<8, using: &random) == 0 {
                    body.append(UInt8.random(in: 0...255, using: &random))
                } else {
                    body.append(alphabet.randomElement(using: &random)!)
                }
            }
            let maxPackets = Int.random(in: 0...12, using: &random)
            switch Self.decode(body, maxPackets: maxPackets) {
            case .success(let packets):
                decodedCount += 1
                #expect(!packets.isEmpty && packets.count <= maxPackets, "\(body)")
                #expect(packets.allSatisfy { !$0.isEmpty && !$0.utf8.contains(Self.rs) }, "\(body)")
                #expect(EngineIOPayload.encode(packets.map { Array($0.utf8) }) == body, "\(body)")
            case .failure(let error):
                // The error named is the one the body shows.
                switch error {
                case .empty: #expect(body.isEmpty)
                case .emptyPacket:
                    let doubled = zip(body, body.dropFirst()).contains { $0 == Self.rs && $1 == Self.rs }
                    #expect(body.first == Self.rs || body.last == Self.rs || doubled, "\(body)")
                case .tooManyPackets(let limit):
                    #expect(limit == maxPackets)
                    #expect(body.count { $0 == Self.rs } >= maxPackets, "\(body)")
                case .invalidUTF8: #expect(String(validating: body, as: UTF8.self) == nil)
                }
            }
        }
        // The bias makes decodable bodies common enough to check the round trip.
        #expect(decodedCount > 500)
    }

    @Test("random packet lists round-trip through encode and decode")
    func fuzzRoundTrip() throws {
        var random = SplitMix64(state: 0x5EED_0001E)
        let pieces = ["4", "2", "3", "6", "1", "0", "[", "]", "\"", "{", "}", ":", ",", "a", "Z", " ", "é", "€", "😀", "e\u{301}",
                      "\u{1F}", "\u{1D}", "\u{0}", "\\u001e", "日"]
        for _ in 0..<20_000 {
            let count = Int.random(in: 1...10, using: &random)
            var packets: [String] = []
            for _ in 0..<count {
                var packet = ""
                for _ in 0..<Int.random(in: 1...8, using: &random) {
                    packet += pieces.randomElement(using: &random)!
                }
                packets.append(packet)
            }
            let body = EngineIOPayload.encode(packets.map { Array($0.utf8) })
            let decoded = try EngineIOPayload.decode(body, maxPackets: count)
            #expect(decoded == packets)
            #expect(decoded.map { Array($0.utf8) } == packets.map { Array($0.utf8) })
            if count > 1 {
                #expect(Self.decode(body, maxPackets: count - 1) == .failure(.tooManyPackets(limit: count - 1)))
            }
        }
    }
}
