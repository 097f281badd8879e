import Testing

@testable import Shared



private let key: (UInt8, UInt8, UInt8, UInt8) = (0x37, 0xFA, 0x21, 0x3D)

/// A masked frame as a client sends it.
private func clientFrame(_ opcode: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
    WebSocketFrameEncoder.frame(opcode, payload: payload, fin: fin, maskingKey: key)
}

private func clientText(_ text: String, fin: Bool = true) -> [UInt8] {
    clientFrame(.text, Array(text.utf8), fin: fin)
}

/// A masked frame built by hand: any first byte (RSV bits, reserved opcodes) and any length form.
/// `lengthForm` 7, 16 or 64 picks the length encoding whatever the payload size.
private func rawFrame(firstByte: UInt8, payload: [UInt8], lengthForm: Int = 0, masked: Bool = true) -> [UInt8] {
    var out = [firstByte]
    let maskBit: UInt8 = masked ? 0x80 : 0
    let form = lengthForm != 0 ? lengthForm : (payload.count <= 125 ? 7 : (payload.count <= 0xFFFF ? 16 : 64))
    switch form {
    case 7:
        out.append(maskBit | UInt8(payload.count))
    case 16:
        out.append(maskBit | 126)
        out += [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
    default:
        out.append(maskBit | 127)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((payload.count >> shift) & 0xFF)) }
    }
    if masked {
        let keyBytes = [key.0, key.1, key.2, key.3]
        out += keyBytes
        out += payload.enumerated().map { $0.element ^ keyBytes[$0.offset % 4] }
    } else {
        out += payload
    }
    return out
}

/// Feeds `chunks` in order, draining after each one; the events in order (`.needMoreData` left out,
/// a final close or failure recorded once).
private func events(
    _ chunks: [[UInt8]],
    role: WebSocketRole = .server,
    limits: WebSocketLimits = WebSocketLimits()
) -> [WebSocketEvent] {
    var parser = WebSocketParser(role: role, limits: limits)
    var result: [WebSocketEvent] = []
    for chunk in chunks {
        parser.append(chunk)
        while true {
            let event = parser.next()
            if event == .needMoreData { break }
            result.append(event)
            switch event {
            case .close, .failure:
                #expect(parser.next() == event, "a finished parser must stay put")
                return result
            default:
                continue
            }
        }
    }
    return result
}

private func events(_ bytes: [UInt8], role: WebSocketRole = .server, limits: WebSocketLimits = WebSocketLimits()) -> [WebSocketEvent] {
    events([bytes], role: role, limits: limits)
}

/// Splits `bytes` at random points (seeded).
private func randomSplit(_ bytes: [UInt8], seed: UInt64) -> [[UInt8]] {
    var generator = SplitMix64(state: seed)
    var chunks: [[UInt8]] = []
    var start = 0
    while start < bytes.count {
        let size = Int.random(in: 1...max(1, min(bytes.count - start, 97)), using: &generator)
        chunks.append(Array(bytes[start..<(start + size)]))
        start += size
    }
    return chunks
}

/// The events of `bytes` fed whole; checks that byte-by-byte and 20 random splits give the same.
private func eventsForAllSplits(
    _ bytes: [UInt8],
    role: WebSocketRole = .server,
    limits: WebSocketLimits = WebSocketLimits(),
    sourceLocation: SourceLocation = #_sourceLocation
) -> [WebSocketEvent] {
    let whole = events(bytes, role: role, limits: limits)
    let byteByByte = events(bytes.map { [$0] }, role: role, limits: limits)
    #expect(byteByByte == whole, "byte by byte", sourceLocation: sourceLocation)
    for seed in 1...20 {
        let split = events(randomSplit(bytes, seed: UInt64(seed)), role: role, limits: limits)
        #expect(split == whole, "random split seed \(seed)", sourceLocation: sourceLocation)
    }
    return whole
}

private func failure(_ events: [WebSocketEvent]) -> UInt16? {
    if case .failure(let code, let reason) = events.last {
        #expect(!reason.isEmpty && reason.utf8.count <= 123)
        return code
    }
    return nil
}

@Suite struct WebSocketParserTests {
    // MARK: Framing

