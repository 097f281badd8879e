// Shared by the jwt and session harnesses: a reader that turns fuzzer bytes into choices, and the
// forging of validly signed tokens whose claims (numbers, types, extra members, raw JSON) come from
// those bytes. The signature is always right, so what is fuzzed is the claim handling behind it.
import Shared

/// Fuzzer bytes read front to back as choices; reads past the end give zeros, so every input is a
/// complete program.
struct FuzzInput {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = Array(bytes)
    }

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { position >= bytes.count }

    mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func bool() -> Bool { byte() & 1 == 1 }

    /// A value below `bound` (bound >= 1).
    mutating func below(_ bound: Int) -> Int { Int(byte()) % max(1, bound) }

    mutating func pick<T>(_ choices: [T]) -> T { choices[below(choices.count)] }

    /// One of `choices`, or what `make` reads from the input: the choice is read first, and `make`
    /// only runs (and consumes bytes) when it is the one chosen.
    mutating func pick<T>(_ choices: [T], or make: (inout FuzzInput) -> T) -> T {
        let index = below(choices.count + 1)
        return index < choices.count ? choices[index] : make(&self)
    }

    mutating func uint64() -> UInt64 {
        var value: UInt64 = 0
        for _ in 0..<8 { value = value << 8 | UInt64(byte()) }
        return value
    }

    mutating func int64() -> Int64 { Int64(bitPattern: uint64()) }

    /// Up to `maximum` raw bytes, the count taken from the input.
    mutating func data(maximum: Int) -> [UInt8] {
        let count = min(Int(byte()) | (maximum > 255 ? Int(byte() & 0x0F) << 8 : 0), maximum)
        var result: [UInt8] = []
        result.reserveCapacity(count)
        for _ in 0..<count where !isAtEnd { result.append(byte()) }
        return result
    }

    /// Up to `maximum` bytes decoded lossily as UTF-8.
    mutating func text(maximum: Int) -> String {
        String(decoding: data(maximum: maximum), as: UTF8.self)
    }

    /// A length-prefixed part of the input as its own reader (one byte of length, or two when the
    /// first has its high bit set), so a program's steps do not shift when one step's bytes change.
    mutating func chunk() -> FuzzInput {
        var count = Int(byte())
        if count & 0x80 != 0 { count = (count & 0x7F) << 8 | Int(byte()) }
        let end = min(bytes.count, position + count)
        defer { position = end }
        return FuzzInput(Array(bytes[min(position, end)..<end]))
    }

    /// Everything not read yet.
    mutating func rest() -> [UInt8] {
        guard position < bytes.count else { return [] }
        defer { position = bytes.count }
        return Array(bytes[position...])
    }
}

/// Numbers worth trying wherever the code takes an `Int64` from outside: the type's edges, the
/// edges of `JWTSigner.timestampRange`, values that overflow once multiplied by 1000, 2^53.
let extremeInt64s: [Int64] = [
    .min, .min + 1, -1_000_000_000_000, -1, 0, 1, 5, 1_700_000_000, 1_700_000_000_000,
    JWTSigner.timestampRange.upperBound, JWTSigner.timestampRange.upperBound + 1,
    JWTSigner.timestampRange.upperBound * 1000, 9_223_372_036_854_771, 9_223_372_036_854_776,
    Int64.max / 1000, Int64.max / 1000 + 1, Int64.min / 1000, Int64.min / 1000 - 1,
    1 << 53, (1 << 53) + 1, -(1 << 53), .max - 1, .max,
]

extension FuzzInput {
    /// An extreme value, an arbitrary one, or one near `anchor` (so times land inside a token's
    /// validity window often enough to reach the code behind it).
    mutating func int64(near anchor: Int64) -> Int64 {
        switch below(8) {
        case 6: return pick(extremeInt64s)
        case 7: return int64()
        default: return anchor.addingSaturated(Int64(Int16(bitPattern: UInt16(byte()) << 8 | UInt16(byte()))))
        }
    }
}

/// The secret both harnesses sign and verify with (32 bytes, the minimum for HS256).
let fuzzSecret: [UInt8] = Array("fuzz-secret-for-hs256-0123456789".utf8)
let fuzzIssuer = "swift-chat"
let fuzzAudience = "swift-chat-clients"
/// A wall-clock time in 2023, seconds.
let normalNow: Int64 = 1_700_000_000

