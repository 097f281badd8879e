import JSON

/// Why `EngineIOPacket.decode` rejected a WebSocket text frame.
package enum EngineIOParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The frame was empty.
    case empty
    /// The first character is not an Engine.IO packet type digit 0-6; carries that character.
    case unknownPacketType(String)
    /// A close, upgrade or noop packet (named) carried data after its type digit.
    case unexpectedData(packet: String)
    /// The open packet's payload is missing or is not a JSON object.
    case openPayloadNotObject
    /// The open packet's payload is not valid JSON.
    case invalidJSON(JSONParseError)

    /// What was wrong.
    package var message: String {
        switch self {
        case .empty:
            "Empty Engine.IO packet: a frame must start with a packet type digit (0-6)."
        case .unknownPacketType(let character):
            "Unknown Engine.IO packet type '\(character)': expected a digit 0-6 "
                + "(0 open, 1 close, 2 ping, 3 pong, 4 message, 5 upgrade, 6 noop); "
                + "binary payloads are not supported."
        case .unexpectedData(let packet):
            "An Engine.IO \(packet) packet carries no data."
        case .openPayloadNotObject:
            "The Engine.IO open packet must carry a JSON object (the handshake)."
        case .invalidJSON(let error):
            "The Engine.IO open packet is not valid JSON: \(error.message)."
        }
    }

    /// Same as `message`.
    package var description: String { message }
}
