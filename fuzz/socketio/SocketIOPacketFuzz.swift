// libFuzzer target for the Engine.IO and Socket.IO packet codecs, which read every text frame a client
// sends. Properties checked on every input:
// - decoding never crashes, and a `String` and a `Substring` (not starting at offset 0) holding the
//   same text decode to the same packet or the same error;
// - a decoded packet re-encodes to text that decodes to an equal packet, and encoding that again
//   gives the same text (the encoding is canonical);
// - an Engine.IO message carries its data byte for byte, and its Socket.IO packet decodes the same way
//   as the frame text minus the leading `4`;
// - error messages can be built, and the accessors run.
// Built by fuzz/run-socketio-fuzz.sh with -sanitize=fuzzer,address, so memory errors are caught too.

@testable import SocketIO
@testable import JSON

private func socketIOOutcome(_ text: Substring, maxDepth: Int) -> Result<SocketIOPacket, SocketIOParseError> {
    Result { () throws(SocketIOParseError) in try SocketIOPacket.decode(text, maxDepth: maxDepth) }
}

private func socketIOOutcome(_ text: String, maxDepth: Int) -> Result<SocketIOPacket, SocketIOParseError> {
    Result { () throws(SocketIOParseError) in try SocketIOPacket.decode(text, maxDepth: maxDepth) }
}

private func checkSocketIO(_ text: String, maxDepth: Int) {
    let outcome = socketIOOutcome(text, maxDepth: maxDepth)
    // A prefix makes the Substring start past its base's first byte. Sliced by UTF-8 index, since a
    // leading combining mark would merge with the prefix into one Character.
    let prefixed = "#" + text
    let shifted = socketIOOutcome(prefixed[prefixed.utf8.index(after: prefixed.startIndex)...], maxDepth: maxDepth)
    guard outcome == shifted else {
        fatalError("String and Substring decodes differ for \(text.debugDescription): \(outcome) vs \(shifted)")
    }
    switch outcome {
    case .failure(let error):
        _ = error.message
    case .success(let packet):
        _ = packet.eventName
        _ = packet.eventArguments
        let encoded = packet.encoded
        guard case .success(let again) = socketIOOutcome(encoded, maxDepth: maxDepth) else {
            fatalError("re-encoded packet does not decode: \(text.debugDescription) -> \(encoded.debugDescription)")
        }
        guard again == packet else {
            fatalError("round trip changed the packet: \(packet) -> \(again)")
        }
        guard again.encoded == encoded else {
            fatalError("encoding is not canonical: \(encoded.debugDescription) vs \(again.encoded.debugDescription)")
        }
        guard packet.engineIOText == "4" + encoded else {
            fatalError("engineIOText differs from the encoding for \(encoded.debugDescription)")
        }
    }
}

private func checkEngineIO(_ text: String, maxDepth: Int) {
    let outcome = Result { () throws(EngineIOParseError) in try EngineIOPacket.decode(text, maxDepth: maxDepth) }
    switch outcome {
    case .failure(let error):
        _ = error.message
    case .success(let packet):
        let encoded = packet.encoded
        let again = Result { () throws(EngineIOParseError) in try EngineIOPacket.decode(encoded, maxDepth: maxDepth) }
        guard again == .success(packet) else {
            fatalError(
                "Engine.IO round trip failed: \(text.debugDescription) -> \(encoded.debugDescription) -> \(again)")
        }
        guard (try? EngineIOPacket.decode(encoded, maxDepth: maxDepth))?.encoded == encoded else {
            fatalError("Engine.IO encoding is not canonical: \(encoded.debugDescription)")
        }
        if case .message(let data) = packet {
            guard Array(data.utf8) == Array(text.utf8.dropFirst()) else {
                fatalError("message data is not the frame minus its type: \(text.debugDescription)")
            }
            // The gateway's path: the Socket.IO packet inside the message.
            // The slice starts after the ASCII `4`, a scalar boundary even when a combining mark follows.
            let inner = socketIOOutcome(data, maxDepth: maxDepth)
            let direct = socketIOOutcome(text[text.utf8.index(after: text.startIndex)...], maxDepth: maxDepth)
            guard inner == direct else {
                fatalError("Socket.IO decode of the message differs from the frame's: \(text.debugDescription)")
            }
        }
    }
}

private func check(_ input: UnsafeBufferPointer<UInt8>) {
    // A small depth limit on some inputs reaches the limit path without deep documents.
    let maxDepth = input.first.map { $0 & 1 == 0 ? SocketIOPacket.defaultMaxDepth : 3 }
        ?? SocketIOPacket.defaultMaxDepth
    let text = String(decoding: input, as: UTF8.self)
    checkSocketIO(text, maxDepth: maxDepth)
    checkEngineIO(text, maxDepth: maxDepth)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSocketIOPacket(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    guard let data, size > 0 else {
        check(UnsafeBufferPointer(start: nil, count: 0))
        return 0
    }
    check(UnsafeBufferPointer(start: data.assumingMemoryBound(to: UInt8.self), count: size))
    return 0
}
