// libFuzzer target for access-token verification and what is computed from an accepted token's
// times. The first byte (mod 4) picks a mode, 0 raw, 1-2 signed, 3 typed:
// - raw: the rest is the token (lossily decoded; and split into three base64url-encoded parts), verified
//   at extreme clock values with several signers; it must never crash, and a forged token is never accepted;
// - signed: header and claims JSON forged from the input (extreme and odd numbers, odd types, extra
//   members, raw bytes) with a VALID signature, so the claim handling behind the signature is fuzzed;
// - typed: `JWTSigner.sign` of fuzzed `JWTClaims`; `verify` returns exactly those claims or the one
//   refusal predicted from them.
// Accepted tokens are turned into a `Principal` and its saturating helpers are run at extreme clock
// and leeway values. Invariants are checked with `invariant` (FuzzInput.swift: a precondition whose
// message survives -O), so a violation is a crash libFuzzer reports with its reason.
// Built by fuzz/run-jwt-fuzz.sh (Shared as its own module, with OpenSSL) with -sanitize=fuzzer,address.
import Shared

private let plainSigner = JWTSigner(secret: fuzzSecret, issuer: nil, audience: nil)
private let strictSigner = JWTSigner(secret: fuzzSecret, issuer: fuzzIssuer, audience: fuzzAudience, leewaySeconds: 0)
private let otherKeySigner = JWTSigner(secret: Array("another-secret-of-32-bytes-12345".utf8), issuer: nil, audience: nil)
private let extremeNows: [Int64] = [.min, .max, 0, normalNow]
private let extremeLeeways: [Int64] = [.min, -1, 0, 5, 300, 253_402_300_799, .max - 1, .max]

extension FuzzInput {
    mutating func signer() -> JWTSigner {
        switch below(6) {
        case 2: return strictSigner
        case 3: return JWTSigner(secret: fuzzSecret, issuer: fuzzIssuer, audience: nil, leewaySeconds: pick(extremeLeeways))
        case 4: return JWTSigner(secret: fuzzSecret, issuer: nil, audience: fuzzAudience, leewaySeconds: int64())
        case 5: return JWTSigner(secret: fuzzSecret, issuer: nil, audience: nil, leewaySeconds: pick(extremeLeeways))
        default: return plainSigner
        }
    }
}

private func outcome(_ signer: JWTSigner, _ token: String, now: Int64) -> Result<JWTClaims, JWTError> {
    Result { () throws(JWTError) in try signer.verify(token, now: now) }
}

/// The payload object of a token `verify` accepted (so it is well-formed).
private func payload(of token: String) -> JSONObject {
    let segments = Array(token.utf8).split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
    guard segments.count == 3, let json = Base64URL.decode(bytes: segments[1]),
          case .object(let object)? = try? JSONParser.parse(json, maxDepth: 8) else {
        fatalError("accepted token has no readable payload: \(token.debugDescription)")
    }
    return object
}

/// `value` exactly, when it fits in Int64.
private func exact(_ value: Int128) -> Int64? { Int64(exactly: value) }

/// Everything that must hold for a token `signer` accepted at `now`.
private func checkAccepted(_ claims: JWTClaims, token: String, signer: JWTSigner, now: Int64, input: inout FuzzInput) {
    let range = JWTSigner.timestampRange
    invariant(range.contains(claims.issuedAt), "accepted iat \(claims.issuedAt) outside \(range)")
    invariant(range.contains(claims.expiresAt), "accepted exp \(claims.expiresAt) outside \(range)")
    let object = payload(of: token)
    if let nbf = object["nbf"], !nbf.isNull {
        guard let seconds = nbf.int64Value else { fatalError("accepted nbf \(nbf) is not an integer") }
        invariant(range.contains(seconds), "accepted nbf \(seconds) outside \(range)")
        invariant(seconds <= now.addingSaturated(signer.leewaySeconds), "accepted nbf \(seconds) in the future at \(now)")
    }
    // The claims are the payload's.
    invariant(object["sub"]?.stringValue == claims.subject && object["jti"]?.stringValue == claims.id, "sub/jti differ")
    invariant(object["iat"]?.int64Value == claims.issuedAt && object["exp"]?.int64Value == claims.expiresAt, "iat/exp differ")
    // The time checks held.
    invariant(claims.expiresAt > now.subtractingSaturated(signer.leewaySeconds), "accepted an expired token at \(now)")
    invariant(claims.issuedAt <= now.addingSaturated(signer.leewaySeconds), "accepted a token issued in the future at \(now)")
    if let issuer = signer.issuer { invariant(object["iss"] == .string(issuer), "accepted a foreign issuer") }
    if let audience = signer.audience { invariant(claims.audience == audience, "accepted a foreign audience") }

    let principal: Principal
    do {
        principal = try Principal(verified: claims)
    } catch {
        invariant(error.code == .tokenMalformed, "unexpected principal error \(error.code)")
        invariant(Int64(claims.subject).map { $0 <= 0 } ?? true, "subject \(claims.subject.debugDescription) refused")
        return
    }
    invariant(principal.userID > 0 && principal.userID == Int64(claims.subject), "bad user id for \(claims.subject.debugDescription)")
    invariant(principal.expiresAt == claims.expiresAt && principal.tokenID == claims.id && principal.sessionID == claims.sessionID)
    checkPrincipal(principal, input: &input)
}

