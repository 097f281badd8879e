import Testing

@testable import Shared

/// `WebSocketFrameEncoder.payload(ofUnmaskedFrame:)`: the payload of a frame encoded once for many
/// sockets, for a long-polling transport.
@Suite("WebSocketFramePayload")
struct WebSocketFramePayloadTests {
    private static func pattern(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    }

    @Test("payloads of every length class come back exactly", arguments: [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
    func lengths(count: Int) {
        let payload = Self.pattern(count)
        let binary = WebSocketFrameEncoder.frame(.binary, payload: payload)
        #expect(binary.count == WebSocketFrameEncoder.headerLength(payloadLength: count, masked: false) + count)
        let extracted = WebSocketFrameEncoder.payload(ofUnmaskedFrame: binary)
        #expect(extracted.map(Array.init) == payload)
        #expect(extracted?.count == count)

        let text = String(repeating: "a", count: count)
        #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: WebSocketFrameEncoder.text(text)).map(Array.init) == Array(text.utf8))
    }

    @Test("a text frame of multi-byte characters")
    func multiByteText() {
        let text = #"42["message",{"text":"é€😀 日本"}]"#
        #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: WebSocketFrameEncoder.text(text)).map(Array.init) == Array(text.utf8))
    }

    @Test("the other frame builders are read too")
    func otherBuilders() {
        #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: WebSocketFrameEncoder.binary([1, 2, 3])).map(Array.init) == [1, 2, 3])
        #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: WebSocketFrameEncoder.ping([9])).map(Array.init) == [9])
        #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: WebSocketFrameEncoder.close(code: 1000)).map(Array.init) == [0x03, 0xE8])
    }

    @Test("masked frames give nil", arguments: [0, 5, 125, 126, 65_536])
    func masked(count: Int) {
        let frame = WebSocketFrameEncoder.frame(.text, payload: Self.pattern(count), maskingKey: (1, 2, 3, 4))
        #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: frame) == nil)
        // Even with an all-zero key (the bytes are unchanged, but the frame is still masked).
        let zeroKey = WebSocketFrameEncoder.frame(.text, payload: Self.pattern(count), maskingKey: (0, 0, 0, 0))
        #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: zeroKey) == nil)
    }

    @Test("truncated frames give nil", arguments: [0, 3, 125, 126, 300, 65_535, 65_536])
    func truncated(count: Int) {
        let frame = WebSocketFrameEncoder.frame(.text, payload: Self.pattern(count))
        // Every cut that leaves something shorter than the frame, checked at the header boundaries
        // and a few payload points.
        let header = WebSocketFrameEncoder.headerLength(payloadLength: count, masked: false)
        var cuts = Set(0..<min(frame.count, header + 3))
        cuts.formUnion([frame.count - 1, frame.count / 2, header + count / 3].filter { $0 >= 0 && $0 < frame.count })
        for cut in cuts.sorted() {
            #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: Array(frame[..<cut])) == nil, "cut \(cut) of \(frame.count)")
        }
    }

    @Test("extra trailing bytes give nil", arguments: [0, 10, 125, 126, 65_535, 65_536])
    func trailingBytes(count: Int) {
        let frame = WebSocketFrameEncoder.frame(.text, payload: Self.pattern(count))
        #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: frame + [0]) == nil)
        #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: frame + [1, 2, 3]) == nil)
        // Two frames in one buffer are not one frame.
        #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: frame + frame) == nil)
    }

    @Test("empty and one-byte arrays give nil")
    func tooShort() {
        #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: []) == nil)
        for byte in UInt8.min...UInt8.max {
            #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: [byte]) == nil)
        }
    }

    @Test("a 64-bit length beyond any buffer gives nil")
    func hugeDeclaredLength() {
        let header: [UInt8] = [0x81, 127]
        let lengths: [[UInt8]] = [
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            [0x80, 0, 0, 0, 0, 0, 0, 0],
            [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF6],  // Int.max - 9: header + length would overflow
            [0x40, 0, 0, 0, 0, 0, 0, 0],
            [0x3F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            [0, 0, 0, 0, 0, 0x01, 0, 0],
        ]
        for length in lengths {
            #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: header + length) == nil, "\(length)")
            #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: header + length + [0x41, 0x42]) == nil, "\(length)")
        }
    }

    /// The documented contract is "one unmasked, unfragmented frame": a non-final fragment is not one.
    @Test("a non-final fragment is not an unfragmented frame")
    func fragment() {
        let fragment = WebSocketFrameEncoder.frame(.text, payload: Array("4hel".utf8), fin: false)
        #expect(WebSocketFrameEncoder.payload(ofUnmaskedFrame: fragment) == nil)
    }

    @Test("random bytes never crash; anything accepted is a consistent unmasked frame")
    func fuzz() {
        var random = SplitMix64(state: 0xF4A3_E5)
        var accepted = 0
        for _ in 0..<20_000 {
            var bytes: [UInt8]
            switch Int.random(in: 0..<4, using: &random) {
            case 0:
                // Pure noise.
                bytes = (0..<Int.random(in: 0...16, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            case 1:
                // A real frame, maybe cut or extended.
                // Mostly short payloads; the 16-bit and 64-bit length forms now and then.
                let count = Int.random(in: 0..<20, using: &random) == 0
                    ? [65_535, 65_536].randomElement(using: &random)!
                    : [0, 1, 125, 126, 127, 200].randomElement(using: &random)!
                let masked = Int.random(in: 0..<4, using: &random) == 0
                bytes = WebSocketFrameEncoder.frame(
                    [.text, .binary, .continuation].randomElement(using: &random)!, payload: Self.pattern(count),
                    fin: Bool.random(using: &random), maskingKey: masked ? (9, 8, 7, 6) : nil)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes.removeLast(Int.random(in: 0...min(bytes.count, 12), using: &random))
                case 1: bytes += (0..<Int.random(in: 0...3, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                default: break
                }
            default:
                // A header with an extended length marker, random length bytes and a short body.
                let marker: UInt8 = [125, 126, 127, 0x80 | 126, 0x80 | 127].randomElement(using: &random)!
                bytes = [0x81, marker]
                bytes += (0..<Int.random(in: 0...10, using: &random)).map { _ in
                    Bool.random(using: &random) ? 0 : UInt8.random(in: 0...255, using: &random)
                }
                bytes += Array(repeating: 0x61, count: Int.random(in: 0...300, using: &random))
            }
            guard let payload = WebSocketFrameEncoder.payload(ofUnmaskedFrame: bytes) else { continue }
            accepted += 1
            #expect(bytes.count >= 2 && bytes[0] & 0x80 != 0 && bytes[1] & 0x80 == 0)
            // The payload is the tail of the frame, after a 2, 4 or 10 byte header.
            let header = bytes.count - payload.count
            #expect([2, 4, 10].contains(header))
            #expect(payload.endIndex == bytes.endIndex)
            #expect(Array(payload) == Array(bytes[header...]))
        }
        #expect(accepted > 500)
    }
}
