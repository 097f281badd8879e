import JSON

/// Why `SocketIOPacket.decode` rejected a packet. A server closes the connection on any of these
/// (the protocol says a malformed packet ends the session); `message` tells the client's developer why.
package enum SocketIOParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The Engine.IO message carried no Socket.IO packet at all.
    case empty
    /// The first character is not a packet type digit 0-6; carries that character.
    case unknownPacketType(String)
    /// A BINARY_EVENT / BINARY_ACK header lacks its `<count>-` attachment prefix (digits then `-`).
    case malformedAttachments
    /// A binary packet announces more attachments than the limit.
    case tooManyAttachments(limit: Int)
    /// The acknowledgement id has more digits than the limit (it must fit an `Int64`).
    case ackIDTooLong(maxDigits: Int)
    /// An acknowledgement id on a packet type that cannot carry one (CONNECT, DISCONNECT, CONNECT_ERROR).
    case unexpectedAckID(SocketIOPacketType)
    /// An ACK / BINARY_ACK without the id of the event it answers.
    case missingAckID(SocketIOPacketType)
    /// A packet type whose payload is mandatory (EVENT, ACK, CONNECT_ERROR and their binary forms) has none.
    case missingPayload(SocketIOPacketType)
    /// A payload on a packet type that takes none (DISCONNECT).
    case unexpectedPayload(SocketIOPacketType)
    /// The payload is not valid JSON (or nests deeper than allowed).
    case invalidJSON(JSONParseError)
    /// The payload is JSON of the wrong shape for the packet type; `SocketIOPacketType.payloadShape` says
    /// what is expected.
    case invalidPayload(SocketIOPacketType)
    /// An EVENT uses a name the Socket.IO libraries reserve for their own lifecycle events
    /// (`connect`, `disconnect`, ...); the reference parser refuses these too.
    case reservedEventName(String)

    /// What was wrong and how to send it correctly.
    package var message: String {
        switch self {
        case .empty:
            "Empty Socket.IO packet: a message must start with a packet type digit (0-6)."
        case .unknownPacketType(let character):
            "Unknown Socket.IO packet type '\(character)': expected a digit 0-6 "
                + "(0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5 BINARY_EVENT, 6 BINARY_ACK)."
        case .malformedAttachments:
            "A binary packet must give its attachment count as digits followed by '-', e.g. 51-[...]."
        case .tooManyAttachments(let limit):
            "A binary packet may carry at most \(limit) attachments."
        case .ackIDTooLong(let maxDigits):
            "The acknowledgement id is longer than \(maxDigits) digits."
        case .unexpectedAckID(let type):
            "A \(type.name) packet cannot carry an acknowledgement id."
        case .missingAckID(let type):
            "A \(type.name) packet needs the id of the event it acknowledges, e.g. 37[...]."
        case .missingPayload(let type):
            "A \(type.name) packet needs a payload: \(type.payloadShape)."
        case .unexpectedPayload(let type):
            "A \(type.name) packet takes no payload."
        case .invalidJSON(let error):
            "The packet payload is not valid JSON: \(error.message)."
        case .invalidPayload(let type):
            "Wrong payload for a \(type.name) packet: expected \(type.payloadShape)."
        case .reservedEventName(let name):
            "The event name '\(name)' is reserved by Socket.IO; use another name."
        }
    }

    /// Same as `message`.
    package var description: String { message }
}
