/// Builds RFC 6455 frames. Servers send unmasked frames; a client (the load-test tool) passes a
/// masking key. Lengths always use the minimal encoding.
package enum WebSocketFrameEncoder {
    /// Largest payload of a control frame (close, ping, pong).
    package static let maxControlPayloadBytes = 125
    /// Largest close reason in bytes: the control limit minus the 2-byte code.
    package static let maxCloseReasonBytes = maxControlPayloadBytes - 2

    /// One frame carrying `payload`.
    /// - Parameters:
    ///   - fin: false for every fragment of a message but the last.
    ///   - maskingKey: the 4-byte key a client must use (fresh and unpredictable per frame); nil for
    ///     a server's unmasked frames.
    /// - Precondition: a control frame has `fin` set and at most 125 bytes of payload.
    package static func frame(
        _ opcode: WebSocketOpcode,
        payload: some Collection<UInt8>,
        fin: Bool = true,
        maskingKey: (UInt8, UInt8, UInt8, UInt8)? = nil
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headerLength(payloadLength: payload.count, masked: maskingKey != nil) + payload.count)
        appendFrame(opcode, payload: payload, fin: fin, maskingKey: maskingKey, to: &out)
        return out
    }

    /// Appends one frame to `out`, so several frames can share one write buffer.
    package static func appendFrame(
        _ opcode: WebSocketOpcode,
        payload: some Collection<UInt8>,
        fin: Bool = true,
        maskingKey: (UInt8, UInt8, UInt8, UInt8)? = nil,
        to out: inout [UInt8]
    ) {
        let length = payload.count
        precondition(
            !opcode.isControl || (fin && length <= maxControlPayloadBytes),
            "control frames must be final and carry at most \(maxControlPayloadBytes) bytes")
        appendHeader(opcode, payloadLength: length, fin: fin, maskingKey: maskingKey, to: &out)
        let start = out.count
        out.append(contentsOf: payload)
        if let maskingKey {
            let key = WebSocketMasking.key(maskingKey.0, maskingKey.1, maskingKey.2, maskingKey.3)
            out.withUnsafeMutableBytes {
                WebSocketMasking.apply(key: key, offset: 0, to: UnsafeMutableRawBufferPointer(rebasing: $0[start...]))
            }
        }
    }

    /// Appends only a frame header, for writing a large unmasked payload from its own buffer.
    package static func appendHeader(
        _ opcode: WebSocketOpcode,
        payloadLength: Int,
        fin: Bool = true,
        maskingKey: (UInt8, UInt8, UInt8, UInt8)? = nil,
        to out: inout [UInt8]
    ) {
        precondition(payloadLength >= 0, "negative payload length")
        out.append((fin ? 0x80 : 0) | opcode.rawValue)
        let maskBit: UInt8 = maskingKey == nil ? 0 : 0x80
        switch payloadLength {
        case 0...125:
            out.append(maskBit | UInt8(payloadLength))
        case 126...0xFFFF:
            out.append(maskBit | 126)
            out.append(UInt8(truncatingIfNeeded: payloadLength >> 8))
            out.append(UInt8(truncatingIfNeeded: payloadLength))
        default:
            out.append(maskBit | 127)
            let length = UInt64(payloadLength)
            for shift in stride(from: 56, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: length >> UInt64(shift)))
            }
        }
        if let maskingKey {
            out.append(maskingKey.0)
            out.append(maskingKey.1)
            out.append(maskingKey.2)
            out.append(maskingKey.3)
        }
    }

    /// Size of a frame header: 2 bytes, plus 2 or 8 for longer lengths, plus 4 for a masking key.
    package static func headerLength(payloadLength: Int, masked: Bool) -> Int {
        let lengthBytes = payloadLength <= 125 ? 0 : (payloadLength <= 0xFFFF ? 2 : 8)
        return 2 + lengthBytes + (masked ? 4 : 0)
    }

    /// An unmasked, unfragmented text message.
    package static func text(_ string: String) -> [UInt8] {
        frame(.text, payload: string.utf8)
    }

    /// The payload of one unmasked, unfragmented frame built here (`text`, `frame`): what a
    /// transport other than WebSocket (long-polling) sends of a frame encoded once for many sockets.
    /// nil when `frame` is not such a frame.
    package static func payload(ofUnmaskedFrame frame: [UInt8]) -> ArraySlice<UInt8>? {
        guard frame.count >= 2, frame[0] & 0x80 != 0, frame[1] & 0x80 == 0 else { return nil }
        let header: Int
        switch frame[1] & 0x7F {
        case 126: header = 4
        case 127: header = 10
        default: header = 2
        }
        guard frame.count >= header, frame.count == header + declaredLength(frame) else { return nil }
        return frame[header...]
    }

    private static func declaredLength(_ frame: [UInt8]) -> Int {
        switch frame[1] & 0x7F {
        case 126: return Int(frame[2]) << 8 | Int(frame[3])
        case 127:
            var length: UInt64 = 0
            for index in 2..<10 { length = length << 8 | UInt64(frame[index]) }
            return length > UInt64(Int.max / 2) ? -1 : Int(length)
        case let short: return Int(short)
        }
    }

    /// An unmasked, unfragmented binary message.
    package static func binary(_ bytes: [UInt8]) -> [UInt8] {
        frame(.binary, payload: bytes)
    }

    /// An unmasked close frame with `code` and `reason`; a reason over 123 bytes is cut at the last
    /// whole character that fits.
    package static func close(code: UInt16, reason: String = "") -> [UInt8] {
        var payload: [UInt8] = [UInt8(truncatingIfNeeded: code >> 8), UInt8(truncatingIfNeeded: code)]
        payload.append(contentsOf: truncatedReason(reason))
        return frame(.close, payload: payload)
    }

    /// An unmasked ping; `payload` is cut to 125 bytes.
    package static func ping(_ payload: [UInt8] = []) -> [UInt8] {
        frame(.ping, payload: payload.prefix(maxControlPayloadBytes))
    }

    /// An unmasked pong echoing a ping's payload; `payload` is cut to 125 bytes.
    package static func pong(_ payload: [UInt8]) -> [UInt8] {
        frame(.pong, payload: payload.prefix(maxControlPayloadBytes))
    }

    /// The UTF-8 of `reason`, cut so it fits a close frame without splitting a character.
    static func truncatedReason(_ reason: String) -> ArraySlice<UInt8> {
        let bytes = Array(reason.utf8)
        guard bytes.count > maxCloseReasonBytes else { return bytes[...] }
        var end = maxCloseReasonBytes
        // Back off continuation bytes (10xxxxxx) to the start of the character that does not fit.
        while end > 0 && bytes[end] & 0xC0 == 0x80 {
            end -= 1
        }
        return bytes[..<end]
    }
}
