import Shared

/// The wire form of a principal in a session hand-over between gateways (issue 15: a relayed
/// `probe` answer and a `transfer` snapshot; see `RemoteUpgrade`).
extension Principal {
    var handOverFields: JSONObject {
        var fields: JSONObject = ["userId": .int(userID), "tokenId": .string(tokenID), "expiresAt": .int(expiresAt)]
        if let sessionID { fields["sessionId"] = .string(sessionID) }
        return fields
    }

    init?(handOverFields fields: JSONObject) {
        guard let user = fields["userId"]?.int64Value, user > 0, case .string(let token)? = fields["tokenId"],
              let expires = fields["expiresAt"]?.int64Value else { return nil }
        self.init(userID: user, tokenID: token, sessionID: fields["sessionId"]?.stringValue, expiresAt: expires)
    }
}
