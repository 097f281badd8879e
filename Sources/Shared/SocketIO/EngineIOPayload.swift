// Engine.IO v4 HTTP long-polling payloads (socketio/engine.io-protocol, "HTTP long-polling"): the
// packets of one GET answer or one POST body, each encoded as for WebSocket (`4hello`, `2`), joined
// by the record separator U+001E. A packet's text cannot contain the separator: Socket.IO's JSON
// escapes control characters, so splitting on every separator is exact.

/// Encoding and decoding of a long-polling request or response body.
package enum EngineIOPayload {
    /// U+001E, between two packets.
    package static let separator: UInt8 = 0x1E

    /// Why a polling body was refused.
    package enum DecodeError: Error, Sendable, Equatable {
        /// The body was empty (a POST carries at least one packet).
        case empty
        /// Two separators in a row, or a separator at either end: an empty packet.
        case emptyPacket
        /// More packets than the limit.
        case tooManyPackets(limit: Int)
        /// The body is not valid UTF-8.
        case invalidUTF8

        package var message: String {
            switch self {
            case .empty: "empty polling payload"
            case .emptyPacket: "empty packet in a polling payload"
            case .tooManyPackets(let limit): "more than \(limit) packets in one polling payload"
            case .invalidUTF8: "polling payload is not valid UTF-8"
            }
        }
    }

    /// The packet texts of a POST body, in order. Pure and total: any bytes give packets or an error.
    package static func decode(_ body: some Collection<UInt8>, maxPackets: Int) throws(DecodeError) -> [String] {
        guard !body.isEmpty else { throw .empty }
        var packets: [String] = []
        var start = body.startIndex
        var index = body.startIndex
        while true {
            if index == body.endIndex || body[index] == separator {
                guard start != index else { throw .emptyPacket }
                guard packets.count < maxPackets else { throw .tooManyPackets(limit: maxPackets) }
                guard let text = String(validating: body[start..<index], as: UTF8.self) else { throw .invalidUTF8 }
                packets.append(text)
                if index == body.endIndex { return packets }
                index = body.index(after: index)
                start = index
                if index == body.endIndex { throw .emptyPacket }
            } else {
                index = body.index(after: index)
            }
        }
    }

    /// One body carrying `packets` (each an encoded Engine.IO packet), separated by U+001E.
    package static func encode(_ packets: some Sequence<some Collection<UInt8>>) -> [UInt8] {
        var out: [UInt8] = []
        for packet in packets {
            if !out.isEmpty { out.append(separator) }
            out.append(contentsOf: packet)
        }
        return out
    }
}
