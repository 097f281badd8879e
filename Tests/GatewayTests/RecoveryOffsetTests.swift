import Testing
@testable import Gateway
@testable import Shared

/// Connection state recovery's client-held position (`RecoveryOffset`), the signed session id
/// (`RecoveryPID`) and which published events move the position (`DeliveryMark`).
@Suite struct RecoveryOffsetTests {
    // MARK: Recording

    @Test func recordMovesOnlyForward() {
        var offset = RecoveryOffset(madeAtMilliseconds: 1_000)
        #expect(offset.record(conversation: 12, seq: 40) == true)
        #expect(offset.record(conversation: 12, seq: 40) == false)
        #expect(offset.record(conversation: 12, seq: 39) == false)
        #expect(offset.record(conversation: 12, seq: 1) == false)
        #expect(offset.record(conversation: 12, seq: 41) == true)
        #expect(offset.record(conversation: 13, seq: 1) == true)
        #expect(offset.seqs == [12: 41, 13: 1])
        // Nonsense is never recorded.
        #expect(offset.record(conversation: 0, seq: 5) == false)
        #expect(offset.record(conversation: -1, seq: 5) == false)
        #expect(offset.record(conversation: 14, seq: 0) == false)
        #expect(offset.record(conversation: 14, seq: -3) == false)
        #expect(offset.conversations == [12, 13])
    }

    @Test func versionsAreTrackedApartFromSeqs() {
        var offset = RecoveryOffset(madeAtMilliseconds: 1_000)
        #expect(offset.record(conversation: 12, version: 3) == true)
        #expect(offset.record(conversation: 12, version: 3) == false)
        #expect(offset.record(conversation: 12, version: 2) == false)
        #expect(offset.record(conversation: 12, version: 4) == true)
        #expect(offset.seqs.isEmpty)
        #expect(offset.versions == [12: 4])
        // A seq for the same conversation is independent of its version.
        #expect(offset.record(conversation: 12, seq: 1) == true)
        #expect(offset.seqs == [12: 1])
        #expect(offset.versions == [12: 4])
        #expect(offset.record(conversation: 12, version: 0) == false)
        #expect(offset.record(conversation: 0, version: 9) == false)
        #expect(offset.conversations == [12])
    }

    @Test func covers() {
        var offset = RecoveryOffset(madeAtMilliseconds: 1_000)
        #expect(!offset.covers(conversation: 12, seq: 1))
        #expect(!offset.covers(conversation: 12, version: 1))
        _ = offset.record(conversation: 12, seq: 40)
        _ = offset.record(conversation: 13, version: 2)
        #expect(offset.covers(conversation: 12, seq: 40))
        #expect(offset.covers(conversation: 12, seq: 1))
        #expect(!offset.covers(conversation: 12, seq: 41))
        #expect(!offset.covers(conversation: 12, version: 1))  // a seq says nothing of versions
        #expect(offset.covers(conversation: 13, version: 2))
        #expect(offset.covers(conversation: 13, version: 1))
        #expect(!offset.covers(conversation: 13, version: 3))
        #expect(!offset.covers(conversation: 13, seq: 1))
        #expect(!offset.covers(conversation: 99, seq: 1))
    }

    // MARK: Text

    @Test func encodedFormat() {
        var offset = RecoveryOffset(madeAtMilliseconds: 1_000)
        #expect(offset.encoded == "1000")
        _ = offset.record(conversation: 13, seq: 5)
        _ = offset.record(conversation: 12, seq: 40)
        _ = offset.record(conversation: 13, version: 2)
        #expect(offset.encoded == "1000.12:40.13:5:2")
        // A conversation with only changes has seq 0.
        _ = offset.record(conversation: 7, version: 3)
        #expect(offset.encoded == "1000.7:0:3.12:40.13:5:2")
        #expect(RecoveryOffset(madeAtMilliseconds: 1_733_400_000_000).encoded == "1733400000000")
    }

