import API
import HTTP
import JSON
import Redis

/// Redis names of the message path: the command stream, per-user event channels, per-gateway
/// reply channels.
package enum ChatChannels {
    /// The command stream gateways `XADD` to (default of `COMMAND_STREAM`).
    package static let commandStream = "chat:cmd"
    /// Where workers move entries they cannot process (default of `DEAD_LETTER_STREAM`).
    package static let deadLetterStream = "chat:cmd:dead"
    /// Every event for one user, on any device.
    package static func user(_ userID: Int64) -> String { userPrefix + String(userID) }
    /// What every user channel name starts with (the rest is the decimal user id).
    package static let userPrefix = "chat:user:"
    /// Replies and control messages for one gateway.
    package static func gateway(_ gatewayID: String) -> String { "chat:gw:\(gatewayID)" }
    /// Long-polling requests relayed to the gateway owning their session, and the answers back
    /// (issue 15); `route` starts every Engine.IO session id that gateway issues.
    package static func relay(_ route: String) -> String { "chat:relay:\(route)" }
    /// Every event for the members of one room (issue 13): a gateway subscribes it while it holds
    /// a socket of a member.
    package static func room(_ roomID: Int64) -> String { roomPrefix + String(roomID) }
    /// What every room channel name starts with (the rest is the decimal room id).
    package static let roomPrefix = "chat:room:"
    /// One user's presence changes (`userOnline` / `userOffline`), for the sockets that subscribed
    /// to that user's presence (issue 13); contacts hear them on their own channels as before.
    package static func presence(_ userID: Int64) -> String { presencePrefix + String(userID) }
    /// What every presence channel name starts with (the rest is the decimal user id).
    package static let presencePrefix = "chat:presence:watch:"
}

