import Testing

@testable import Shared

/// Decodes `bytes` with a parser of `role` and returns every event up to `.needMoreData`.
private func decode(_ bytes: [UInt8], role: WebSocketRole) -> [WebSocketEvent] {
    var parser = WebSocketParser(role: role, limits: WebSocketLimits(maxMessageBytes: 1 << 22))
    parser.append(bytes)
    var events: [WebSocketEvent] = []
    while true {
        let event = parser.next()
        if event == .needMoreData { return events }
        events.append(event)
        if case .close = event { return events }
        if case .failure = event { return events }
    }
}

@Suite struct WebSocketFrameEncoderTests {
    @Test func rfcExamples() {
        #expect(WebSocketFrameEncoder.text("Hello") == [0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
        #expect(
            WebSocketFrameEncoder.frame(.text, payload: Array("Hello".utf8), maskingKey: (0x37, 0xFA, 0x21, 0x3D))
                == [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
        #expect(WebSocketFrameEncoder.frame(.text, payload: Array("Hel".utf8), fin: false) == [0x01, 0x03, 0x48, 0x65, 0x6C])
        #expect(WebSocketFrameEncoder.frame(.continuation, payload: Array("lo".utf8)) == [0x80, 0x02, 0x6C, 0x6F])
        #expect(WebSocketFrameEncoder.ping(Array("Hello".utf8)) == [0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
        #expect(WebSocketFrameEncoder.pong([]) == [0x8A, 0x00])
        let binary = WebSocketFrameEncoder.binary([UInt8](repeating: 1, count: 256))
        #expect(Array(binary[..<4]) == [0x82, 0x7E, 0x01, 0x00])
        let large = WebSocketFrameEncoder.binary([UInt8](repeating: 1, count: 65536))
        #expect(Array(large[..<10]) == [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
    }

    @Test func minimalLengthForms() {
        for (count, headerLength) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let frame = WebSocketFrameEncoder.frame(.binary, payload: [UInt8](repeating: 0, count: count))
            #expect(frame.count == headerLength + count)
            #expect(WebSocketFrameEncoder.headerLength(payloadLength: count, masked: false) == headerLength)
            #expect(WebSocketFrameEncoder.headerLength(payloadLength: count, masked: true) == headerLength + 4)
        }
    }

    @Test(arguments: [0, 1, 3, 7, 8, 9, 125, 126, 127, 65535, 65536, 100_003])
    func roundTrips(_ count: Int) {
        let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let unmasked = WebSocketFrameEncoder.frame(.binary, payload: payload)
        #expect(decode(unmasked, role: .client) == [.message(.binary(payload))])
        let masked = WebSocketFrameEncoder.frame(.binary, payload: payload, maskingKey: (0xDE, 0xAD, 0xBE, 0xEF))
        #expect(decode(masked, role: .server) == [.message(.binary(payload))])
        if count > 0 {
            #expect(Array(masked[(masked.count - count)...]) != payload || count < 4)
        }
    }

    @Test func textAndFragmentsRoundTrip() {
        let text = String(repeating: "ünïcødé 😀 ", count: 50)
        let bytes = Array(text.utf8)
        let keyA: (UInt8, UInt8, UInt8, UInt8) = (1, 2, 3, 4)
        var stream = WebSocketFrameEncoder.frame(.text, payload: bytes[..<101], fin: false, maskingKey: keyA)
        stream += WebSocketFrameEncoder.frame(.ping, payload: [9], maskingKey: (5, 6, 7, 8))
        stream += WebSocketFrameEncoder.frame(.continuation, payload: bytes[101...], maskingKey: (9, 10, 11, 12))
        #expect(decode(stream, role: .server) == [.ping([9]), .message(.text(text))])
        #expect(decode(WebSocketFrameEncoder.text(text), role: .client) == [.message(.text(text))])
    }

    @Test func appendFrameSharesBuffer() {
        var out: [UInt8] = []
        WebSocketFrameEncoder.appendFrame(.text, payload: Array("a".utf8), to: &out)
        WebSocketFrameEncoder.appendFrame(.binary, payload: [1, 2], to: &out)
        #expect(out == [0x81, 0x01, 0x61, 0x82, 0x02, 1, 2])
        var header: [UInt8] = []
        WebSocketFrameEncoder.appendHeader(.binary, payloadLength: 70000, to: &header)
        #expect(header == [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70])
    }

    @Test func closeFrames() {
        #expect(WebSocketFrameEncoder.close(code: 1000) == [0x88, 0x02, 0x03, 0xE8])
        #expect(WebSocketFrameEncoder.close(code: 1001, reason: "bye") == [0x88, 0x05, 0x03, 0xE9, 0x62, 0x79, 0x65])
        #expect(decode(WebSocketFrameEncoder.close(code: 4000, reason: "custom ✓"), role: .client)
            == [.close(code: 4000, reason: "custom ✓")])
    }

    @Test func longCloseReasonIsCutOnCharacterBoundary() {
        // 122 ASCII bytes then "€" (3 bytes): 125 > 123, so the euro sign is dropped whole.
        let reason = String(repeating: "x", count: 122) + "€"
        let frame = WebSocketFrameEncoder.close(code: 1011, reason: reason)
        #expect(frame.count == 2 + 2 + 122)
        #expect(decode(frame, role: .client) == [.close(code: 1011, reason: String(repeating: "x", count: 122))])
        let exact = String(repeating: "y", count: 123)
        #expect(decode(WebSocketFrameEncoder.close(code: 1000, reason: exact), role: .client) == [.close(code: 1000, reason: exact)])
        let long = String(repeating: "é", count: 100)
        let cut = WebSocketFrameEncoder.close(code: 1000, reason: long)
        #expect(cut.count <= 2 + 125)
        #expect(decode(cut, role: .client) == [.close(code: 1000, reason: String(repeating: "é", count: 61))])
    }

    @Test func controlPayloadsAreCapped() {
        let ping = WebSocketFrameEncoder.ping([UInt8](repeating: 1, count: 200))
        #expect(ping.count == 2 + 125)
        let pong = WebSocketFrameEncoder.pong([UInt8](repeating: 1, count: 126))
        #expect(pong.count == 2 + 125)
    }
}