/// The saturating helpers of `Principal` at extreme and fuzzed clock and leeway values.
private func checkPrincipal(_ principal: Principal, input: inout FuzzInput) {
    let range = JWTSigner.timestampRange
    invariant(principal.expiresAtMilliseconds == principal.expiresAt * 1000, "expiresAtMilliseconds is not exact")
    let expiryMilliseconds = principal.expiresAt * 1000
    let nowsMilliseconds: [Int64] = [.min, .max, 0, -1, normalNow * 1000, expiryMilliseconds, expiryMilliseconds - 1,
                                     expiryMilliseconds + 5000, input.int64(), input.int64(near: expiryMilliseconds)]
    let leeways: [Int64] = extremeLeeways + [input.int64()]
    for nowMilliseconds in nowsMilliseconds {
        for leeway in leeways {
            let remaining = principal.millisecondsUntilExpiry(nowMilliseconds: nowMilliseconds, leewaySeconds: leeway)
            invariant(remaining >= 0, "millisecondsUntilExpiry \(remaining) < 0 (now \(nowMilliseconds) ms, leeway \(leeway))")
            // Where no step saturates, the result is exact.
            if let deadline = exact((Int128(principal.expiresAt) + Int128(leeway)) * 1000),
               let difference = exact(Int128(deadline) - Int128(nowMilliseconds)) {
                invariant(remaining == max(0, difference), "millisecondsUntilExpiry \(remaining) != \(max(0, difference))")
            }

            let now = nowMilliseconds / 1000
            for maximum in [range.upperBound, 86_400, 1, 0, -5, Int64.max] {
                let ttl = principal.revocationTTLSeconds(now: now, leewaySeconds: leeway, maximum: maximum)
                invariant((1...max(1, maximum)).contains(ttl), "revocationTTLSeconds \(ttl) outside 1...\(maximum)")
                if maximum >= 1, exact(Int128(principal.expiresAt) + Int128(leeway)) != nil,
                   let remaining = exact(Int128(principal.expiresAt) + Int128(leeway) - Int128(now)) {
                    invariant(ttl == min(max(1, remaining), maximum), "revocationTTLSeconds \(ttl) is not the clamped remainder")
                }
            }
        }
    }
    let other = input.text(maximum: 8)
    invariant(principal.isRevoked(by: TokenRevocation(tokenID: principal.tokenID)), "own jti does not revoke")
    if let sessionID = principal.sessionID {
        invariant(principal.isRevoked(by: TokenRevocation(sessionID: sessionID)), "own sid does not revoke")
    }
    invariant(!principal.isRevoked(by: TokenRevocation()), "an empty revocation revokes")
    let revoked = principal.isRevoked(by: TokenRevocation(tokenID: other, sessionID: other))
    invariant(revoked == (other == principal.tokenID || other == principal.sessionID), "isRevoked disagrees for \(other.debugDescription)")
}

/// A token that differs from `token` in one place; `verify` must refuse it (one accepted spelling).
private func checkTampered(_ token: String, signer: JWTSigner, now: Int64, input: inout FuzzInput) {
    var bytes = Array(token.utf8)
    guard !bytes.isEmpty else { return }
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ".utf8)
    switch input.below(4) {
    case 0:
        bytes.removeSubrange(bytes.index(bytes.endIndex, offsetBy: -(1 + input.below(min(bytes.count, 8))))...)
    case 1:
        bytes.insert(input.pick(alphabet), at: input.below(bytes.count + 1))
    default:
        let index = (Int(input.byte()) << 8 | Int(input.byte())) % bytes.count
        let replacement = input.pick(alphabet)
        guard replacement != bytes[index] else { return }
        bytes[index] = replacement
    }
    let tampered = String(decoding: bytes, as: UTF8.self)
    guard tampered != token else { return }
    if case .success = outcome(signer, tampered, now: now) {
        fatalError("tampered token accepted: \(tampered.debugDescription) (from \(token.debugDescription))")
    }
}