    @Test func parseRoundTrip() throws {
        var offset = RecoveryOffset(madeAtMilliseconds: 1_733_400_000_000)
        _ = offset.record(conversation: 12, seq: 40)
        _ = offset.record(conversation: 13, seq: 5)
        _ = offset.record(conversation: 13, version: 2)
        _ = offset.record(conversation: 7, version: 3)
        let parsed = try #require(RecoveryOffset(encoded: offset.encoded))
        #expect(parsed == offset)
        #expect(parsed.encoded == offset.encoded)

        let sample = try #require(RecoveryOffset(encoded: "1000.12:40.13:5:2"))
        #expect(sample.madeAtMilliseconds == 1_000)
        #expect(sample.seqs == [12: 40, 13: 5])
        #expect(sample.versions == [13: 2])
        #expect(!sample.overflowed)
        #expect(sample.covers(conversation: 12, seq: 40))

        // Any order and leading zeros are read; the encoding is canonical.
        let unordered = try #require(RecoveryOffset(encoded: "0001000.13:5:2.12:040"))
        #expect(unordered == sample)
        #expect(unordered.encoded == "1000.12:40.13:5:2")

        let bare = try #require(RecoveryOffset(encoded: "0"))
        #expect(bare == RecoveryOffset(madeAtMilliseconds: 0))
        let onlyChanges = try #require(RecoveryOffset(encoded: "5.7:0:3"))
        #expect(onlyChanges.seqs.isEmpty)
        #expect(onlyChanges.versions == [7: 3])
        #expect(onlyChanges.encoded == "5.7:0:3")
    }

    @Test func overflow() throws {
        var offset = RecoveryOffset(madeAtMilliseconds: 1_000)
        for conversation in 1...Int64(RecoveryOffset.maxConversations) {
            #expect(offset.record(conversation: conversation, seq: conversation) == true)
        }
        #expect(!offset.overflowed)
        #expect(!offset.encoded.hasSuffix(".!"))
        #expect(RecoveryOffset(encoded: offset.encoded) == offset)
        // Known conversations still move.
        #expect(offset.record(conversation: 1, seq: 2) == true)
        #expect(offset.record(conversation: 2, version: 1) == true)
        #expect(!offset.overflowed)
        // One more conversation does not fit.
        #expect(offset.record(conversation: 1_000, seq: 1) == true)
        #expect(offset.overflowed)
        #expect(offset.encoded == "1000.!")
        #expect(offset.encoded.hasSuffix(".!"))
        #expect(!offset.conversations.contains(1_000))
        // Once overflowed, new conversations are not tracked but are not "covered" either.
        #expect(offset.record(conversation: 1_001, version: 1) == true)
        #expect(!offset.covers(conversation: 1_001, version: 1))

        let parsed = try #require(RecoveryOffset(encoded: offset.encoded))
        #expect(parsed.overflowed)
        #expect(parsed.madeAtMilliseconds == 1_000)
        #expect(parsed.conversations.isEmpty)
        #expect(parsed.encoded == "1000.!")
    }

    @Test func overflowThroughVersions() {
        var offset = RecoveryOffset(madeAtMilliseconds: 1)
        for conversation in 1...Int64(RecoveryOffset.maxConversations) {
            _ = offset.record(conversation: conversation, version: 1)
        }
        #expect(!offset.overflowed)
        #expect(offset.record(conversation: 99, version: 1) == true)
        #expect(offset.overflowed)
        #expect(offset.encoded == "1.!")
    }

    @Test(arguments: [
        "", ".", "..", "a", "1a", "1.", ".1:1", "1..12:3", "1.12", "1.12:", "1.:3", "1.12:3:", "1.12:3:4:5",
        "-1", "+1", "1.-12:3", "1.+12:3", "1.12:-3", "1.12:+3", "1.12:3:-1", " 1", "1 ", "1.12:3 ", "1.12 :3",
        "1.12:40.12:41", "1.12:40.12:0:2", "1.0:5", "1.00:5", "1.12:0", "1.12:0:0", "1.12:3:0", "1.!.12:3", "1.12:3.!",
        "!", "1.!!", "1.!:1", "1:1", "1.12:3.", "1234567890123456789", "1.1234567890123456789:1", "1.1:1234567890123456789",
        "1.12:٣", "１.12:3",
    ])
    func parserRejects(text: String) {
        #expect(RecoveryOffset(encoded: text) == nil)
    }