/// Choice 0 (what an all-zero input picks) is always the ordinary case, so a short input already
/// makes a token that verifies and the fuzzer starts from the accepted path.

/// Makes tokens signed with `fuzzSecret` whose header and payload text are exactly what the caller says.
enum TokenForge {
    /// `{"alg":"HS256","typ":"JWT"}` in base64url.
    static let standardHeader = Base64URL.encode(#"{"alg":"HS256","typ":"JWT"}"#.utf8)

    /// `header.payload.signature` with a valid HS256 signature over the first two parts.
    static func token(headerJSON: some Collection<UInt8>, payloadJSON: some Collection<UInt8>) -> String {
        let signingInput = Base64URL.encode(headerJSON) + "." + Base64URL.encode(payloadJSON)
        return signingInput + "." + Base64URL.encode(HMACSHA256.authenticationCode(key: fuzzSecret, message: signingInput.utf8))
    }

    static func token(payloadJSON: some Collection<UInt8>) -> String {
        let signingInput = standardHeader + "." + Base64URL.encode(payloadJSON)
        return signingInput + "." + Base64URL.encode(HMACSHA256.authenticationCode(key: fuzzSecret, message: signingInput.utf8))
    }
}

/// JSON text for a number claim: integers from the input or extreme, and the spellings a JSON
/// number can take (exponents, fractions, negative zero, past Int64), or a value of another type.
extension FuzzInput {
    mutating func numberText(near anchor: Int64) -> String {
        switch below(12) {
        case 0...4:
            return String(int64(near: anchor))
        case 5:
            return pick(["1e300", "-1e300", "-0.0", "-0", "0.0", "1.5", "-1.5", "1e3", "1E+2", "1e-300", "2.5e-1",
                         "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
                         "18446744073709551616", "9223372036854775807.0", "9.223372036854775807e18", "253402300799.0",
                         "2.53402300799e11", "253402300800", "9007199254740993", "9007199254740992.0", "4.5e15",
                         "1700000000.000", "17e8", "1.7e9", "1e19", "-1e19", "100000000000000000000000000000"])
        case 6:
            // Anchor-relative, written as a double with a fraction of zero.
            return String(int64(near: anchor)) + ".0"
        case 7:
            return String(int64(near: anchor)) + "e0"
        case 8:
            return pick(["null", "true", "false", "\"1700000000\"", "[]", "{}", "[1700000000]", "\"\"", "{\"$date\":1}"])
        case 9:
            // Digits (and signs, dots, exponents) from the input, possibly not a number at all.
            let alphabet = Array("0123456789-+.eE".utf8)
            let count = 1 + below(40)
            return String(decoding: (0..<count).map { _ in alphabet[below(alphabet.count)] }, as: UTF8.self)
        default:
            return String(Double(int64(near: anchor)) * pick([1.0, 1000.0, 0.001, -1.0]))
        }
    }

    /// JSON text for a string claim (`sub`, `jti`, `sid`, `iss`, `aud`, `typ`).
    mutating func stringClaimText(typical: String) -> String {
        switch below(10) {
        case 0...3: return JSONValue.string(typical).jsonString
        case 4: return JSONValue.string(text(maximum: 64)).jsonString
        case 5: return JSONValue.string(String(int64(near: 1))).jsonString
        case 6: return pick(["null", "1", "-1", "true", "[]", "{}", "\"\"", "\"0\"", "\"-5\"", "\"007\"", "\" 1\"", "\"1 \"",
                             "\"+1\"", "\"9223372036854775807\"", "\"9223372036854775808\"", "\"１\"", "\"\\u0000\"",
                             "[\"swift-chat-clients\"]", "[\"other\",\"swift-chat-clients\"]", "[1]", "[]", "1e3"])
        case 7: return numberText(near: 1)
        case 8: return JSONValue.string(typical + text(maximum: 8)).jsonString
        default: return JSONValue.string(String(repeating: "a", count: below(256) * 16)).jsonString
        }
    }

