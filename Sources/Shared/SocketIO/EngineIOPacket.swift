import JSON

// Engine.IO v4 packet codec for the WebSocket transport (socketio/engine.io-protocol): one packet per
// text frame, `<type digit>[<data>]`. Binary frames would carry raw binary messages; the gateway refuses
// them, so this codec only knows text, and text starting with `b` (base64 binary, a polling form) is an
// unknown type.

/// One Engine.IO packet.
package enum EngineIOPacket: Sendable, Equatable {
    /// `0{...}`: the server's handshake (`sid`, `upgrades`, `pingInterval`, `pingTimeout`, `maxPayload`).
    case open(JSONValue)
    /// `1`: the transport is being closed.
    case close
    /// `2` or `2probe`: heartbeat (in v4 the server pings); the data, if any, comes back in the pong.
    case ping(String?)
    /// `3` or `3probe`: heartbeat answer.
    case pong(String?)
    /// `4<text>`: a message; for Socket.IO, one encoded `SocketIOPacket`.
    case message(String)
    /// `5`: transport upgrade completed (polling to WebSocket; unused when WebSocket is the only transport).
    case upgrade
    /// `6`: no operation (used during upgrades).
    case noop
}

extension EngineIOPacket {
    /// JSON nesting allowed in the open packet when the caller does not pass a limit.
    package static let defaultMaxDepth = 32

    /// Decodes the text of one WebSocket frame.
    ///
    /// Close, upgrade and noop must be the bare digit; ping and pong take any text as data (`2probe`);
    /// a message may be empty (`4`); open must carry a JSON object. Empty text, another first
    /// character, or binary (`b...`) is an error.
    package static func decode(
        _ text: String,
        maxDepth: Int = defaultMaxDepth
    ) throws(EngineIOParseError) -> EngineIOPacket {
        let utf8 = text.utf8
        guard let first = utf8.first else { throw .empty }
        // The type is one ASCII byte, so the rest starts on a scalar boundary and is copied exactly
        // (slicing by Character could swallow a combining mark into the type).
        let rest = utf8.dropFirst()
        switch first {
        case UInt8(ascii: "0"):
            guard !rest.isEmpty else { throw .openPayloadNotObject }
            let handshake: JSONValue
            do throws(JSONParseError) {
                handshake = try JSONParser.parse(rest, maxDepth: maxDepth)
            } catch {
                throw .invalidJSON(error)
            }
            guard handshake.objectValue != nil else { throw .openPayloadNotObject }
            return .open(handshake)
        case UInt8(ascii: "1"):
            guard rest.isEmpty else { throw .unexpectedData(packet: "close") }
            return .close
        case UInt8(ascii: "2"):
            return .ping(rest.isEmpty ? nil : String(decoding: rest, as: UTF8.self))
        case UInt8(ascii: "3"):
            return .pong(rest.isEmpty ? nil : String(decoding: rest, as: UTF8.self))
        case UInt8(ascii: "4"):
            return .message(String(decoding: rest, as: UTF8.self))
        case UInt8(ascii: "5"):
            guard rest.isEmpty else { throw .unexpectedData(packet: "upgrade") }
            return .upgrade
        case UInt8(ascii: "6"):
            guard rest.isEmpty else { throw .unexpectedData(packet: "noop") }
            return .noop
        default:
            throw .unknownPacketType(text.unicodeScalars.first.map { String(Character($0)) } ?? "")
        }
    }

    /// The packet as the text of one WebSocket frame: `0{...}`, `1`, `2`, `2probe`, `3`, `4<text>`, `5`, `6`.
    /// `ping("")` / `pong("")` encode as the bare digit, which decodes to `ping(nil)` / `pong(nil)`.
    package var encoded: String {
        switch self {
        case .open(let handshake): "0" + handshake.jsonString
        case .close: "1"
        case .ping(let data): "2" + (data ?? "")
        case .pong(let data): "3" + (data ?? "")
        case .message(let text): "4" + text
        case .upgrade: "5"
        case .noop: "6"
        }
    }
}