    @Test func rfcExamples() {
        // RFC 6455 §5.7.
        let maskedHello: [UInt8] = [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]
        #expect(eventsForAllSplits(maskedHello) == [.message(.text("Hello"))])
        let unmaskedHello: [UInt8] = [0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F]
        #expect(eventsForAllSplits(unmaskedHello, role: .client) == [.message(.text("Hello"))])
        let fragmented: [UInt8] = [0x01, 0x03, 0x48, 0x65, 0x6C, 0x80, 0x02, 0x6C, 0x6F]
        #expect(eventsForAllSplits(fragmented, role: .client) == [.message(.text("Hello"))])
        let ping: [UInt8] = [0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F]
        #expect(events(ping, role: .client) == [.ping(Array("Hello".utf8))])
        let maskedPong: [UInt8] = [0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]
        #expect(events(maskedPong) == [.pong(Array("Hello".utf8))])
        let binary256: [UInt8] = [0x82, 0x7E, 0x01, 0x00] + [UInt8](repeating: 7, count: 256)
        #expect(events(binary256, role: .client) == [.message(.binary([UInt8](repeating: 7, count: 256)))])
    }

    @Test func masking() {
        let unmasked = rawFrame(firstByte: 0x81, payload: Array("hi".utf8), masked: false)
        #expect(failure(events(unmasked, role: .server)) == 1002)
        let masked = rawFrame(firstByte: 0x81, payload: Array("hi".utf8), masked: true)
        #expect(failure(events(masked, role: .client)) == 1002)
        #expect(events(masked, role: .server) == [.message(.text("hi"))])
        #expect(events(unmasked, role: .client) == [.message(.text("hi"))])
    }

    @Test(arguments: [0, 1, 125, 126, 127, 1000, 65535, 65536, 70001])
    func lengths(_ count: Int) {
        let payload = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let frame = clientFrame(.binary, payload)
        #expect(events(frame) == [.message(.binary(payload))])
        #expect(events(randomSplit(frame, seed: UInt64(count))) == [.message(.binary(payload))])
    }

    @Test func nonMinimalLengthsAreAccepted() {
        let payload = Array("abc".utf8)
        #expect(eventsForAllSplits(rawFrame(firstByte: 0x81, payload: payload, lengthForm: 16)) == [.message(.text("abc"))])
        #expect(eventsForAllSplits(rawFrame(firstByte: 0x81, payload: payload, lengthForm: 64)) == [.message(.text("abc"))])
        #expect(events(rawFrame(firstByte: 0x82, payload: [], lengthForm: 64)) == [.message(.binary([]))])
    }