private func rawMode(_ input: inout FuzzInput) {
    let rest = input.rest()
    let text = String(decoding: rest, as: UTF8.self)
    // The same bytes as three base64url parts, so header and payload decode to arbitrary bytes.
    let third = rest.count / 3
    let parts = [rest[..<third], rest[third..<(2 * third)], rest[(2 * third)...]]
    let encoded = parts.map { Base64URL.encode($0) }.joined(separator: ".")
    let withValidSignature = TokenForge.token(headerJSON: parts[0], payloadJSON: parts[1])
    // Seeds hold real tokens signed with `fuzzSecret`; nothing the fuzzer writes verifies under another key.
    var noChoices = FuzzInput(UnsafeBufferPointer(start: nil, count: 0))
    for now in extremeNows {
        // The last token: header and payload are the input's bytes, with our signature, so the
        // parsers behind the signature see them.
        for token in [text, encoded, withValidSignature] {
            for signer in [plainSigner, strictSigner] {
                switch outcome(signer, token, now: now) {
                case .success(let claims): checkAccepted(claims, token: token, signer: signer, now: now, input: &noChoices)
                case .failure(let error): _ = error.message
                }
            }
            if case .success = outcome(otherKeySigner, token, now: now) {
                fatalError("a token not signed with the verifier's key was accepted: \(token.debugDescription)")
            }
        }
    }
}

private func signedMode(_ input: inout FuzzInput) {
    let now: Int64 = input.below(4) == 3 ? input.pick(extremeInt64s) : input.int64(near: normalNow)
    let anchor = JWTSigner.timestampRange.contains(now) || input.bool() ? now : normalNow
    let header = input.headerJSON()
    let subject = input.pick(["42", "1"]) { String($0.int64(near: 42)) }
    let claims = input.claimsJSON(now: anchor, subject: subject)
    let token = input.below(8) == 7 ? TokenForge.token(headerJSON: header, payloadJSON: claims)
                                    : TokenForge.token(payloadJSON: claims)
    let signer = input.signer()
    for at in [now] + extremeNows {
        switch outcome(signer, token, now: at) {
        case .success(let verified): checkAccepted(verified, token: token, signer: signer, now: at, input: &input)
        case .failure(let error): _ = error.message
        }
    }
    if case .success = outcome(otherKeySigner, token, now: now) { fatalError("accepted with another key") }
    checkTampered(token, signer: signer, now: now, input: &input)
}

/// `JWTSigner.sign` then `verify`: the claims come back unchanged, or the refusal they call for.
private func typedMode(_ input: inout FuzzInput) {
    let now: Int64 = input.below(4) == 3 ? input.pick(extremeInt64s) : input.int64(near: normalNow)
    let claims = input.claims(now: JWTSigner.timestampRange.contains(now) ? now : normalNow)
    let signer = input.signer()
    let token = signer.sign(claims)
    let leeway = signer.leewaySeconds
    let range = JWTSigner.timestampRange
    let expected: String? =
        if token.utf8.count > JWTSigner.maximumTokenLength || !range.contains(claims.issuedAt) || !range.contains(claims.expiresAt) {
            "token_malformed"
        } else if let issuer = signer.issuer, claims.issuer != issuer {
            "token_issuer"
        } else if let audience = signer.audience, claims.audience != audience {
            "token_audience"
        } else if claims.expiresAt <= now.subtractingSaturated(leeway) {
            "token_expired"
        } else if claims.issuedAt > now.addingSaturated(leeway) {
            "token_not_yet_valid"
        } else {
            nil
        }
    switch outcome(signer, token, now: now) {
    case .success(let verified):
        invariant(expected == nil, "sign/verify accepted claims that should give \(expected ?? ""): \(claims)")
        invariant(verified == claims, "sign/verify changed the claims: \(claims) -> \(verified)")
        checkAccepted(verified, token: token, signer: signer, now: now, input: &input)
    case .failure(let error):
        invariant(ErrorCode.token(error).name == expected, "sign/verify refused with \(ErrorCode.token(error)), expected \(expected ?? "success"): \(claims) at \(now)")
    }
    checkTampered(token, signer: signer, now: now, input: &input)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJWT(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    var input = FuzzInput(UnsafeBufferPointer(start: data?.assumingMemoryBound(to: UInt8.self), count: data == nil ? 0 : size))
    switch input.byte() % 4 {
    case 0: rawMode(&input)
    case 1, 2: signedMode(&input)
    default: typedMode(&input)
    }
    return 0
}
