/// Close status codes (RFC 6455 §7.4) and the rule for which ones may appear in a close frame.
package enum WebSocketCloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    package static let normalClosure: UInt16 = 1000
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    package static let goingAway: UInt16 = 1001
    /// 1002: the peer broke the protocol.
    package static let protocolError: UInt16 = 1002
    /// 1003: a data type the endpoint cannot accept (our gateway refuses binary frames with it).
    package static let unsupportedData: UInt16 = 1003
    /// 1005: no code was present in the close frame. Reported locally only, never sent.
    package static let noStatusReceived: UInt16 = 1005
    /// 1006: the connection dropped without a close frame. Reported locally only, never sent.
    package static let abnormalClosure: UInt16 = 1006
    /// 1007: a text message or close reason is not valid UTF-8.
    package static let invalidPayload: UInt16 = 1007
    /// 1008: the message violates the endpoint's policy (generic refusal).
    package static let policyViolation: UInt16 = 1008
    /// 1009: a message is larger than the endpoint accepts.
    package static let messageTooBig: UInt16 = 1009
    /// 1010: (client only) the server did not negotiate a required extension.
    package static let mandatoryExtension: UInt16 = 1010
    /// 1011: an unexpected condition on the server.
    package static let internalError: UInt16 = 1011

    /// True when `code` may be sent in a close frame: 1000-1003, 1007-1011 (defined by RFC 6455) and
    /// 3000-4999 (registered and private use). 1004-1006 and 1015 are reserved or local-only, the
    /// rest of 0-2999 is unassigned, and 5000+ is undefined: receiving any of them is a 1002 error.
    package static func isValidOnWire(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1011, 3000...4999: true
        default: false
        }
    }
}