    @Test func sixtyFourBitLengthWithTopBitFails() {
        // Header only: the failure comes before any payload.
        let header: [UInt8] = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1]
        #expect(failure(eventsForAllSplits(header)) == 1002)
    }

    @Test func emptyMessages() {
        #expect(eventsForAllSplits(clientText("")) == [.message(.text(""))])
        let emptyFragments = clientText("", fin: false) + clientFrame(.continuation, [], fin: false) + clientFrame(.continuation, [])
        #expect(eventsForAllSplits(emptyFragments) == [.message(.text(""))])
    }

    // MARK: Fragmentation

    @Test func fragmentsWithInterleavedControlFrames() {
        let stream = clientText("Hel", fin: false) + clientFrame(.ping, Array("p".utf8))
            + clientFrame(.continuation, Array("l".utf8), fin: false) + clientFrame(.pong, [])
            + clientFrame(.continuation, Array("o".utf8))
        #expect(eventsForAllSplits(stream) == [.ping([0x70]), .pong([]), .message(.text("Hello"))])
    }

    @Test func binaryFragments() {
        let stream = clientFrame(.binary, [1, 2], fin: false) + clientFrame(.continuation, [3], fin: false)
            + clientFrame(.continuation, [4, 5])
        #expect(eventsForAllSplits(stream) == [.message(.binary([1, 2, 3, 4, 5]))])
    }

    @Test func continuationWithoutStartFails() {
        #expect(failure(eventsForAllSplits(clientFrame(.continuation, Array("x".utf8)))) == 1002)
        // Also right after a complete message.
        let stream = clientText("a") + clientFrame(.continuation, Array("x".utf8))
        let result = eventsForAllSplits(stream)
        #expect(result.first == .message(.text("a")))
        #expect(failure(result) == 1002)
    }

    @Test func newDataFrameDuringFragmentedMessageFails() {
        #expect(failure(eventsForAllSplits(clientText("a", fin: false) + clientText("b"))) == 1002)
        #expect(failure(eventsForAllSplits(clientText("a", fin: false) + clientFrame(.binary, [1]))) == 1002)
    }

    @Test func fragmentedControlFrameFails() {
        #expect(failure(eventsForAllSplits(rawFrame(firstByte: 0x09, payload: []))) == 1002)
        #expect(failure(eventsForAllSplits(rawFrame(firstByte: 0x08, payload: [0x03, 0xE8]))) == 1002)
    }

    @Test func oversizedControlFrameFails() {
        // 126 bytes announced with the 16-bit form: fails on the second byte.
        #expect(failure(eventsForAllSplits(rawFrame(firstByte: 0x89, payload: [UInt8](repeating: 0, count: 126)))) == 1002)
        #expect(failure(events([0x89, 0xFE])) == 1002)
        #expect(events(clientFrame(.ping, [UInt8](repeating: 1, count: 125))) == [.ping([UInt8](repeating: 1, count: 125))])
    }

    // MARK: Reserved bits and opcodes

    @Test(arguments: [UInt8(0x40), 0x20, 0x10, 0x70])
    func reservedBitsFail(_ bit: UInt8) {
        #expect(failure(eventsForAllSplits(rawFrame(firstByte: 0x81 | bit, payload: Array("x".utf8)))) == 1002)
        #expect(failure(events([0x81 | bit])) == 1002, "detected from the first byte")
    }

    @Test(arguments: [UInt8(3), 4, 5, 6, 7, 11, 12, 13, 14, 15])
    func reservedOpcodesFail(_ opcode: UInt8) {
        #expect(failure(eventsForAllSplits(rawFrame(firstByte: 0x80 | opcode, payload: []))) == 1002)
        // After a valid message, the message still comes out first.
        let result = events(clientText("ok") + rawFrame(firstByte: 0x80 | opcode, payload: [1]))
        #expect(result.first == .message(.text("ok")))
        #expect(failure(result) == 1002)
    }

    // MARK: Close

    @Test func closePayloads() {
        #expect(eventsForAllSplits(clientFrame(.close, [])) == [.close(code: nil, reason: "")])
        #expect(failure(eventsForAllSplits(clientFrame(.close, [0x03]))) == 1002)
        #expect(eventsForAllSplits(clientFrame(.close, [0x03, 0xE8])) == [.close(code: 1000, reason: "")])
        let withReason = WebSocketFrameEncoder.frame(.close, payload: [0x03, 0xE9] + Array("bye ✓".utf8), maskingKey: key)
        #expect(eventsForAllSplits(withReason) == [.close(code: 1001, reason: "bye ✓")])
    }

    @Test(arguments: [UInt16(0), 999, 1004, 1005, 1006, 1012, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
    func invalidCloseCodesFail(_ code: UInt16) {
        #expect(!WebSocketCloseCode.isValidOnWire(code))
        #expect(failure(events(clientFrame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)]))) == 1002)
    }

    @Test(arguments: [UInt16(1000), 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])
    func validCloseCodesAreAccepted(_ code: UInt16) {
        #expect(WebSocketCloseCode.isValidOnWire(code))
        #expect(events(clientFrame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)])) == [.close(code: code, reason: "")])
    }

    @Test func closeReasonMustBeUTF8() {
        let invalid = clientFrame(.close, [0x03, 0xE8] + [0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xED, 0xA0, 0x80, 0x65])
        #expect(failure(eventsForAllSplits(invalid)) == 1007)
        let truncated = clientFrame(.close, [0x03, 0xE8, 0x61, 0xE2, 0x82])
        #expect(failure(events(truncated)) == 1007)
    }

    @Test func nothingIsReadAfterClose() {
        var parser = WebSocketParser(role: .server)
        parser.append(clientFrame(.close, [0x03, 0xE8]) + clientText("late"))
        #expect(parser.next() == .close(code: 1000, reason: ""))
        #expect(parser.next() == .close(code: 1000, reason: ""))
        parser.append(clientText("later"))
        #expect(parser.next() == .close(code: 1000, reason: ""))
        #expect(parser.isFinished)
        #expect(parser.bufferedByteCount == 0)
    }

    @Test func closeInsideFragmentedMessage() {
        let stream = clientText("par", fin: false) + clientFrame(.close, [0x03, 0xE8])
        #expect(eventsForAllSplits(stream) == [.close(code: 1000, reason: "")])
    }

    // MARK: UTF-8

    @Test func invalidTextFailsFast() {
        // A 1000-byte text frame whose third byte is invalid: the failure comes with only the first
        // bytes of the payload received.
        var payload = [UInt8](repeating: 0x61, count: 1000)
        payload[2] = 0xFF
        let frame = clientFrame(.text, payload)
        let headerLength = 2 + 2 + 4
        var parser = WebSocketParser(role: .server)
        parser.append(frame[..<(headerLength + 2)])
        #expect(parser.next() == .needMoreData)
        parser.append(frame[(headerLength + 2)..<(headerLength + 3)])
        #expect(parser.next() == .failure(code: 1007, reason: "text message is not valid UTF-8"))
        #expect(failure(eventsForAllSplits(frame)) == 1007)
    }

    @Test func invalidTextFailsFastInsideLaterFragment() {
        // Surrogate U+D800 (ED A0 80) split between fragments: fails on A0, before the frame ends.
        var parser = WebSocketParser(role: .server)
        parser.append(clientText("ok", fin: false))
        let second = clientFrame(.continuation, [0x61, 0xED], fin: false)
        parser.append(second)
        #expect(parser.next() == .needMoreData)
        let third = clientFrame(.continuation, [0xA0, 0x80] + [UInt8](repeating: 0x61, count: 200))
        parser.append(third[..<9])  // header (8 bytes) + 0xA0
        #expect(parser.next() == .failure(code: 1007, reason: "text message is not valid UTF-8"))
    }

    @Test func multiByteCharactersSplitAcrossFragments() {
        // "a€😀" = 61 | E2 82 AC | F0 9F 98 80, cut inside both characters.
        let bytes: [UInt8] = [0x61, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80]
        let stream = clientFrame(.text, Array(bytes[..<2]), fin: false)
            + clientFrame(.continuation, Array(bytes[2..<3]), fin: false)
            + clientFrame(.ping, [])
            + clientFrame(.continuation, Array(bytes[3..<6]), fin: false)
            + clientFrame(.continuation, Array(bytes[6...]))
        #expect(eventsForAllSplits(stream) == [.ping([]), .message(.text("a€😀"))])
    }

    @Test func textEndingInsideCharacterFails() {
        #expect(failure(eventsForAllSplits(clientFrame(.text, [0x61, 0xE2, 0x82]))) == 1007)
        let fragmented = clientFrame(.text, [0x61, 0xE2], fin: false) + clientFrame(.continuation, [0x82])
        #expect(failure(eventsForAllSplits(fragmented)) == 1007)
    }

    @Test func binaryIsNotValidated() {
        #expect(events(clientFrame(.binary, [0xFF, 0xC0, 0xED, 0xA0])) == [.message(.binary([0xFF, 0xC0, 0xED, 0xA0]))])
    }

    // MARK: Limits

    @Test func messageOverLimitFailsBeforePayload() {
        let limits = WebSocketLimits(maxMessageBytes: 100)
        let frame = clientFrame(.binary, [UInt8](repeating: 0, count: 101))
        var parser = WebSocketParser(role: .server, limits: limits)
        parser.append(frame[..<4])  // 16-bit length form, no mask key yet
        guard case .failure(1009, _) = parser.next() else {
            Issue.record("expected 1009 from the header alone")
            return
        }
        #expect(failure(eventsForAllSplits(frame, limits: limits)) == 1009)
        #expect(events(clientFrame(.binary, [UInt8](repeating: 0, count: 100)), limits: limits).count == 1)
    }

    @Test func fragmentedMessageOverLimitFails() {
        let limits = WebSocketLimits(maxMessageBytes: 100)
        let stream = clientFrame(.text, [UInt8](repeating: 0x61, count: 60), fin: false)
            + clientFrame(.ping, [])
            + clientFrame(.continuation, [UInt8](repeating: 0x61, count: 41))
        let result = eventsForAllSplits(stream, limits: limits)
        #expect(result.first == .ping([]))
        #expect(failure(result) == 1009)
        let exact = clientFrame(.text, [UInt8](repeating: 0x61, count: 60), fin: false)
            + clientFrame(.continuation, [UInt8](repeating: 0x61, count: 40))
        #expect(events(exact, limits: limits) == [.message(.text(String(repeating: "a", count: 100)))])
    }

    @Test func frameOverLimitFails() {
        let limits = WebSocketLimits(maxMessageBytes: 100, maxFrameBytes: 50)
        #expect(failure(events(clientFrame(.binary, [UInt8](repeating: 0, count: 51)), limits: limits)) == 1009)
        let twoFrames = clientFrame(.binary, [UInt8](repeating: 0, count: 50), fin: false) + clientFrame(.continuation, [UInt8](repeating: 0, count: 50))
        #expect(events(twoFrames, limits: limits) == [.message(.binary([UInt8](repeating: 0, count: 100)))])
        // Control frames are bounded by the protocol (125), not by the data limits.
        let tiny = WebSocketLimits(maxMessageBytes: 10)
        #expect(events(clientFrame(.ping, [UInt8](repeating: 2, count: 100)), limits: tiny) == [.ping([UInt8](repeating: 2, count: 100))])
    }

    // MARK: State and memory

    @Test func failureIsSticky() {
        var parser = WebSocketParser(role: .server)
        parser.append(rawFrame(firstByte: 0xC1, payload: []))
        let first = parser.next()
        #expect(failure([first]) == 1002)
        parser.append(clientText("ignored"))
        #expect(parser.next() == first)
        #expect(parser.isFinished)
        #expect(parser.bufferedByteCount == 0)
    }

    @Test func idleAndBufferedCounts() {
        var parser = WebSocketParser(role: .server)
        #expect(parser.isIdle)
        let frame = clientText("hello")
        parser.append(frame[..<3])
        #expect(!parser.isIdle)
        #expect(parser.bufferedByteCount == 3)
        #expect(parser.next() == .needMoreData)
        parser.append(frame[3...])
        #expect(parser.next() == .message(.text("hello")))
        #expect(parser.isIdle)
        #expect(parser.bufferedByteCount == 0)
        #expect(parser.next() == .needMoreData)

        parser.append(clientText("frag", fin: false))
        #expect(parser.next() == .needMoreData)
        #expect(!parser.isIdle, "a fragmented message is in progress")
        #expect(parser.messageByteCount == 4)
        parser.append(clientFrame(.continuation, []))
        #expect(parser.next() == .message(.text("frag")))
        #expect(parser.isIdle)
        #expect(parser.messageByteCount == 0)
    }

    @Test func pipelinedFramesInOneRead() {
        let stream = clientText("one") + clientFrame(.binary, [2]) + clientFrame(.ping, [3]) + clientText("four")
            + clientFrame(.close, [0x03, 0xE8, 0x6F, 0x6B])
        #expect(eventsForAllSplits(stream) == [
            .message(.text("one")), .message(.binary([2])), .ping([3]), .message(.text("four")),
            .close(code: 1000, reason: "ok"),
        ])
    }

    @Test func rawBufferAppendMatchesCollectionAppend() {
        let stream = clientText("héllo", fin: false) + clientFrame(.continuation, [UInt8](repeating: 0x62, count: 300))
        var parser = WebSocketParser(role: .server)
        for chunk in randomSplit(stream, seed: 99) {
            chunk.withUnsafeBytes { parser.append($0) }
        }
        #expect(parser.next() == .message(.text("héllo" + String(repeating: "b", count: 300))))
    }

    @Test func randomMixedStreamsSplitAnywhere() {
        // Many seeded streams of mixed frames: every split gives the events of the whole.
        var generator = SplitMix64(state: 2024)
        for _ in 0..<30 {
            var stream: [UInt8] = []
            var expected: [WebSocketEvent] = []
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                let text = String(repeating: "aé€😀", count: Int.random(in: 0...40, using: &generator))
                let bytes = Array(text.utf8)
                let cut = Int.random(in: 0...bytes.count, using: &generator)
                if Bool.random(using: &generator) {
                    stream += clientFrame(.text, Array(bytes[..<cut]), fin: false)
                    stream += clientFrame(.ping, [UInt8(cut & 0x7F)])
                    stream += clientFrame(.continuation, Array(bytes[cut...]))
                    expected += [.ping([UInt8(cut & 0x7F)]), .message(.text(text))]
                } else {
                    stream += clientFrame(.binary, bytes)
                    expected.append(.message(.binary(bytes)))
                }
            }
            #expect(eventsForAllSplits(stream) == expected)
        }
    }
}
