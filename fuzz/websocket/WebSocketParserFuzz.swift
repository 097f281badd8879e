// libFuzzer target for WebSocketParser (with the frame encoder, the masking and the UTF-8 validator).
// The first input byte configures the run (role, limits, split points, masking key); the rest is the
// byte stream from the peer. The stream is parsed whole, split in two, and in small pieces: all three
// must give the same events. The events are then re-encoded (fragmented, masked when the peer is a
// client) and parsed again, which must give them back. Finally the UTF-8 validator must agree with the
// standard library on the stream. Built by fuzz/run-websocket-fuzz.sh with -sanitize=fuzzer,address.

@testable import WebSocket

/// Small limits so that short inputs reach the 1009 paths.
private let smallLimits = WebSocketLimits(maxMessageBytes: 64, maxFrameBytes: 24)

/// Events of one feeding, up to and including a close or failure.
private func run(_ chunks: [UnsafeRawBufferPointer], role: WebSocketRole, limits: WebSocketLimits) -> [WebSocketEvent] {
    var parser = WebSocketParser(role: role, limits: limits)
    var events: [WebSocketEvent] = []
    for chunk in chunks {
        parser.append(chunk)
        while true {
            let event = parser.next()
            switch event {
            case .needMoreData:
                break
            case .close, .failure:
                check(event, limits: limits)
                events.append(event)
                // A finished parser stays put and holds nothing.
                parser.append(chunk)
                guard parser.next() == event else { fatalError("finished parser changed its event") }
                guard parser.isFinished, parser.isIdle, parser.bufferedByteCount == 0, parser.messageByteCount == 0 else {
                    fatalError("finished parser holds data")
                }
                return events
            default:
                check(event, limits: limits)
                events.append(event)
                continue
            }
            break
        }
        if parser.isIdle && parser.bufferedByteCount != 0 { fatalError("idle parser with buffered bytes") }
    }
    return events
}

/// Invariants of every event.
private func check(_ event: WebSocketEvent, limits: WebSocketLimits) {
    switch event {
    case .message(.text(let text)):
        guard text.utf8.count <= limits.maxMessageBytes else { fatalError("text over the limit") }
    case .message(.binary(let bytes)):
        guard bytes.count <= limits.maxMessageBytes else { fatalError("binary over the limit") }
    case .ping(let payload), .pong(let payload):
        guard payload.count <= 125 else { fatalError("control payload over 125 bytes") }
    case .close(let code, let reason):
        if let code, !WebSocketCloseCode.isValidOnWire(code) { fatalError("close with invalid code \(code)") }
        if code == nil && !reason.isEmpty { fatalError("reason without a code") }
        guard reason.utf8.count <= 123 else { fatalError("close reason over 123 bytes") }
    case .failure(let code, let reason):
        guard [1002, 1007, 1009].contains(code) else { fatalError("unexpected failure code \(code)") }
        guard !reason.isEmpty, reason.utf8.count <= 123 else { fatalError("bad failure reason") }
    case .needMoreData:
        fatalError("needMoreData recorded")
    }
}

/// The frames a peer of `role`'s parser would send to produce `events` (the final failure excluded).
private func encode(_ events: [WebSocketEvent], role: WebSocketRole, limits: WebSocketLimits, config: UInt8) -> [UInt8] {
    let maskingKey: (UInt8, UInt8, UInt8, UInt8)? = role == .server ? (config, config &+ 1, 0xA5, config ^ 0x5A) : nil
    let fragmentSize = max(1, min(limits.maxFrameBytes, Int(config % 13) * 9 + 1))
    var out: [UInt8] = []
    func appendMessage(_ opcode: WebSocketOpcode, _ payload: [UInt8]) {
        var start = 0
        var first = true
        repeat {
            let end = min(payload.count, start + fragmentSize)
            WebSocketFrameEncoder.appendFrame(
                first ? opcode : .continuation, payload: payload[start..<end], fin: end == payload.count,
                maskingKey: maskingKey, to: &out)
            first = false
            start = end
        } while start < payload.count
    }
    for event in events {
        switch event {
        case .message(.text(let text)): appendMessage(.text, Array(text.utf8))
        case .message(.binary(let bytes)): appendMessage(.binary, bytes)
        case .ping(let payload): WebSocketFrameEncoder.appendFrame(.ping, payload: payload, maskingKey: maskingKey, to: &out)
        case .pong(let payload): WebSocketFrameEncoder.appendFrame(.pong, payload: payload, maskingKey: maskingKey, to: &out)
        case .close(let code?, let reason):
            var payload = [UInt8(code >> 8), UInt8(code & 0xFF)]
            payload += Array(reason.utf8)
            WebSocketFrameEncoder.appendFrame(.close, payload: payload, maskingKey: maskingKey, to: &out)
        case .close(nil, _): WebSocketFrameEncoder.appendFrame(.close, payload: [], maskingKey: maskingKey, to: &out)
        case .failure, .needMoreData: break
        }
    }
    return out
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let config = data.load(as: UInt8.self)
    let stream = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    let role: WebSocketRole = config & 1 == 0 ? .server : .client
    let limits = config & 2 == 0 ? WebSocketLimits() : smallLimits

    let whole = run([stream], role: role, limits: limits)

    let split = Int(config >> 2) % (stream.count + 1)
    let halves = run([UnsafeRawBufferPointer(rebasing: stream[..<split]),
                      UnsafeRawBufferPointer(rebasing: stream[split...])], role: role, limits: limits)
    guard halves == whole else { fatalError("split at \(split) changed the events") }

    let pieceSize = Int(config >> 2) % 5 + 1
    var pieces: [UnsafeRawBufferPointer] = []
    var start = 0
    while start < stream.count {
        let end = min(start + pieceSize, stream.count)
        pieces.append(UnsafeRawBufferPointer(rebasing: stream[start..<end]))
        start = end
    }
    guard run(pieces, role: role, limits: limits) == whole else { fatalError("pieces of \(pieceSize) changed the events") }

    let expected = whole.filter { if case .failure = $0 { return false } else { return true } }
    let reencoded = encode(whole, role: role, limits: limits, config: config)
    let again = reencoded.withUnsafeBytes { run([$0], role: role, limits: limits) }
    guard again == expected else { fatalError("re-encoded events do not round-trip") }

    let ours = UTF8Validator.isValid(stream)
    let standard = String(validating: stream, as: UTF8.self) != nil
    guard ours == standard else { fatalError("UTF-8 validator disagrees with the standard library") }
    return 0
}
