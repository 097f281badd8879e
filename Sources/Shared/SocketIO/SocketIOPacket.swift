import JSON

// Socket.IO v5 packet codec (socketio/socket.io-protocol, "Packet encoding"), a pure value: text in,
// packet out, and back. The wire form is
//     <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]
// and each packet rides in one Engine.IO message (`4` + packet). Acceptance follows the reference
// parser (socket.io-parser `decodeString` / `isPayloadValid`) with a few stricter rules, listed on
// `decode`, that only reject input no Socket.IO client produces.

/// The Socket.IO packet types; the raw value is the digit on the wire.
package enum SocketIOPacketType: Int, Sendable, CaseIterable {
    /// Client: join a namespace (optional auth object). Server: accepted, payload `{"sid": ...}`.
    case connect = 0
    /// Leave a namespace; no payload.
    case disconnect = 1
    /// An event: payload `["name", args...]`, optionally with an ack id.
    case event = 2
    /// The reply to an event that asked for one: payload `[args...]` and the event's ack id.
    case ack = 3
    /// The server refused a CONNECT: payload `{"message": ..., "data": ...}`.
    case connectError = 4
    /// An event whose arguments hold binary attachments sent as separate frames.
    case binaryEvent = 5
    /// An ack whose arguments hold binary attachments sent as separate frames.
    case binaryAck = 6

    /// The protocol's name for the type, for messages ("EVENT", "CONNECT_ERROR", ...).
    package var name: String {
        switch self {
        case .connect: "CONNECT"
        case .disconnect: "DISCONNECT"
        case .event: "EVENT"
        case .ack: "ACK"
        case .connectError: "CONNECT_ERROR"
        case .binaryEvent: "BINARY_EVENT"
        case .binaryAck: "BINARY_ACK"
        }
    }

    /// True for BINARY_EVENT and BINARY_ACK, whose header carries an attachment count.
    package var isBinary: Bool {
        self == .binaryEvent || self == .binaryAck
    }

    /// True for the types that may carry an acknowledgement id (events and acks).
    package var takesAckID: Bool {
        switch self {
        case .event, .ack, .binaryEvent, .binaryAck: true
        case .connect, .disconnect, .connectError: false
        }
    }

    /// The payload this type takes, in words (used in error messages).
    package var payloadShape: String {
        switch self {
        case .connect: "a JSON object or nothing"
        case .disconnect: "nothing"
        case .event, .binaryEvent: "a non-empty JSON array whose first element is the event name (a string)"
        case .ack, .binaryAck: "a JSON array (possibly empty)"
        case .connectError: "a JSON object such as {\"message\":\"...\"}"
        }
    }
}

/// One Socket.IO packet: what `decode` returns and `encoded` writes.
///
/// `decode` only produces packets that obey the protocol's rules; a packet built by hand is encoded as
/// given, so the caller keeps `ackID` non-negative and the namespace free of `,`.
package struct SocketIOPacket: Sendable, Equatable {
    /// The packet type.
    package var type: SocketIOPacketType
    /// The namespace, `/` for the main one (which is left out on the wire).
    package var namespace: String
    /// The acknowledgement id: on an EVENT it asks for an ACK, on an ACK it names the event answered.
    package var ackID: Int64?
    /// The JSON payload, if any.
    package var payload: JSONValue?
    /// How many binary attachments follow (BINARY_EVENT / BINARY_ACK only; nil for the other types).
    package var attachments: Int?

    /// A packet with the given fields.
    package init(
        type: SocketIOPacketType,
        namespace: String = "/",
        ackID: Int64? = nil,
        payload: JSONValue? = nil,
        attachments: Int? = nil
    ) {
        self.type = type
        self.namespace = namespace
        self.ackID = ackID
        self.payload = payload
        self.attachments = attachments
    }
}

// MARK: - Limits

extension SocketIOPacket {
    /// JSON nesting allowed in a payload when the caller does not pass a limit (the event array is level 1).
    package static let defaultMaxDepth = 32
    /// Most binary attachments a header may announce; real clients send a handful, and the count
    /// sizes what a reassembler would wait for.
    package static let maxAttachments = 10
    /// Longest acknowledgement id in digits: 18 always fits `Int64`, and clients count up from 0.
    package static let maxAckIDDigits = 18
    /// Event names the Socket.IO libraries keep for their own lifecycle (as in socket.io-parser).
    package static let reservedEventNames: Set<String> = [
        "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
    ]
}

// MARK: - Building packets

extension SocketIOPacket {
    /// An EVENT `["name", args...]`; with `ackID` the receiver must answer with an ACK of that id.
    package static func event(
        _ name: String,
        _ arguments: [JSONValue],
        ackID: Int64? = nil,
        namespace: String = "/"
    ) -> SocketIOPacket {
        SocketIOPacket(type: .event, namespace: namespace, ackID: ackID, payload: .array([.string(name)] + arguments))
    }

