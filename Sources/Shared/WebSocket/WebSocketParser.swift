// Incremental RFC 6455 frame parser, a pure value in the style of swift-nio's WSParser: bytes go in
// with `append`, events come out of `next()`, and an explicit state says what is expected next. No
// I/O, no callbacks, so every split of the input can be unit-tested and fuzzed.

/// Parses the frames one peer sends on a WebSocket connection into messages, pings, pongs and the
/// close, enforcing the protocol rules of RFC 6455 for the given role.
///
/// Fragmented messages are reassembled (control frames may arrive between fragments). A frame's
/// payload is unmasked and, for text, validated as UTF-8 as soon as its bytes arrive, so an invalid
/// byte fails the connection (1007) before the rest of the frame is sent, and a frame or message
/// announced larger than the limits fails it (1009) before any of its payload arrives. Every
/// violation is reported once as `.failure(code:reason:)`; after it, or after `.close`, the parser
/// stays put: `append` ignores bytes and `next()` returns the same event again.
///
/// Memory: the input buffer is released whenever it is fully consumed and the message buffer is
/// handed out with each message, so an idle connection's parser holds no heap memory.
package struct WebSocketParser: Sendable {
    /// What the parser expects next.
    private enum State: Sendable {
        /// The header of the next frame (2 to 14 bytes).
        case header
        /// Payload bytes of `frame`.
        case payload
        /// A close or failure was returned; nothing more is read.
        case finished(WebSocketEvent)
    }

    /// The header of the frame being read, and how much of its payload has been consumed.
    private struct Frame: Sendable {
        var opcode: WebSocketOpcode
        var fin: Bool
        /// Packed masking key (see `WebSocketMasking.key`); nil for an unmasked frame.
        var maskingKey: UInt32?
        var length: Int
        var received = 0

        var remaining: Int { length - received }
    }

    /// Outcome of parsing the bytes at the read position as a frame header.
    private enum HeaderResult {
        case incomplete
        case frame(Frame, headerLength: Int)
        case failure(code: UInt16, reason: String)
    }

    /// Consumed input is dropped before appending once it is at least half the buffer, so the
    /// compaction copies stay linear in the input overall.
    private static let minimumCompaction = 64

    /// Which side we are: decides whether received frames must be masked.
    package let role: WebSocketRole
    /// The limits this parser enforces.
    package let limits: WebSocketLimits

    private var state = State.header
    /// Received bytes not yet consumed, from `readIndex` on.
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var frame = Frame(opcode: .continuation, fin: true, maskingKey: nil, length: 0)
    /// `.text` or `.binary` while a data message is being assembled (from its first frame until its
    /// FIN frame has been read); nil between messages.
    private var messageOpcode: WebSocketOpcode?
    /// Unmasked payload of the message being assembled.
    private var message: [UInt8] = []
    /// Carries the UTF-8 state of a text message across its frames.
    private var textValidator = UTF8Validator()
    /// Unmasked payload of the control frame being read.
    private var control: [UInt8] = []

    /// A parser for the frames received by `role`.
    package init(role: WebSocketRole, limits: WebSocketLimits = WebSocketLimits()) {
        self.role = role
        self.limits = limits
    }

    /// Number of received bytes not yet parsed (a partial header, or frames behind the current one).
    package var bufferedByteCount: Int { buffer.count - readIndex }

    /// Bytes of the message being assembled (fragments already received).
    package var messageByteCount: Int { message.count }

    /// True when the parser holds no partial frame or message: the peer is between messages. Also
    /// true once finished, as nothing is held then.
    package var isIdle: Bool {
        switch state {
        case .header: readIndex == buffer.count && messageOpcode == nil
        case .payload: false
        case .finished: true
        }
    }

    /// True once a close or a failure has been returned.
    package var isFinished: Bool {
        if case .finished = state { return true }
        return false
    }

    // MARK: - Input

    /// Adds received bytes straight from a read buffer. Ignored once finished.
    ///
    /// When the parser is waiting for payload and holds no other bytes, the payload is unmasked
    /// straight into the message without passing through the input buffer.
    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if case .finished = state { return }
        var input = bytes
        if readIndex == buffer.count, case .payload = state, frame.remaining > 0, !input.isEmpty {
            let count = min(frame.remaining, input.count)
            if let failure = consumePayload(UnsafeRawBufferPointer(rebasing: input[..<count])) {
                finish(failure)
                return
            }
            input = UnsafeRawBufferPointer(rebasing: input[count...])
        }
        guard !input.isEmpty else { return }
        if readIndex > 0 && readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            readIndex = 0
        } else if readIndex >= Self.minimumCompaction && readIndex * 2 >= buffer.count {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
        Self.append(input, to: &buffer)
    }

    /// Appends raw bytes as one typed block copy (a raw buffer takes a slower generic path, ~3x).
    private static func append(_ bytes: UnsafeRawBufferPointer, to array: inout [UInt8]) {
        bytes.withMemoryRebound(to: UInt8.self) { array.append(contentsOf: $0) }
    }

    /// Adds received bytes from any collection. Ignored once finished.
    package mutating func append(_ bytes: some Collection<UInt8>) {
        let handled: Void? = bytes.withContiguousStorageIfAvailable { append(UnsafeRawBufferPointer($0)) }
        if handled == nil {
            Array(bytes).withUnsafeBytes { append($0) }
        }
    }

    // MARK: - Output

    /// The next event, or `.needMoreData`. Call it until it returns `.needMoreData` (or a close or
    /// failure) after each `append`.
    package mutating func next() -> WebSocketEvent {
        while true {
            switch state {
            case .finished(let event):
                return event

            case .header:
                // A local reference for the duration of the read: no copy, and no overlapping access
                // to `self` while the pointer is live.
                let bytes = buffer
                let start = readIndex
                let result = bytes.withUnsafeBytes { parseHeader(UnsafeRawBufferPointer(rebasing: $0[start...])) }
                switch result {
                case .incomplete:
                    releaseBufferIfConsumed()
                    return .needMoreData
                case .failure(let code, let reason):
                    return finish(.failure(code: code, reason: reason))
                case .frame(let header, let headerLength):
                    readIndex += headerLength
                    frame = header
                    if header.opcode.isControl {
                        control = []
                    } else if header.opcode != .continuation {
                        messageOpcode = header.opcode
                    }
                    state = .payload
                }

            case .payload:
                let available = min(frame.remaining, buffer.count - readIndex)
                if available > 0 {
                    let bytes = buffer
                    let range = readIndex..<(readIndex + available)
                    let failure = bytes.withUnsafeBytes { consumePayload(UnsafeRawBufferPointer(rebasing: $0[range])) }
                    if let failure {
                        return finish(failure)
                    }
                    readIndex += available
                }
                if frame.remaining > 0 {
                    releaseBufferIfConsumed()
                    return .needMoreData
                }
                state = .header
                if let event = completeFrame() {
                    releaseBufferIfConsumed()
                    return event
                }
            }
        }
    }

    // MARK: - Steps

    /// Reads a frame header at the start of `bytes` without consuming anything. Each rule is checked
    /// as soon as the bytes it needs are present, so a bad header fails before the rest arrives.
    private func parseHeader(_ bytes: UnsafeRawBufferPointer) -> HeaderResult {
        guard bytes.count >= 1 else { return .incomplete }
        let first = bytes[0]
        if first & 0x70 != 0 {
            return .failure(code: WebSocketCloseCode.protocolError, reason: "reserved bits set without a negotiated extension")
        }
        guard let opcode = WebSocketOpcode(rawValue: first & 0x0F) else {
            return .failure(code: WebSocketCloseCode.protocolError, reason: "reserved opcode \(first & 0x0F)")
        }
        let fin = first & 0x80 != 0
        if opcode.isControl {
            if !fin {
                return .failure(code: WebSocketCloseCode.protocolError, reason: "fragmented control frame")
            }
        } else if opcode == .continuation {
            if messageOpcode == nil {
                return .failure(code: WebSocketCloseCode.protocolError, reason: "continuation frame without a message to continue")
            }
        } else if messageOpcode != nil {
            return .failure(code: WebSocketCloseCode.protocolError, reason: "new data frame before the fragmented message ended")
        }

        guard bytes.count >= 2 else { return .incomplete }
        let second = bytes[1]
        let masked = second & 0x80 != 0
        switch role {
        case .server where !masked:
            return .failure(code: WebSocketCloseCode.protocolError, reason: "client frames must be masked")
        case .client where masked:
            return .failure(code: WebSocketCloseCode.protocolError, reason: "server frames must not be masked")
        default:
            break
        }
        let shortLength = Int(second & 0x7F)
        if opcode.isControl && shortLength > 125 {
            return .failure(code: WebSocketCloseCode.protocolError, reason: "control frame payload larger than 125 bytes")
        }

        // Non-minimal length encodings are accepted: RFC 6455 asks senders for the minimal form but
        // gives receivers no duty to reject the others.
        var headerLength = 2
        let length: Int
        switch shortLength {
        case 126:
            guard bytes.count >= 4 else { return .incomplete }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            headerLength = 4
        case 127:
            guard bytes.count >= 10 else { return .incomplete }
            var value: UInt64 = 0
            for index in 2..<10 {
                value = value << 8 | UInt64(bytes[index])
            }
            if value >> 63 != 0 {
                return .failure(code: WebSocketCloseCode.protocolError, reason: "64-bit payload length with the most significant bit set")
            }
            length = Int(value)
            headerLength = 10
        default:
            length = shortLength
        }
        if !opcode.isControl {
            if length > limits.maxMessageBytes - message.count {
                return .failure(code: WebSocketCloseCode.messageTooBig, reason: "message larger than the limit of \(limits.maxMessageBytes) bytes")
            }
            if length > limits.maxFrameBytes {
                return .failure(code: WebSocketCloseCode.messageTooBig, reason: "frame larger than the limit of \(limits.maxFrameBytes) bytes")
            }
        }

        var maskingKey: UInt32?
        if masked {
            guard bytes.count >= headerLength + 4 else { return .incomplete }
            maskingKey = WebSocketMasking.key(
                bytes[headerLength], bytes[headerLength + 1], bytes[headerLength + 2], bytes[headerLength + 3])
            headerLength += 4
        }
        return .frame(Frame(opcode: opcode, fin: fin, maskingKey: maskingKey, length: length), headerLength: headerLength)
    }

    /// Takes the next piece of the current frame's payload (at most `frame.remaining` bytes):
    /// unmasks it into the message or control buffer and validates text. Returns the failure, if any.
    private mutating func consumePayload(_ bytes: UnsafeRawBufferPointer) -> WebSocketEvent? {
        let count = bytes.count
        guard count > 0 else { return nil }
        let offset = frame.received
        frame.received += count
        if frame.opcode.isControl {
            if control.isEmpty {
                control.reserveCapacity(frame.length)
            }
            let start = control.count
            Self.append(bytes, to: &control)
            if let key = frame.maskingKey {
                control.withUnsafeMutableBytes {
                    WebSocketMasking.apply(key: key, offset: offset, to: UnsafeMutableRawBufferPointer(rebasing: $0[start...]))
                }
            }
            return nil
        }

        let start = message.count
        if message.capacity < start + count {
            // Grow geometrically (memory follows the bytes that actually arrived, not what a header
            // announced), but never past the end of a final frame or the message limit.
            var capacity = max(start + count, 2 * message.capacity)
            if frame.fin {
                capacity = min(capacity, start + frame.length - offset)
            }
            message.reserveCapacity(max(start + count, min(capacity, limits.maxMessageBytes)))
        }
        Self.append(bytes, to: &message)
        let isText = messageOpcode == .text
        var valid = true
        message.withUnsafeMutableBytes { raw in
            let piece = UnsafeMutableRawBufferPointer(rebasing: raw[start...])
            if let key = frame.maskingKey {
                WebSocketMasking.apply(key: key, offset: offset, to: piece)
            }
            if isText {
                valid = textValidator.validate(UnsafeRawBufferPointer(piece))
            }
        }
        if !valid {
            return .failure(code: WebSocketCloseCode.invalidPayload, reason: "text message is not valid UTF-8")
        }
        return nil
    }

    /// Acts on a frame whose payload is complete: the event it produces, or nil when it was a
    /// non-final fragment.
    private mutating func completeFrame() -> WebSocketEvent? {
        switch frame.opcode {
        case .ping:
            return .ping(takeControl())
        case .pong:
            return .pong(takeControl())
        case .close:
            return finish(closeEvent(takeControl()))
        case .text, .binary, .continuation:
            guard frame.fin else { return nil }
            let opcode = messageOpcode
            messageOpcode = nil
            let payload = message
            message = []
            if opcode == .text {
                guard textValidator.isComplete else {
                    return finish(.failure(code: WebSocketCloseCode.invalidPayload, reason: "text message ends inside a UTF-8 sequence"))
                }
                textValidator.reset()
                return .message(.text(String(decoding: payload, as: UTF8.self)))
            }
            return .message(.binary(payload))
        }
    }

    /// The event for a close frame's payload: nothing, or a valid code and a UTF-8 reason.
    private func closeEvent(_ payload: [UInt8]) -> WebSocketEvent {
        switch payload.count {
        case 0:
            return .close(code: nil, reason: "")
        case 1:
            return .failure(code: WebSocketCloseCode.protocolError, reason: "close frame with a 1-byte payload")
        default:
            let code = UInt16(payload[0]) << 8 | UInt16(payload[1])
            guard WebSocketCloseCode.isValidOnWire(code) else {
                return .failure(code: WebSocketCloseCode.protocolError, reason: "invalid close code \(code)")
            }
            let reason = payload[2...]
            guard UTF8Validator.isValid(reason) else {
                return .failure(code: WebSocketCloseCode.invalidPayload, reason: "close reason is not valid UTF-8")
            }
            return .close(code: code, reason: String(decoding: reason, as: UTF8.self))
        }
    }

    private mutating func takeControl() -> [UInt8] {
        let payload = control
        control = []
        return payload
    }

    /// Enters the final state with `event` and frees everything held.
    @discardableResult
    private mutating func finish(_ event: WebSocketEvent) -> WebSocketEvent {
        state = .finished(event)
        buffer = []
        readIndex = 0
        message = []
        control = []
        messageOpcode = nil
        return event
    }

    private mutating func releaseBufferIfConsumed() {
        if readIndex == buffer.count && (readIndex > 0 || buffer.capacity > 0) {
            buffer = []
            readIndex = 0
        }
    }
}
