import Testing

@testable import Shared

@Suite("SocketIOPacket")
struct SocketIOPacketTests {
    // MARK: Canonical encodings (as Engine.IO messages, i.e. with the leading "4")

    @Test("helpers encode to the canonical wire forms")
    func canonicalForms() {
        #expect(SocketIOPacket.connect().engineIOText == "40")
        #expect(SocketIOPacket.connect(sid: "x").engineIOText == #"40{"sid":"x"}"#)
        #expect(SocketIOPacket.connect(auth: ["token": "t"]).engineIOText == #"40{"token":"t"}"#)
        #expect(SocketIOPacket.event("ev", [.object([:])]).engineIOText == #"42["ev",{}]"#)
        #expect(SocketIOPacket.event("ev", [], ackID: 7).engineIOText == #"427["ev"]"#)
        #expect(SocketIOPacket.ack(id: 7, [["pong": true]]).engineIOText == #"437[{"pong":true}]"#)
        #expect(SocketIOPacket.ack(id: 0, []).engineIOText == "430[]")
        #expect(
            SocketIOPacket.connectError(message: "Token expired", code: "token_expired").engineIOText
                == #"44{"message":"Token expired","data":{"code":"token_expired"}}"#
        )
        #expect(SocketIOPacket.disconnect.engineIOText == "41")
        #expect(SocketIOPacket.disconnect(namespace: "/admin").engineIOText == "41/admin,")
        #expect(SocketIOPacket.event("ev", [], namespace: "/admin").engineIOText == #"42/admin,["ev"]"#)
        #expect(SocketIOPacket.event("ev", [1], ackID: 12, namespace: "/admin").encoded == #"2/admin,12["ev",1]"#)
        #expect(SocketIOPacket.ack(id: 13, ["bar"], namespace: "/admin").encoded == #"3/admin,13["bar"]"#)
        #expect(SocketIOPacket.connect(sid: "s", namespace: "/admin").encoded == #"0/admin,{"sid":"s"}"#)
        // An empty namespace is the main one, as in socket.io-parser.
        #expect(SocketIOPacket(type: .disconnect, namespace: "").encoded == "1")
        #expect(SocketIOPacket.event("a", []).encoded == #"2["a"]"#)
    }

    @Test("binary headers decode and re-encode exactly")
    func binaryHeaders() throws {
        let packet = try SocketIOPacket.decode(#"51-["ev",{"_placeholder":true,"num":0}]"#)
        #expect(packet.type == .binaryEvent)
        #expect(packet.attachments == 1)
        #expect(packet.eventName == "ev")
        #expect(packet.eventArguments == [["_placeholder": true, "num": 0]])
        #expect(packet.engineIOText == #"451-["ev",{"_placeholder":true,"num":0}]"#)

        let withNamespace = try SocketIOPacket.decode(
            #"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        #expect(withNamespace.attachments == 2)
        #expect(withNamespace.namespace == "/admin")

        let binaryAck = try SocketIOPacket.decode(#"61-/a,15[{"_placeholder":true,"num":0}]"#)
        #expect(binaryAck.type == .binaryAck)
        #expect(binaryAck.ackID == 15)
        #expect(binaryAck.encoded == #"61-/a,15[{"_placeholder":true,"num":0}]"#)

        // Zero attachments is accepted (socket.io-parser too); ten is the limit.
        #expect(try SocketIOPacket.decode(#"50-["a"]"#).attachments == 0)
        #expect(try SocketIOPacket.decode(#"510-["a"]"#).attachments == 10)
        #expect(try SocketIOPacket.decode(#"5010-["a"]"#).encoded == #"510-["a"]"#)
        // A binary packet built without a count is written with 0.
        #expect(SocketIOPacket(type: .binaryEvent, payload: ["a"]).encoded == #"50-["a"]"#)
    }

    // MARK: Decoding what clients send

    @Test("decodes the examples of the protocol and its test suite")
    func protocolExamples() throws {
        #expect(try SocketIOPacket.decode("0") == SocketIOPacket(type: .connect))
        #expect(try SocketIOPacket.decode(#"0{"token":"123"}"#) == .connect(auth: ["token": "123"]))
        #expect(try SocketIOPacket.decode("0/custom,") == SocketIOPacket(type: .connect, namespace: "/custom"))
        #expect(
            try SocketIOPacket.decode(#"0/custom,{"token":"abc"}"#)
                == .connect(auth: ["token": "abc"], namespace: "/custom"))
        // The test suite sends namespaces without the comma when nothing follows.
        #expect(try SocketIOPacket.decode("0/random").namespace == "/random")
        #expect(try SocketIOPacket.decode("1/custom") == .disconnect(namespace: "/custom"))
        #expect(try SocketIOPacket.decode("1") == .disconnect)

        let event = try SocketIOPacket.decode(#"2["message",1,"2",{"3":[true]}]"#)
        #expect(event.eventName == "message")
        #expect(event.eventArguments == [1, "2", ["3": [true]]])
        #expect(event.ackID == nil)

        let withAck = try SocketIOPacket.decode(#"2456["message-with-ack",1,"2",{"3":[false]}]"#)
        #expect(withAck.ackID == 456)
        #expect(withAck == .event("message-with-ack", [1, "2", ["3": [false]]], ackID: 456))

        let ack = try SocketIOPacket.decode(#"3/admin,13["bar"]"#)
        #expect(ack == .ack(id: 13, ["bar"], namespace: "/admin"))
        #expect(ack.eventName == nil)
        #expect(ack.eventArguments == ["bar"])
        #expect(try SocketIOPacket.decode("37[]").eventArguments == [])

        #expect(try SocketIOPacket.decode(#"4{"message":"Not authorized"}"#).payload == ["message": "Not authorized"])
        // Legacy CONNECT_ERROR with a string payload.
        #expect(try SocketIOPacket.decode(#"4"Not authorized""#).payload == "Not authorized")
    }

    @Test("tolerated spellings decode to the canonical packet")
    func lenientSpellings() throws {
        #expect(try SocketIOPacket.decode(#"2 ["a"] "#).encoded == #"2["a"]"#)
        #expect(try SocketIOPacket.decode(#"2007["a"]"#).ackID == 7)
        #expect(try SocketIOPacket.decode(#"2/,["a"]"#) == .event("a", []))
        #expect(try SocketIOPacket.decode("0/") == SocketIOPacket(type: .connect))
        #expect(try SocketIOPacket.decode(#"2999999999999999999["a"]"#).ackID == 999_999_999_999_999_999)
    }

    @Test("Substring and String inputs decode alike")
    func substringInput() throws {
        let frame = #"42/chat,5["send",{"text":"héllo"}]"#
        let packet = try SocketIOPacket.decode(frame.dropFirst())
        #expect(packet == (try SocketIOPacket.decode(String(frame.dropFirst()))))
        #expect(packet == .event("send", [["text": "héllo"]], ackID: 5, namespace: "/chat"))
    }

    @Test("a leading combining mark is its own (unknown) type, however the text is sliced")
    func combiningMarkRegression() {
        // Found by the fuzzer: "#" + "\u{301}" is one Character, so slicing by Character lost the mark.
        let text = "\u{301}26"
        #expect(decodeError(text) == .unknownPacketType("\u{301}"))
        let prefixed = "#" + text
        let slice = prefixed[prefixed.utf8.index(after: prefixed.startIndex)...]
        #expect(throws: SocketIOParseError.unknownPacketType("\u{301}")) { try SocketIOPacket.decode(slice) }
        // After a valid type digit the mark is ordinary payload text.
        #expect(decodeError("2\u{301}") == .invalidJSON(jsonError("\u{301}")))
    }

    @Test("the JSON depth limit is applied to the payload")
    func depthLimit() throws {
        let nested = #"2["a",[[["x"]]]]"#
        #expect(try SocketIOPacket.decode(nested, maxDepth: 4).eventName == "a")
        #expect(throws: SocketIOParseError.self) { try SocketIOPacket.decode(nested, maxDepth: 3) }
        let deep = "2[\"a\"," + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "]"
        guard case .invalidJSON(let error) = decodeError(deep) else {
            Issue.record("expected a JSON depth error")
            return
        }
        #expect(error.kind == .depthLimitExceeded(SocketIOPacket.defaultMaxDepth))
    }

    // MARK: Round trips

    static let namespaces = ["/", "/admin", "/a/b-c_d"]
    static let ackIDs: [Int64?] = [nil, 0, 7, 123_456_789_012_345_678]

    static let samplePackets: [SocketIOPacket] = {
        var packets: [SocketIOPacket] = []
        for namespace in namespaces {
            packets.append(.connect(namespace: namespace))
            packets.append(.connect(auth: ["token": "abc", "n": 1.5], namespace: namespace))
            packets.append(.connect(sid: "wZX3oN0bSVIhsaknAAAI", namespace: namespace))
            packets.append(.disconnect(namespace: namespace))
            packets.append(.connectError(message: "Invalid namespace", code: "invalid_namespace", namespace: namespace))
            packets.append(SocketIOPacket(type: .connectError, namespace: namespace, payload: "legacy"))
            for ackID in ackIDs {
                packets.append(.event("ev", [], ackID: ackID, namespace: namespace))
                let arguments: [JSONValue] = [nil, true, -3, 2.5, "s", [1, [2]], ["k": ["v"]]]
                packets.append(.event("ünï\"code\n", arguments, ackID: ackID, namespace: namespace))
                packets.append(
                    SocketIOPacket(
                        type: .binaryEvent, namespace: namespace, ackID: ackID,
                        payload: ["up", ["_placeholder": true, "num": 0]], attachments: 1))
                if let ackID {
                    packets.append(.ack(id: ackID, [], namespace: namespace))
                    packets.append(.ack(id: ackID, ["x", ["ok": true]], namespace: namespace))
                    packets.append(
                        SocketIOPacket(
                            type: .binaryAck, namespace: namespace, ackID: ackID,
                            payload: [["_placeholder": true, "num": 1]], attachments: 2))
                }
            }
        }
        return packets
    }()

    @Test("every packet type, namespace and ack id round-trips")
    func roundTrips() throws {
        for packet in Self.samplePackets {
            let decoded = try SocketIOPacket.decode(packet.encoded)
            #expect(decoded == packet, "\(packet.encoded)")
            #expect(decoded.encoded == packet.encoded)
            // The Engine.IO carrier gives the same packet back.
            let carrier = try EngineIOPacket.decode(packet.engineIOText)
            guard case .message(let text) = carrier else {
                Issue.record("not a message: \(carrier)")
                continue
            }
            #expect(try SocketIOPacket.decode(text) == packet)
            var bytes: [UInt8] = []
            packet.write(into: &bytes)
            #expect(bytes == Array(packet.encoded.utf8))
        }
    }

    // MARK: Malformed input

    static let malformed: [(String, SocketIOParseError)] = [
        // empty / bad type
        ("", .empty),
        ("7", .unknownPacketType("7")),
        ("9[]", .unknownPacketType("9")),
        ("abc", .unknownPacketType("a")),
        (" 2[\"a\"]", .unknownPacketType(" ")),
        ("é", .unknownPacketType("é")),
        ("/", .unknownPacketType("/")),
        // bad attachments
        (#"5["a"]"#, .malformedAttachments),
        (#"5-["a"]"#, .malformedAttachments),
        ("51", .malformedAttachments),
        (#"51["a"]"#, .malformedAttachments),
        (#"5 1-["a"]"#, .malformedAttachments),
        (#"611-["a"]"#, .tooManyAttachments(limit: 10)),
        (#"5999999999999999999999999-["a"]"#, .tooManyAttachments(limit: 10)),
        // attachments on a non-binary type read as an ack id followed by garbage
        (#"21-["a"]"#, .invalidJSON(jsonError(#"-["a"]"#))),
        // namespace without comma swallows the rest, so the payload is missing
        (#"2/admin["ev"]"#, .missingPayload(.event)),
        (#"3/admin1[]"#, .missingAckID(.ack)),
        // ack ids
        (#"21234567890123456789["a"]"#, .ackIDTooLong(maxDigits: 18)),
        (#"3/a,1234567890123456789[]"#, .ackIDTooLong(maxDigits: 18)),
        ("3[]", .missingAckID(.ack)),
        (#"61-[]"#, .missingAckID(.binaryAck)),
        ("01{}", .unexpectedAckID(.connect)),
        ("11", .unexpectedAckID(.disconnect)),
        (#"41{"message":"x"}"#, .unexpectedAckID(.connectError)),
        (#"2x["a"]"#, .invalidJSON(jsonError(#"x["a"]"#))),
        (#"2-1["a"]"#, .invalidJSON(jsonError(#"-1["a"]"#))),
        // invalid JSON / trailing garbage
        (#"2["a""#, .invalidJSON(jsonError(#"["a""#))),
        (#"2["a",]"#, .invalidJSON(jsonError(#"["a",]"#))),
        (#"2["a"]x"#, .invalidJSON(jsonError(#"["a"]x"#))),
        (#"2["a"]["b"]"#, .invalidJSON(jsonError(#"["a"]["b"]"#))),
        (#"0{}}"#, .invalidJSON(jsonError("{}}"))),
        ("2 ", .invalidJSON(jsonError(" "))),
        // wrong payload shape per type
        ("0[]", .invalidPayload(.connect)),
        (#"0"token""#, .invalidPayload(.connect)),
        ("0null", .invalidPayload(.connect)),
        ("1{}", .unexpectedPayload(.disconnect)),
        ("1/admin,{}", .unexpectedPayload(.disconnect)),
        ("2", .missingPayload(.event)),
        ("27", .missingPayload(.event)),
        ("2/admin,", .missingPayload(.event)),
        ("2{}", .invalidPayload(.event)),
        ("2[]", .invalidPayload(.event)),
        (#""ev""#, .unknownPacketType("\"")),
        (#"2"ev""#, .invalidPayload(.event)),
        ("51-[]", .invalidPayload(.binaryEvent)),
        ("37", .missingPayload(.ack)),
        ("37{}", .invalidPayload(.ack)),
        ("37null", .invalidPayload(.ack)),
        ("4", .missingPayload(.connectError)),
        ("4[]", .invalidPayload(.connectError)),
        ("442", .unexpectedAckID(.connectError)),
        // event name not a string, or reserved
        ("2[1]", .invalidPayload(.event)),
        ("2[null]", .invalidPayload(.event)),
        (#"2[["a"]]"#, .invalidPayload(.event)),
        (#"2[{"a":1}]"#, .invalidPayload(.event)),
        (#"51-[1,{"_placeholder":true,"num":0}]"#, .invalidPayload(.binaryEvent)),
        (#"2["disconnect"]"#, .reservedEventName("disconnect")),
        (#"2/admin,3["connect",1]"#, .reservedEventName("connect")),
        (#"2["newListener"]"#, .reservedEventName("newListener")),
    ]

    @Test("every malformed input class is refused with its error")
    func malformedInputs() {
        for (input, expected) in Self.malformed {
            #expect(decodeError(input) == expected, "input: \(input)")
        }
    }

    @Test("every error has a message")
    func errorMessages() {
        for (input, _) in Self.malformed {
            guard let error = decodeError(input) else { continue }
            #expect(!error.message.isEmpty)
            #expect(error.description == error.message)
        }
        #expect(SocketIOParseError.unknownPacketType("x").message.contains("'x'"))
        #expect(SocketIOParseError.invalidPayload(.event).message.contains("event name"))
        #expect(SocketIOParseError.tooManyAttachments(limit: 10).message.contains("10"))
    }

    @Test("accessors on packets that are not events")
    func accessors() {
        #expect(SocketIOPacket.connect(sid: "s").eventName == nil)
        #expect(SocketIOPacket.connect(sid: "s").eventArguments == [])
        #expect(SocketIOPacket(type: .event, payload: [1]).eventName == nil)
        #expect(SocketIOPacket(type: .event).eventArguments == [])
        #expect(SocketIOPacketType.allCases.map(\.name) == [
            "CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK",
        ])
    }
}

private func decodeError(_ input: String) -> SocketIOParseError? {
    do {
        _ = try SocketIOPacket.decode(input)
        return nil
    } catch {
        return error
    }
}

/// The error JSONParser gives for `text` (a payload slice), to compare error values exactly.
private func jsonError(_ text: String) -> JSONParseError {
    do {
        _ = try JSONParser.parse(text, maxDepth: SocketIOPacket.defaultMaxDepth)
    } catch {
        return error
    }
    return JSONParseError(kind: .trailingData, offset: -1, line: 0, column: 0)
}
