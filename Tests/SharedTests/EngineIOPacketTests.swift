import Testing

@testable import Shared

@Suite("EngineIOPacket")
struct EngineIOPacketTests {
    @Test("decodes every packet type")
    func decodesPackets() throws {
        let open = try EngineIOPacket.decode(
            #"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"#
                + #""maxPayload":1000000}"#)
        guard case .open(let handshake) = open else {
            Issue.record("not an open packet: \(open)")
            return
        }
        #expect(handshake["sid"] == "lv_VI97HAXpY6yYWAAAC")
        #expect(handshake["pingInterval"] == 25000)

        #expect(try EngineIOPacket.decode("1") == .close)
        #expect(try EngineIOPacket.decode("2") == .ping(nil))
        #expect(try EngineIOPacket.decode("2probe") == .ping("probe"))
        #expect(try EngineIOPacket.decode("3") == .pong(nil))
        #expect(try EngineIOPacket.decode("3probe") == .pong("probe"))
        #expect(try EngineIOPacket.decode("4") == .message(""))
        #expect(try EngineIOPacket.decode("4hello") == .message("hello"))
        #expect(try EngineIOPacket.decode(#"42["ev",{}]"#) == .message(#"2["ev",{}]"#))
        #expect(try EngineIOPacket.decode("5") == .upgrade)
        #expect(try EngineIOPacket.decode("6") == .noop)
    }

    @Test("the data after the type digit is kept byte for byte")
    func exactData() throws {
        // A combining mark right after the digit forms one Character with it; it must stay in the data.
        let text = "4\u{301}x"
        #expect(try EngineIOPacket.decode(text) == .message("\u{301}x"))
        guard case .message(let data) = try EngineIOPacket.decode(text) else { return }
        #expect(Array(data.utf8) == Array("\u{301}x".utf8))
        #expect(try EngineIOPacket.decode("4 \u{0} \n") == .message(" \u{0} \n"))
    }

    @Test("encodes every packet type")
    func encodesPackets() {
        #expect(EngineIOPacket.open(["sid": "s", "upgrades": [], "pingInterval": 25000]).encoded
            == #"0{"sid":"s","upgrades":[],"pingInterval":25000}"#)
        #expect(EngineIOPacket.close.encoded == "1")
        #expect(EngineIOPacket.ping(nil).encoded == "2")
        #expect(EngineIOPacket.ping("probe").encoded == "2probe")
        #expect(EngineIOPacket.ping("").encoded == "2")
        #expect(EngineIOPacket.pong(nil).encoded == "3")
        #expect(EngineIOPacket.pong("probe").encoded == "3probe")
        #expect(EngineIOPacket.message(#"0{"sid":"x"}"#).encoded == #"40{"sid":"x"}"#)
        #expect(EngineIOPacket.message("").encoded == "4")
        #expect(EngineIOPacket.upgrade.encoded == "5")
        #expect(EngineIOPacket.noop.encoded == "6")
    }

    @Test("round trips")
    func roundTrips() throws {
        let packets: [EngineIOPacket] = [
            .open(["sid": "a", "upgrades": ["websocket"], "maxPayload": 1_000_000]), .open([:]),
            .close, .ping(nil), .ping("probe"), .pong(nil), .pong("probe"), .message(""), .message("2[\"a\"]"),
            .message("ünïcode \u{1F600}"), .upgrade, .noop,
        ]
        for packet in packets {
            #expect(try EngineIOPacket.decode(packet.encoded) == packet)
        }
    }

    @Test("malformed frames are refused")
    func malformed() {
        let cases: [(String, EngineIOParseError)] = [
            ("", .empty),
            ("7", .unknownPacketType("7")),
            ("b4AQID", .unknownPacketType("b")),
            ("x", .unknownPacketType("x")),
            ("\u{1F600}", .unknownPacketType("\u{1F600}")),
            (" 4", .unknownPacketType(" ")),
            ("1x", .unexpectedData(packet: "close")),
            ("5 ", .unexpectedData(packet: "upgrade")),
            ("6probe", .unexpectedData(packet: "noop")),
            ("0", .openPayloadNotObject),
            ("0[]", .openPayloadNotObject),
            ("0\"sid\"", .openPayloadNotObject),
        ]
        for (input, expected) in cases {
            #expect(decodeError(input) == expected, "input: \(input)")
            #expect(decodeError(input)?.message.isEmpty == false)
        }
        guard case .invalidJSON(let error) = decodeError("0{\"sid\":}") else {
            Issue.record("expected invalid JSON")
            return
        }
        #expect(!EngineIOParseError.invalidJSON(error).message.isEmpty)
        guard case .invalidJSON(let depth) = decodeError(#"0{"a":[[[]]]}"#, maxDepth: 3) else {
            Issue.record("expected a depth error")
            return
        }
        #expect(depth.kind == .depthLimitExceeded(3))
    }
}

private func decodeError(_ input: String, maxDepth: Int = EngineIOPacket.defaultMaxDepth) -> EngineIOParseError? {
    do {
        _ = try EngineIOPacket.decode(input, maxDepth: maxDepth)
        return nil
    } catch {
        return error
    }
}