    /// A claims object as JSON text: usually the members an access token has, each of them
    /// sometimes missing, repeated, of another type or extreme; sometimes extra members, or raw
    /// input bytes spliced in (the parser then decides whether it is JSON at all).
    mutating func claimsJSON(now: Int64, subject: String = "42") -> [UInt8] {
        if below(16) == 15 { return data(maximum: 512) }
        var members: [String] = []
        let issued = now.addingSaturated(Int64(below(7)) - 3)
        let claimNames = ["sub", "iat", "exp", "nbf", "jti", "sid", "iss", "aud", "typ"]
        for name in claimNames {
            let roll = below(8)
            // nbf, iss, aud and typ are optional; the others are left out only sometimes.
            if roll == 7 || (roll >= 5 && ["nbf", "iss", "aud", "typ"].contains(name)) { continue }
            let value: String
            switch name {
            case "sub": value = stringClaimText(typical: subject)
            case "iat": value = numberText(near: issued)
            case "exp": value = numberText(near: issued.addingSaturated(3600))
            case "nbf": value = numberText(near: issued)
            case "jti": value = stringClaimText(typical: "jti-" + String(below(8)))
            case "sid": value = stringClaimText(typical: "sid-" + String(below(4)))
            case "iss": value = stringClaimText(typical: fuzzIssuer)
            case "aud": value = stringClaimText(typical: fuzzAudience)
            default: value = stringClaimText(typical: pick(["access", "refresh"]))
            }
            members.append(JSONValue.string(name).jsonString + ":" + value)
            if below(16) == 15 { members.append(JSONValue.string(name).jsonString + ":" + numberText(near: issued)) }
        }
        if below(4) == 3 {
            members.append(JSONValue.string(text(maximum: 16)).jsonString + ":" + pick(["null", "1", "{\"a\":[1,{}]}", "\"x\"", "[[[[[[[[]]]]]]]]"]))
        }
        if below(8) == 7 {
            // Raw bytes at a random member boundary.
            let raw = String(decoding: data(maximum: 128), as: UTF8.self)
            members.insert(raw, at: below(members.count + 1))
        }
        var shuffled = members
        if below(4) == 3, shuffled.count > 1 { shuffled.swapAt(0, below(shuffled.count)) }
        return Array(("{" + shuffled.joined(separator: ",") + "}").utf8)
    }

    /// Header JSON: usually the standard one, sometimes with extra members or another algorithm.
    mutating func headerJSON() -> [UInt8] {
        switch below(16) {
        case 13: return Array(pick([#"{"alg":"none","typ":"JWT"}"#, #"{"alg":"HS512"}"#, #"{"typ":"JWT"}"#, #"{"alg":null}"#,
                                   #"{"alg":"HS256","crit":["exp"]}"#, #"{"alg":"hs256"}"#, #"{"alg":["HS256"]}"#,
                                   #"{"alg":"HS256","alg":"none"}"#, #"{"alg":"none","alg":"HS256"}"#, "[]", "null",
                                   #"{"alg":"HS256","kid":"../../etc/passwd","jku":"http://x"}"#]).utf8)
        case 14: return data(maximum: 64)
        case 15: return Array((#"{"alg":"HS256","x":"# + JSONValue.string(text(maximum: 32)).jsonString + "}").utf8)
        default: return Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)
        }
    }

    /// A typed claim set for `JWTSigner.sign`, with fuzzed strings and times.
    mutating func claims(now: Int64) -> JWTClaims {
        let issued = int64(near: now)
        return JWTClaims(
            subject: pick(["42", "1", "0", "-1"]) { $0.bool() ? $0.text(maximum: 24) : String($0.int64(near: 7)) },
            issuedAt: issued,
            expiresAt: int64(near: issued.addingSaturated(3600)),
            id: text(maximum: 40),
            issuer: pick([nil, fuzzIssuer]) { $0.text(maximum: 12) },
            audience: pick([nil, fuzzAudience]) { $0.text(maximum: 12) },
            tokenType: pick([nil, "access", "refresh"]) { $0.text(maximum: 8) },
            sessionID: pick([nil, "sid-1"]) { $0.text(maximum: 16) }
        )
    }
}

/// `precondition` whose message survives `-O` (where `precondition` traps silently): a violated
/// invariant is a crash libFuzzer reports, with the reason in its log.
func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "",
               file: StaticString = #fileID, line: UInt = #line) {
    guard condition() else { fatalError("invariant violated: \(message())", file: file, line: line) }
}