    @Test func parserLimits() throws {
        // Eighteen digits are the most a number may have.
        let big = try #require(RecoveryOffset(encoded: "999999999999999999.999999999999999999:999999999999999999"))
        #expect(big.madeAtMilliseconds == 999_999_999_999_999_999)
        #expect(big.seqs == [999_999_999_999_999_999: 999_999_999_999_999_999])

        // At most maxConversations entries.
        let entries = (1...RecoveryOffset.maxConversations).map { ".\($0):1" }.joined()
        #expect(RecoveryOffset(encoded: "1" + entries)?.conversations.count == RecoveryOffset.maxConversations)
        #expect(RecoveryOffset(encoded: "1" + entries + ".999:1") == nil)

        // Longer than maxEncodedLength: refused even when otherwise well formed.
        let longEntries = (1...RecoveryOffset.maxConversations).map { index in
            let number = String(repeating: "9", count: 16) + (index < 10 ? "0" : "") + String(index)
            return ".\(number):\(number):\(number)"
        }
        let longText = "1" + longEntries.joined()
        #expect(longText.utf8.count > RecoveryOffset.maxEncodedLength)
        #expect(RecoveryOffset(encoded: longText) == nil)
        // The same entries, fewer of them, fit.
        let shorter = "1" + longEntries.prefix(20).joined()
        #expect(shorter.utf8.count <= RecoveryOffset.maxEncodedLength)
        #expect(RecoveryOffset(encoded: shorter)?.conversations.count == 20)
        // Length is counted before anything else: leading zeros past the limit are refused too.
        let padded = String(repeating: "0", count: RecoveryOffset.maxEncodedLength) + "1"
        #expect(RecoveryOffset(encoded: padded) == nil)
    }

