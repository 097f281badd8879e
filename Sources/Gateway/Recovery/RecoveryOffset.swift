import Shared

/// Connection state recovery (issue 15): what a socket was written of the durable events, as the
/// client holds it. Socket.IO 4.6+ clients keep the last string a server event ended with as their
/// offset and present it, with the session's `pid`, when they reconnect; this gateway sends its
/// offset as the event `recoveryOffset` after each message or change event, so the offset always
/// names the newest position the client has.
///
/// The position is, per conversation with events since the chain began, the last message `seq`
/// and the last change `version` written, plus when the offset was made (the recovery window).
/// At most `maxConversations` conversations are tracked; past that the offset says so and the
/// socket's recovery becomes a resync. Text form: `<madeAtMs>` then `.<conversation>:<seq>[:<version>]`
/// per conversation, or `.!` once overflowed, e.g. `1733400000000.12:40.13:5:2`. Pure and total:
/// the parser takes any text and returns an offset or nil.
struct RecoveryOffset: Sendable, Equatable {
    /// When the offset was written to the socket (milliseconds since the epoch).
    var madeAtMilliseconds: Int64
    /// conversation → last message seq written (0: none, only changes).
    private(set) var seqs: [Int64: Int64] = [:]
    /// conversation → last change version written.
    private(set) var versions: [Int64: Int64] = [:]
    /// More conversations than tracked had events: the position is incomplete.
    private(set) var overflowed = false

    static let maxConversations = 32
    /// Longest text accepted from a client.
    static let maxEncodedLength = 1_200

    init(madeAtMilliseconds: Int64) {
        self.madeAtMilliseconds = madeAtMilliseconds
    }

    /// Conversations tracked.
    var conversations: Set<Int64> { Set(seqs.keys).union(versions.keys) }

    /// The tracked conversations in order, without building a set (written after every message
    /// event: the offset's hot path).
    private var sortedConversations: [Int64] {
        var keys = Array(seqs.keys)
        for key in versions.keys where seqs[key] == nil { keys.append(key) }
        return keys.sorted()
    }

    /// A message `seq` of `conversation` was written; false when it was already covered.
    mutating func record(conversation: Int64, seq: Int64) -> Bool {
        guard conversation > 0, seq > 0 else { return false }
        if let known = seqs[conversation] {
            guard seq > known else { return false }
        } else if !admit(conversation) {
            return true
        }
        seqs[conversation] = seq
        return true
    }

    /// A change with conversation `version` was written; false when it was already covered.
    mutating func record(conversation: Int64, version: Int64) -> Bool {
        guard conversation > 0, version > 0 else { return false }
        if let known = versions[conversation] {
            guard version > known else { return false }
        } else if seqs[conversation] == nil, !admit(conversation) {
            return true
        }
        versions[conversation] = version
        return true
    }

    /// Whether a message event is already covered by this position (for de-duplication).
    func covers(conversation: Int64, seq: Int64) -> Bool { seqs[conversation].map { seq <= $0 } ?? false }

    /// Whether a change event is already covered by this position.
    func covers(conversation: Int64, version: Int64) -> Bool { versions[conversation].map { version <= $0 } ?? false }

    /// Makes room for a new conversation; false (and overflowed) when there is none.
    private mutating func admit(_ conversation: Int64) -> Bool {
        guard !overflowed else { return false }
        guard seqs.count + versions.keys.count(where: { seqs[$0] == nil }) < Self.maxConversations else {
            overflowed = true
            return false
        }
        return true
    }

    // MARK: Text

    var encoded: String {
        var text = String(madeAtMilliseconds)
        if overflowed { return text + ".!" }
        for conversation in sortedConversations {
            text += "." + String(conversation) + ":" + String(seqs[conversation] ?? 0)
            if let version = versions[conversation] { text += ":" + String(version) }
        }
        return text
    }

    init?(encoded text: String) {
        guard text.utf8.count <= Self.maxEncodedLength else { return nil }
        let fields = text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard let first = fields.first, let madeAt = Self.number(first) else { return nil }
        self.init(madeAtMilliseconds: madeAt)
        if fields.count == 2, fields[1].elementsEqual("!".utf8) {
            overflowed = true
            return
        }
        guard fields.count - 1 <= Self.maxConversations else { return nil }
        for field in fields.dropFirst() {
            let parts = field.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            guard parts.count == 2 || parts.count == 3, let conversation = Self.number(parts[0]), conversation > 0,
                  let seq = Self.number(parts[1]), conversations.contains(conversation) == false else { return nil }
            if seq > 0 { seqs[conversation] = seq }
            if parts.count == 3 {
                guard let version = Self.number(parts[2]), version > 0 else { return nil }
                versions[conversation] = version
            }
            guard seq > 0 || parts.count == 3 else { return nil }
        }
    }

    /// A non-negative decimal of at most 18 digits (no sign, no leading `+`).
    private static func number(_ digits: some Collection<UInt8>) -> Int64? {
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var value: Int64 = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(digit - UInt8(ascii: "0"))
        }
        return value
    }
}

/// The private session id (`pid`) of connection state recovery: names the user and when the
/// recovery chain began (its first socket subscribed), signed with a key derived from
/// `JWT_SECRET` so any gateway can check it and nobody can make one up. Text form
/// `<userId>.<epochMs>.<nonce>.<mac>` (URL-safe).
struct RecoveryPID: Sendable, Equatable {
    var userID: Int64
    var epochMilliseconds: Int64
    var nonce: String

    /// Longest text accepted from a client.
    static let maxEncodedLength = 128

    struct Signer: Sendable {
        private let key: [UInt8]

        init(secret: [UInt8]) {
            key = HMACSHA256.authenticationCode(key: secret, message: Array("socket.io recovery pid v1".utf8))
        }

        func sign(_ pid: RecoveryPID) -> String {
            let body = "\(pid.userID).\(pid.epochMilliseconds).\(pid.nonce)"
            return body + "." + mac(body)
        }

        /// The pid `text` names if its signature holds; nil otherwise (any text is safe).
        func verify(_ text: String) -> RecoveryPID? {
            guard text.utf8.count <= RecoveryPID.maxEncodedLength else { return nil }
            let fields = text.split(separator: ".", omittingEmptySubsequences: false)
            guard fields.count == 4, let user = Int64(fields[0]), user > 0, let epoch = Int64(fields[1]), epoch >= 0,
                  !fields[2].isEmpty, fields[2].utf8.count <= 32 else { return nil }
            let body = "\(fields[0]).\(fields[1]).\(fields[2])"
            guard ConstantTime.equals(Array(mac(body).utf8), Array(fields[3].utf8)) else { return nil }
            return RecoveryPID(userID: user, epochMilliseconds: epoch, nonce: String(fields[2]))
        }

        private func mac(_ body: String) -> String {
            Base64URL.encode(HMACSHA256.authenticationCode(key: key, message: Array(body.utf8)).prefix(16))
        }
    }
}

/// A connected socket's recovery chain: the `pid` its CONNECT answer named and the position
/// written to it since.
struct RecoveryChain: Sendable, Equatable {
    var pid: String
    var offset: RecoveryOffset
}