    /// The ACK answering the event with ack id `id`, payload `[args...]`.
    package static func ack(id: Int64, _ arguments: [JSONValue], namespace: String = "/") -> SocketIOPacket {
        SocketIOPacket(type: .ack, namespace: namespace, ackID: id, payload: .array(arguments))
    }

    /// The server's CONNECT reply accepting a client into `namespace`: `0{"sid":"..."}`.
    package static func connect(sid: String, namespace: String = "/") -> SocketIOPacket {
        SocketIOPacket(type: .connect, namespace: namespace, payload: ["sid": .string(sid)])
    }

    /// The server's CONNECT answer with connection state recovery (Socket.IO 4.6+):
    /// `0{"sid":"...","pid":"..."}`; a client that reconnects presents `pid` and its last offset.
    package static func connect(sid: String, pid: String?, namespace: String = "/") -> SocketIOPacket {
        guard let pid else { return connect(sid: sid, namespace: namespace) }
        return SocketIOPacket(type: .connect, namespace: namespace, payload: ["sid": .string(sid), "pid": .string(pid)])
    }

    /// A client's CONNECT request, `0` or `0{"token":"..."}` with an auth object.
    package static func connect(auth: JSONObject? = nil, namespace: String = "/") -> SocketIOPacket {
        SocketIOPacket(type: .connect, namespace: namespace, payload: auth.map { .object($0) })
    }

    /// The server's refusal of a CONNECT: `4{"message":"...","data":{"code":"..."}}`.
    package static func connectError(message: String, code: String, namespace: String = "/") -> SocketIOPacket {
        SocketIOPacket(
            type: .connectError,
            namespace: namespace,
            payload: ["message": .string(message), "data": ["code": .string(code)]]
        )
    }

    /// DISCONNECT from the main namespace: `1`.
    package static let disconnect = SocketIOPacket(type: .disconnect)

    /// DISCONNECT from `namespace`.
    package static func disconnect(namespace: String) -> SocketIOPacket {
        SocketIOPacket(type: .disconnect, namespace: namespace)
    }
}

// MARK: - Reading packets

extension SocketIOPacket {
    /// The event name of an EVENT / BINARY_EVENT (first payload element); nil for other types.
    package var eventName: String? {
        guard type == .event || type == .binaryEvent else { return nil }
        return payload?[0]?.stringValue
    }

    /// The arguments: an event's payload after its name, an ack's whole payload; empty otherwise.
    package var eventArguments: [JSONValue] {
        guard let elements = payload?.arrayValue else { return [] }
        switch type {
        case .event, .binaryEvent: return Array(elements.dropFirst())
        case .ack, .binaryAck: return elements
        case .connect, .disconnect, .connectError: return []
        }
    }
}

// MARK: - Encoding

