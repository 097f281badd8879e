// Value types of RFC 6455 framing shared by the parser, the encoder and the connection. Pure: no I/O.

/// A frame opcode (RFC 6455 §5.2). Opcodes 3-7 and 11-15 are reserved and have no case: the parser
/// fails the connection with 1002 when it meets one.
package enum WebSocketOpcode: UInt8, Sendable {
    /// Continues the message started by the last text or binary frame without FIN.
    case continuation = 0
    /// Starts a text message (UTF-8).
    case text = 1
    /// Starts a binary message.
    case binary = 2
    /// Closing handshake; the payload is empty or a 2-byte code followed by a UTF-8 reason.
    case close = 8
    /// Keep-alive probe; the peer answers with a pong carrying the same payload.
    case ping = 9
    /// Answer to a ping (or an unsolicited heartbeat).
    case pong = 10

    /// True for close, ping and pong: at most 125 bytes, never fragmented, may interleave a message.
    package var isControl: Bool { rawValue & 0x08 != 0 }
}

/// Which end of the connection this side is; it decides the masking rule for received frames.
package enum WebSocketRole: Sendable {
    /// We accepted the connection: every frame from the client must be masked (RFC 6455 §5.1).
    case server
    /// We opened the connection (load-test client): frames from the server must not be masked.
    case client
}

/// Size limits the parser enforces; a frame or message over them fails the connection with 1009 as
/// soon as a frame header announces it, before its payload arrives.
package struct WebSocketLimits: Sendable, Equatable {
    /// Default for both limits: 1 MiB, well above Socket.IO's default `maxPayload` (1 MB).
    package static let defaultMaxMessageBytes = 1 << 20

    /// Largest assembled message (all fragments of a text or binary message together).
    package var maxMessageBytes: Int
    /// Largest single frame payload.
    package var maxFrameBytes: Int

    /// Limits in bytes; `maxFrameBytes` defaults to `maxMessageBytes`.
    package init(maxMessageBytes: Int = defaultMaxMessageBytes, maxFrameBytes: Int? = nil) {
        self.maxMessageBytes = maxMessageBytes
        self.maxFrameBytes = maxFrameBytes ?? maxMessageBytes
    }
}

/// A complete data message, reassembled from its fragments.
package enum WebSocketMessage: Sendable, Equatable {
    /// A text message, already validated as UTF-8.
    case text(String)
    /// A binary message.
    case binary([UInt8])
}

/// What `WebSocketParser.next()` found.
package enum WebSocketEvent: Sendable, Equatable {
    /// A complete text or binary message.
    case message(WebSocketMessage)
    /// A ping with its payload (≤ 125 bytes): answer with a pong carrying the same bytes.
    case ping([UInt8])
    /// A pong with its payload.
    case pong([UInt8])
    /// The peer started (or answered) the closing handshake. `code` is nil for an empty close
    /// payload (then reply with an empty close or 1000); `reason` is valid UTF-8, possibly empty.
    /// The parser reads nothing more after it.
    case close(code: UInt16?, reason: String)
    /// No complete event yet: append more bytes.
    case needMoreData
    /// The peer broke the protocol: send a close frame with `code` and `reason`, then close the
    /// connection. The parser reads nothing more after it.
    case failure(code: UInt16, reason: String)
}