    @Test func fuzzParser() {
        var random = FuzzRandom(state: 0x0FF5_E7)
        let alphabet = Array("0123456789.:!-+ ")
        var accepted = 0
        for iteration in 0..<30_000 {
            var text: String
            if iteration % 2 == 0 {
                text = String((0..<Int.random(in: 0...20, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
            } else {
                // Mostly well formed, then mutated, so the accepting paths are exercised too.
                text = String(Int.random(in: 0...99_999, using: &random))
                for _ in 0..<Int.random(in: 0...5, using: &random) {
                    text += ".\(Int.random(in: 0...9, using: &random)):\(Int.random(in: 0...50, using: &random))"
                    if Bool.random(using: &random) { text += ":\(Int.random(in: 0...9, using: &random))" }
                }
                var characters = Array(text)
                for _ in 0..<Int.random(in: 0...2, using: &random) where !characters.isEmpty {
                    let index = Int.random(in: 0..<characters.count, using: &random)
                    switch Int.random(in: 0..<3, using: &random) {
                    case 0: characters[index] = alphabet.randomElement(using: &random)!
                    case 1: characters.remove(at: index)
                    default: characters.insert(alphabet.randomElement(using: &random)!, at: index)
                    }
                }
                text = String(characters)
            }
            guard let parsed = RecoveryOffset(encoded: text) else { continue }
            accepted += 1
            let again = RecoveryOffset(encoded: parsed.encoded)
            #expect(again == parsed, "\(text) -> \(parsed.encoded)")
            #expect(again?.encoded == parsed.encoded)
            #expect(parsed.conversations.count <= RecoveryOffset.maxConversations)
            #expect(parsed.conversations.allSatisfy { $0 > 0 })
            #expect(parsed.seqs.values.allSatisfy { $0 > 0 } && parsed.versions.values.allSatisfy { $0 > 0 })
        }
        #expect(accepted > 1_000)
    }

    // MARK: RecoveryPID

    private static let secret = Array("0123456789abcdef0123456789abcdef-recovery".utf8)
    private static let signer = RecoveryPID.Signer(secret: secret)
    private static let pid = RecoveryPID(userID: 7, epochMilliseconds: 1_733_400_000_000, nonce: "Zq3-_x9")

    /// The mac as the signer computes it, so the tests can sign bodies the signer would not write.
    private static func mac(_ body: String, secret: [UInt8] = secret) -> String {
        let key = HMACSHA256.authenticationCode(key: secret, message: Array("socket.io recovery pid v1".utf8))
        return Base64URL.encode(HMACSHA256.authenticationCode(key: key, message: Array(body.utf8)).prefix(16))
    }

    @Test func signThenVerify() {
        let text = Self.signer.sign(Self.pid)
        #expect(text.hasPrefix("7.1733400000000.Zq3-_x9."))
        #expect(text.split(separator: ".", omittingEmptySubsequences: false).count == 4)
        #expect(text == "7.1733400000000.Zq3-_x9." + Self.mac("7.1733400000000.Zq3-_x9"))
        #expect(Self.signer.verify(text) == Self.pid)
        // Another signer with the same secret agrees.
        #expect(RecoveryPID.Signer(secret: Self.secret).verify(text) == Self.pid)
        let zero = RecoveryPID(userID: 1, epochMilliseconds: 0, nonce: "n")
        #expect(Self.signer.verify(Self.signer.sign(zero)) == zero)
    }

    @Test func differentSecretDoesNotVerify() {
        let text = Self.signer.sign(Self.pid)
        #expect(RecoveryPID.Signer(secret: Self.secret + [1]).verify(text) == nil)
        #expect(RecoveryPID.Signer(secret: Self.secret.dropLast() + [UInt8(ascii: "x")]).verify(text) == nil)
        #expect(RecoveryPID.Signer(secret: Array(Self.secret.dropLast())).verify(text) == nil)
        // Not a defect of the signer: HMAC pads keys shorter than its block with zero bytes, so a
        // secret and the same secret followed by NULs are one key (RFC 2104).
        #expect(RecoveryPID.Signer(secret: Self.secret + [0]).verify(text) == Self.pid)
        #expect(RecoveryPID.Signer(secret: Array("another secret".utf8)).verify(text) == nil)
        #expect(RecoveryPID.Signer(secret: []).verify(text) == nil)
        #expect(Self.signer.verify(RecoveryPID.Signer(secret: []).sign(Self.pid)) == nil)
    }

    @Test func everyAlteredCharacterFails() {
        let text = Array(Self.signer.sign(Self.pid))
        let replacements = Array("0179aAzZ-_.+ =/é")
        for index in text.indices {
            for replacement in replacements where replacement != text[index] {
                var altered = text
                altered[index] = replacement
                #expect(Self.signer.verify(String(altered)) == nil, "\(String(altered))")
            }
            var removed = text
            removed.remove(at: index)
            #expect(Self.signer.verify(String(removed)) == nil, "\(String(removed))")
            var inserted = text
            inserted.insert("0", at: index)
            #expect(Self.signer.verify(String(inserted)) == nil, "\(String(inserted))")
        }
        #expect(Self.signer.verify(String(text) + "A") == nil)
        #expect(Self.signer.verify(String(text) + ".") == nil)
    }

    @Test func fieldRules() {
        // Even correctly signed, the fields must make sense.
        for body in ["0.5.n", "-7.5.n", "7.-5.n", "7.5.", "x.5.n", "7.x.n", "7.5." + String(repeating: "n", count: 33)] {
            #expect(Self.signer.verify(body + "." + Self.mac(body)) == nil, "\(body)")
        }
        let longestNonce = "7.5." + String(repeating: "n", count: 32)
        #expect(Self.signer.verify(longestNonce + "." + Self.mac(longestNonce))?.nonce == String(repeating: "n", count: 32))
        // The signer signs a nonce it will not accept: verify refuses it.
        let longNonce = RecoveryPID(userID: 7, epochMilliseconds: 5, nonce: String(repeating: "n", count: 40))
        #expect(Self.signer.verify(Self.signer.sign(longNonce)) == nil)
    }

    @Test func tooLongTextIsRefused() {
        // A correctly signed text with a padded user id: within the limit it verifies, past it not.
        func signed(zeros: Int) -> String {
            let body = String(repeating: "0", count: zeros) + "7.5.nonce"
            return body + "." + Self.mac(body)
        }
        let fits = (0...200).map(signed).last { $0.utf8.count <= RecoveryPID.maxEncodedLength }!
        #expect(fits.utf8.count == RecoveryPID.maxEncodedLength)
        #expect(Self.signer.verify(fits) == RecoveryPID(userID: 7, epochMilliseconds: 5, nonce: "nonce"))
        let tooLong = (0...200).map(signed).first { $0.utf8.count > RecoveryPID.maxEncodedLength }!
        #expect(tooLong.utf8.count == RecoveryPID.maxEncodedLength + 1)
        #expect(Self.signer.verify(tooLong) == nil)
        #expect(Self.signer.verify(String(repeating: "7", count: 10_000)) == nil)
    }

    @Test func garbageDoesNotVerify() {
        var random = FuzzRandom(state: 0x91D)
        let alphabet = Array("0123456789.-_abcXYZ+/= é\u{0}")
        let base = Self.signer.sign(Self.pid)
        for iteration in 0..<5_000 {
            let text: String
            if iteration % 2 == 0 {
                text = String((0..<Int.random(in: 0...140, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
            } else {
                // The right shape with a made-up mac.
                let mac = String((0..<22).map { _ in Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_").randomElement(using: &random)! })
                text = "7.1733400000000.Zq3-_x9." + mac
            }
            guard text != base else { continue }
            #expect(Self.signer.verify(text) == nil, "\(text)")
        }
        #expect(Self.signer.verify("") == nil)
        #expect(Self.signer.verify("...") == nil)
    }

    // MARK: DeliveryMark

    @Test func messageEvents() {
        let data: JSONValue = ["conversationId": 12, "seq": 40, "text": "hi"]
        #expect(DeliveryMark.of(event: "messageSent", data: data) == .message(conversation: 12, seq: 40))
        #expect(DeliveryMark.of(event: "receiveMessage", data: data) == .message(conversation: 12, seq: 40))
        #expect(DeliveryMark.of(event: SocketEvent.messageSent.name, data: ["conversationId": .int(3), "seq": .int(1)])
            == .message(conversation: 3, seq: 1))
        // Integral doubles are integers to a JSON client.
        #expect(DeliveryMark.of(event: "receiveMessage", data: ["conversationId": 12.0, "seq": 4e1]) == .message(conversation: 12, seq: 40))
        // A message needs its seq, not a version.
        #expect(DeliveryMark.of(event: "messageSent", data: ["conversationId": 12]) == nil)
        #expect(DeliveryMark.of(event: "messageSent", data: ["conversationId": 12, "version": 3]) == nil)
        #expect(DeliveryMark.of(event: "messageSent", data: ["conversationId": 12, "seq": "40"]) == nil)
        #expect(DeliveryMark.of(event: "messageSent", data: ["conversationId": 12, "seq": 40.5]) == nil)
        #expect(DeliveryMark.of(event: "messageSent", data: ["seq": 40]) == nil)
        #expect(DeliveryMark.of(event: "messageSent", data: ["conversationId": "12", "seq": 40]) == nil)
        #expect(DeliveryMark.of(event: "messageSent", data: ["conversationId": .null, "seq": 40]) == nil)
    }

    @Test(arguments: ["messageEdited", "messageDeleted", "reactionAdded", "reactionRemoved"])
    func changeEvents(event: String) {
        #expect(DeliveryMark.of(event: event, data: ["conversationId": 12, "version": 3]) == .change(conversation: 12, version: 3))
        #expect(DeliveryMark.of(event: event, data: ["messageId": 5, "conversationId": 12, "version": 3, "seq": 9])
            == .change(conversation: 12, version: 3))
        #expect(DeliveryMark.of(event: event, data: ["conversationId": 12, "seq": 9]) == nil)
        #expect(DeliveryMark.of(event: event, data: ["version": 3]) == nil)
        #expect(DeliveryMark.of(event: event, data: ["conversationId": 12, "version": true]) == nil)
    }

    @Test func otherEventsAndShapes() {
        let full: JSONValue = ["conversationId": 12, "seq": 40, "version": 3]
        for event in ["typing", "userOnline", "recoveryOffset", "sync", "MessageSent", "messagesent", "", "messageSent "] {
            #expect(DeliveryMark.of(event: event, data: full) == nil, "\(event)")
        }
        for data: JSONValue in [.null, [12, 40], "conversationId", 12, true, [:]] {
            #expect(DeliveryMark.of(event: "messageSent", data: data) == nil)
            #expect(DeliveryMark.of(event: "messageEdited", data: data) == nil)
        }
        // The fields must be at the top level.
        #expect(DeliveryMark.of(event: "messageSent", data: ["message": ["conversationId": 12, "seq": 40]]) == nil)
    }
}