extension SocketIOPacket {
    /// The packet in wire form, e.g. `2["ev",{}]`, `2/admin,7["ev"]`, `3/admin,7[]`, `0{"sid":"x"}`.
    package var encoded: String {
        var output: [UInt8] = []
        write(into: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// The Engine.IO message carrying this packet (`4` + `encoded`), i.e. the text of one WebSocket
    /// frame: `40`, `42["ev",{}]`, `44{"message":"..."}`.
    package var engineIOText: String {
        var output: [UInt8] = [UInt8(ascii: "4")]
        write(into: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// Appends the wire form to `output` (lets a frame writer prepend headers without another copy).
    package func write(into output: inout [UInt8]) {
        output.append(UInt8(ascii: "0") + UInt8(type.rawValue))
        if type.isBinary {
            JSONWriter.writeInteger(Int64(attachments ?? 0), into: &output)
            output.append(UInt8(ascii: "-"))
        }
        // The main namespace is implied; socket.io-parser also leaves out an empty one.
        if !namespace.isEmpty, namespace != "/" {
            output.append(contentsOf: namespace.utf8)
            output.append(UInt8(ascii: ","))
        }
        if let ackID {
            JSONWriter.writeInteger(ackID, into: &output)
        }
        payload?.write(into: &output)
    }
}

// MARK: - Decoding

extension SocketIOPacket {
    /// Decodes one packet (the text of an Engine.IO message, without its leading `4`).
    ///
    /// Rules, each violation a `SocketIOParseError`:
    /// - the type is one digit 0-6;
    /// - BINARY_EVENT / BINARY_ACK carry `<digits>-` with at most `maxAttachments`; other types none;
    /// - a namespace starts with `/` and runs to the next `,`, or to the end of the text (the
    ///   protocol's test suite sends `40/custom`); anything else is the main namespace `/`;
    /// - an ack id is at most `maxAckIDDigits` digits, only on EVENT/ACK types, and ACKs require one
    ///   (stricter than socket.io-parser, which accepts ids anywhere and ACKs without one);
    /// - the rest is one JSON document nested at most `maxDepth` deep (trailing garbage fails);
    /// - CONNECT: object or nothing; DISCONNECT: nothing; EVENT: non-empty array starting with a
    ///   string that is not a reserved name (numeric event names, which socket.io-parser allows, are
    ///   refused); ACK: array; CONNECT_ERROR: object or (legacy) string, required.
    package static func decode(
        _ text: Substring,
        maxDepth: Int = defaultMaxDepth
    ) throws(SocketIOParseError) -> SocketIOPacket {
        var text = text
        return try text.withUTF8 { bytes in
            Result { () throws(SocketIOParseError) in try decode(bytes: bytes, maxDepth: maxDepth) }
        }.get()
    }

    /// Decodes one packet held in a `String`; see `decode(_: Substring, maxDepth:)`.
    package static func decode(
        _ text: String,
        maxDepth: Int = defaultMaxDepth
    ) throws(SocketIOParseError) -> SocketIOPacket {
        var text = text
        return try text.withUTF8 { bytes in
            Result { () throws(SocketIOParseError) in try decode(bytes: bytes, maxDepth: maxDepth) }
        }.get()
    }

    private static func decode(
        bytes: UnsafeBufferPointer<UInt8>,
        maxDepth: Int
    ) throws(SocketIOParseError) -> SocketIOPacket {
        guard let first = bytes.first else { throw .empty }
        guard let type = SocketIOPacketType(digit: first) else {
            throw .unknownPacketType(firstCharacter(of: bytes))
        }
        var packet = SocketIOPacket(type: type)
        var index = 1

        if type.isBinary {
            var count = 0
            let digitsStart = index
            while index < bytes.count, let digit = decimalDigit(bytes[index]) {
                // Checked per digit, so the count never grows past the limit (no overflow on long runs).
                count = count * 10 + digit
                guard count <= maxAttachments else { throw .tooManyAttachments(limit: maxAttachments) }
                index += 1
            }
            guard index > digitsStart, index < bytes.count, bytes[index] == UInt8(ascii: "-") else {
                throw .malformedAttachments
            }
            index += 1
            packet.attachments = count
        }

        if index < bytes.count, bytes[index] == UInt8(ascii: "/") {
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: ",") {
                index += 1
            }
            packet.namespace = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            if index < bytes.count {
                index += 1  // the comma
            }
        }

        let idStart = index
        var ackID: Int64 = 0
        while index < bytes.count, let digit = decimalDigit(bytes[index]) {
            guard index - idStart < maxAckIDDigits else { throw .ackIDTooLong(maxDigits: maxAckIDDigits) }
            ackID = ackID * 10 + Int64(digit)
            index += 1
        }
        if index > idStart {
            guard type.takesAckID else { throw .unexpectedAckID(type) }
            packet.ackID = ackID
        } else if type == .ack || type == .binaryAck {
            throw .missingAckID(type)
        }

        if index < bytes.count {
            do throws(JSONParseError) {
                packet.payload = try JSONParser.parse(
                    UnsafeBufferPointer(rebasing: bytes[index...]),
                    maxDepth: maxDepth
                )
            } catch {
                throw .invalidJSON(error)
            }
        }
        try validatePayload(of: packet)
        return packet
    }

    private static func validatePayload(of packet: SocketIOPacket) throws(SocketIOParseError) {
        let type = packet.type
        switch type {
        case .connect:
            guard let payload = packet.payload else { return }
            guard payload.objectValue != nil else { throw .invalidPayload(type) }
        case .disconnect:
            guard packet.payload == nil else { throw .unexpectedPayload(type) }
        case .event, .binaryEvent:
            guard let payload = packet.payload else { throw .missingPayload(type) }
            guard let name = payload[0]?.stringValue else { throw .invalidPayload(type) }
            guard !reservedEventNames.contains(name) else { throw .reservedEventName(name) }
        case .ack, .binaryAck:
            guard let payload = packet.payload else { throw .missingPayload(type) }
            guard payload.arrayValue != nil else { throw .invalidPayload(type) }
        case .connectError:
            guard let payload = packet.payload else { throw .missingPayload(type) }
            guard payload.objectValue != nil || payload.stringValue != nil else { throw .invalidPayload(type) }
        }
    }

    private static func decimalDigit(_ byte: UInt8) -> Int? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) ? Int(byte - UInt8(ascii: "0")) : nil
    }

    /// The first Unicode scalar of valid UTF-8 text, for error messages.
    private static func firstCharacter(of bytes: UnsafeBufferPointer<UInt8>) -> String {
        let scalar = String(decoding: bytes.prefix(4), as: UTF8.self).unicodeScalars.first
        return scalar.map { String(Character($0)) } ?? ""
    }
}

extension SocketIOPacketType {
    /// The type written as the ASCII digit `digit`, if it is one of 0-6.
    init?(digit: UInt8) {
        guard digit >= UInt8(ascii: "0") else { return nil }
        self.init(rawValue: Int(digit - UInt8(ascii: "0")))
    }
}