/// An event for every member of a room but `except` (issue 13), published once on the room's
/// channel: `{"event", "data", "except"?}`. Each gateway writes it to its local sockets of members.
package struct RoomEvent: Sendable, Equatable {
    package var roomID: Int64
    package var event: SocketEvent
    package var data: JSONValue
    /// A member whose devices do not get it (the sender of a message, the member who left).
    package var except: Int64?
    /// `data` already written (see `ChatEvent.encodedData`).
    package var encodedData: [UInt8]?

    package init(roomID: Int64, event: SocketEvent, data: JSONValue, except: Int64? = nil, encodedData: [UInt8]? = nil) {
        self.roomID = roomID
        self.event = event
        self.data = data
        self.except = except
        self.encodedData = encodedData
    }

    /// The published bytes.
    package func payload() -> [UInt8] {
        guard let encodedData else {
            var object: JSONObject = ["event": .string(event.name), "data": data]
            if let except { object["except"] = .int(except) }
            return JSONValue.object(object).serialized()
        }
        var output = EncodedJSON.eventHead(event.name, dataCount: encodedData.count)
        output += encodedData
        if let except {
            output.append(contentsOf: #","except":"#.utf8)
            JSONWriter.writeInteger(except, into: &output)
        }
        output.append(UInt8(ascii: "}"))
        return output
    }

    /// Equal when they publish the same event (whether `data` was written beforehand or not).
    package static func == (lhs: RoomEvent, rhs: RoomEvent) -> Bool {
        lhs.roomID == rhs.roomID && lhs.event == rhs.event && lhs.data == rhs.data && lhs.except == rhs.except
    }

    /// `PUBLISH chat:room:<id> <payload>`.
    package var publishCommand: RedisCommand {
        .publish(ChatChannels.room(roomID), payload: payload())
    }
}

/// The errors of the message path, shared so a code means the same thing in workers and gateways.
package enum ChatErrors {
    /// The receiver of a send does not exist.
    package static let userNotFound = APIError(.userNotFound, message: "the receiver does not exist")
    /// A read names a message that does not exist.
    package static let messageNotFound = APIError(.messageNotFound)
    /// A read names a message the user did not receive.
    package static let notARecipient = APIError(.notARecipient)
    /// A send to oneself (refused: a direct conversation needs two people).
    package static let cannotMessageSelf = APIError(.cannotMessageSelf)
    /// A worker gave up on the command (it kept failing, see the dead-letter stream).
    package static let processingFailed = APIError(.processingFailed)
    /// No worker answered in time (gateways; the command may still be applied later).
    package static let workerUnavailable = APIError.unavailable(.workerUnavailable)

    /// A command type this worker does not know (a newer gateway?).
    package static func unsupportedCommand(_ type: String) -> APIError {
        APIError(.unsupportedCommand, message: "unknown command type '\(type.prefix(32))'")
    }

    /// The `APIError` for an error received in a worker reply, so REST answers with the right
    /// status: the code as declared (`ErrorCode.replyCodes`), or a 500 for a name this version does
    /// not know.
    package static func apiError(code name: String, message: String, details: JSONObject = [:]) -> APIError {
        let code = ErrorCode.named(name, in: ErrorCode.replyCodes) ?? ErrorCode(name, .internalServerError, message)
        var error = APIError(code, message: message, details: details)
        if code.status == .serviceUnavailable {
            error.headers.replaceOrAdd(name: "Retry-After", value: "1")
        } else if code.status == .tooManyRequests, let wait = details["retryAfterMs"]?.int64Value {
            error.headers.replaceOrAdd(name: "Retry-After", value: String(APIError.retryAfterSeconds(.milliseconds(wait))))
        }
        return error
    }
}

/// The outcome of one command, published by a worker on `chat:gw:{gateway}`:
/// `{"reply": <address>, "ok": true, "result": <json>}` or `{"reply": ..., "ok": false, "error": {"code", "message"}}`.
package struct ChatReply: Sendable, Equatable {
    /// Success with a result, or failure with a code and message.
    package enum Outcome: Sendable, Equatable {
        /// The command was applied; the result (a message, or read counts).
        case ok(JSONValue)
        /// The command was refused or failed; an `APIError`'s code, message and extra fields
        /// (`retryAfterMs` and `limit` of `rate_limited`).
        case failed(code: String, message: String, details: JSONObject = [:])
    }

    /// Where the reply goes (copied from the command).
    package var reply: ReplyAddress
    /// What happened.
    package var outcome: Outcome

    /// A reply to `reply`.
    package init(reply: ReplyAddress, outcome: Outcome) {
        self.reply = reply
        self.outcome = outcome
    }

    /// A failure reply carrying `error`'s code and message.
    package init(reply: ReplyAddress, error: APIError) {
        self.init(reply: reply, outcome: .failed(code: error.code.name, message: error.message, details: error.details))
    }

    /// The channel to publish on.
    package var channel: String { ChatChannels.gateway(reply.gateway) }

    /// The JSON document.
    package var json: JSONValue {
        switch outcome {
        case .ok(let result):
            return ["reply": reply.json, "ok": true, "result": result]
        case .failed(let code, let message, let details):
            return ["reply": reply.json, "ok": false, "error": APIError.errorObject(code: code, message: message, details: details)]
        }
    }

    /// The result of `.ok` already written (see `ChatEvent.encodedData`).
    package var encodedResult: [UInt8]?

    /// The published bytes.
    package func payload() -> [UInt8] {
        guard let encodedResult, case .ok = outcome else { return json.serialized() }
        var output: [UInt8] = []
        output.reserveCapacity(encodedResult.count + 160)
        output.append(contentsOf: #"{"reply":"#.utf8)
        reply.json.write(into: &output)
        output.append(contentsOf: #","ok":true,"result":"#.utf8)
        output += encodedResult
        output.append(UInt8(ascii: "}"))
        return output
    }

    /// Equal when they carry the same answer (whether the result was written beforehand or not).
    package static func == (lhs: ChatReply, rhs: ChatReply) -> Bool {
        lhs.reply == rhs.reply && lhs.outcome == rhs.outcome
    }

    /// `PUBLISH <channel> <payload>`.
    package var publishCommand: RedisCommand {
        .publish(channel, payload: payload())
    }

    /// Reads a published reply; nil if it is not one.
    package static func parse(_ payload: some Collection<UInt8>) -> ChatReply? {
        guard let json = try? JSONParser.parse(payload), let addressJSON = json["reply"],
              let address = ReplyAddress(json: addressJSON), let ok = json["ok"]?.boolValue else { return nil }
        if ok { return ChatReply(reply: address, outcome: .ok(json["result"] ?? .null)) }
        guard case .object(var error)? = json["error"], let code = error["code"]?.stringValue else { return nil }
        let message = error["message"]?.stringValue ?? code
        error["code"] = nil
        error["message"] = nil
        return ChatReply(reply: address, outcome: .failed(code: code, message: message, details: error))
    }
}

/// An event for every device of one user, published on `chat:user:{id}` as `{"event", "data"}`
/// (gateways turn it into `42["<event>",<data>]`).
package struct ChatEvent: Sendable, Equatable {
    /// Whose devices get it.
    package var userID: Int64
    /// The Socket.IO event, e.g. `receiveMessage`.
    package var event: SocketEvent
    /// The event's argument.
    package var data: JSONValue
    /// `data` already written, when the caller had it: a stored message goes out in a reply and
    /// two events, and is written once (`EncodedJSON`). Must be `data`'s compact encoding.
    package var encodedData: [UInt8]?

    /// An event for `userID`.
    package init(userID: Int64, event: SocketEvent, data: JSONValue, encodedData: [UInt8]? = nil) {
        self.userID = userID
        self.event = event
        self.data = data
        self.encodedData = encodedData
    }

    /// Equal when they publish the same event (whether `data` was written beforehand or not).
    package static func == (lhs: ChatEvent, rhs: ChatEvent) -> Bool {
        lhs.userID == rhs.userID && lhs.event == rhs.event && lhs.data == rhs.data
    }

    /// The event's wire name.
    package var name: String { event.name }

    /// The channel to publish on.
    package var channel: String { ChatChannels.user(userID) }

    /// The published bytes.
    package func payload() -> [UInt8] {
        guard let encodedData else { return JSONValue.object(["event": .string(name), "data": data]).serialized() }
        var output = EncodedJSON.eventHead(name, dataCount: encodedData.count)
        output += encodedData
        output.append(UInt8(ascii: "}"))
        return output
    }

    /// `PUBLISH <channel> <payload>`.
    package var publishCommand: RedisCommand {
        .publish(channel, payload: payload())
    }
}

/// A message on a user's channel for the gateways rather than the user's sockets:
/// `{"control": "revoke", "jti"?: "...", "sid"?: "..."}`. Gateways act on it and never forward it.
package enum UserChannelControl: Sendable, Equatable {
    /// Tokens of the user stopped being valid: sockets running on them end.
    case revoke(TokenRevocation)

    /// The member that marks a control message (events have `event` instead).
    package static let marker = "control"

    /// The published bytes.
    package func payload() -> [UInt8] {
        switch self {
        case .revoke(let revocation):
            var object: JSONObject = [Self.marker: "revoke"]
            if let tokenID = revocation.tokenID { object["jti"] = .string(tokenID) }
            if let sessionID = revocation.sessionID { object["sid"] = .string(sessionID) }
            return JSONValue.object(object).serialized()
        }
    }

    /// `PUBLISH chat:user:<id> <payload>`.
    package func publishCommand(userID: Int64) -> RedisCommand {
        .publish(ChatChannels.user(userID), payload: payload())
    }

    /// The control message in a published object; nil when it is none (or one this version does
    /// not know, which is then ignored).
    package static func parse(_ object: JSONObject) -> UserChannelControl? {
        guard case .string(let kind)? = object[marker] else { return nil }
        switch kind {
        case "revoke":
            let revocation = TokenRevocation(tokenID: object["jti"]?.stringValue, sessionID: object["sid"]?.stringValue)
            guard revocation.tokenID != nil || revocation.sessionID != nil else { return nil }
            return .revoke(revocation)
        default:
            return nil
        }
    }
}

/// Splicing values written once into the payloads that carry them.
package enum EncodedJSON {
    /// `{"event":"<name>","data":` with room for the data and the closing brace.
    static func eventHead(_ name: String, dataCount: Int) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(dataCount + name.utf8.count + 40)
        output.append(contentsOf: #"{"event":"#.utf8)
        JSONWriter.writeString(name, into: &output)
        output.append(contentsOf: #","data":"#.utf8)
        return output
    }

    /// `object` (a written JSON object, `{...}`) with integer members appended, as if they had
    /// been set on the object before writing it (new keys only).
    package static func appending(_ members: KeyValuePairs<String, Int64>, to object: [UInt8]) -> [UInt8] {
        precondition(object.count >= 2 && object.last == UInt8(ascii: "}"), "not a written JSON object")
        var output: [UInt8] = []
        output.reserveCapacity(object.count + 24 * members.count)
        output.append(contentsOf: object[..<(object.endIndex - 1)])
        var first = object.count == 2
        for (key, value) in members {
            if !first { output.append(UInt8(ascii: ",")) }
            first = false
            JSONWriter.writeString(key, into: &output)
            output.append(UInt8(ascii: ":"))
            JSONWriter.writeInteger(value, into: &output)
        }
        output.append(UInt8(ascii: "}"))
        return output
    }
}
