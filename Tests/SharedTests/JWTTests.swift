import Testing

@testable import Shared

@Suite struct JWTTests {
    private static let secret = Array("0123456789abcdef0123456789abcdef".utf8)
    private static let now: Int64 = 1_705_314_600
    private let signer = JWTSigner(secret: secret, issuer: "swiftchat", audience: "swiftchat-api")
    private let claims = JWTClaims(
        subject: "42", issuedAt: now, expiresAt: now + 900, id: "token-id-1", issuer: "swiftchat",
        audience: "swiftchat-api", tokenType: "access", sessionID: "s1")

    /// Builds a token from raw header and payload JSON, signed with `key` (the signer's secret by
    /// default) unless a signature is given.
    private func forge(
        header: String = #"{"alg":"HS256","typ":"JWT"}"#,
        payload: String,
        key: [UInt8] = JWTTests.secret,
        signature: String? = nil
    ) -> String {
        let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        return input + "." + (signature ?? Base64URL.encode(HMACSHA256.authenticationCode(key: key, message: input.utf8)))
    }

    private func payload(_ extra: String = "", iat: Int64 = now, exp: Int64 = now + 900) -> String {
        #"{"iss":"swiftchat","sub":"42","aud":"swiftchat-api","iat":\#(iat),"exp":\#(exp),"jti":"j1""#
            + extra + "}"
    }

    private func failure(_ token: String, at time: Int64 = now, signer: JWTSigner? = nil) -> JWTError? {
        do {
            _ = try (signer ?? self.signer).verify(token, now: time)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Round trip

    @Test func signThenVerify() throws {
        let token = signer.sign(claims)
        #expect(token.split(separator: ".").count == 3)
        let headerJSON = try #require(Base64URL.decode(token.split(separator: ".")[0]))
        #expect(String(decoding: headerJSON, as: UTF8.self) == #"{"alg":"HS256","typ":"JWT","kid":"\#(signer.keyID)"}"#)
        #expect(try signer.verify(token, now: Self.now) == claims)
        let payloadJSON = try #require(Base64URL.decode(token.split(separator: ".")[1]))
        #expect(
            String(decoding: payloadJSON, as: UTF8.self)
                == #"{"iss":"swiftchat","sub":"42","aud":"swiftchat-api","iat":1705314600,"exp":1705315500,"jti":"token-id-1","typ":"access","sid":"s1"}"#
        )
    }

    @Test func minimalClaimsWithoutIssuerOrAudience() throws {
        let plain = JWTSigner(secret: Self.secret, issuer: nil, audience: nil)
        let minimal = JWTClaims(subject: "7", issuedAt: Self.now, expiresAt: Self.now + 60, id: "x")
        #expect(try plain.verify(plain.sign(minimal), now: Self.now) == minimal)
        // A signer that requires an issuer refuses it.
        #expect(failure(plain.sign(minimal)) == .wrongIssuer)
    }

    @Test func makeClaimsUsesConfigurationAndRandomIds() throws {
        let first = signer.makeClaims(
            subject: "9", issuedAt: Self.now, lifetimeSeconds: 60, tokenType: "refresh", sessionID: "family")
        let second = signer.makeClaims(subject: "9", issuedAt: Self.now, lifetimeSeconds: 60)
        #expect(first.issuer == "swiftchat")
        #expect(first.audience == "swiftchat-api")
        #expect(first.expiresAt == Self.now + 60)
        #expect(first.sessionID == "family")
        #expect(second.sessionID == nil)
        #expect(first.id != second.id)
        #expect(first.id.utf8.count == 22)
        #expect(try signer.verify(signer.sign(first), now: Self.now) == first)
    }

    @Test func jwtIoExampleSignatureVerifies() {
        // The well-known jwt.io example (secret "your-256-bit-secret"): the signature is right, so the
        // refusal is about the missing claims, not the signature.
        let token =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        let example = JWTSigner(secret: Array("your-256-bit-secret".utf8), issuer: nil, audience: nil)
        #expect(failure(token, signer: example) == .malformed("claim 'exp' is missing"))
        #expect(failure(token, signer: signer) == .badSignature)
    }

    // MARK: Tampering

    @Test func tamperedPayloadIsRejected() {
        let token = signer.sign(claims)
        let parts = token.split(separator: ".").map(String.init)
        var forgedClaims = claims
        forgedClaims.subject = "1"
        let forgedPayload = signer.sign(forgedClaims).split(separator: ".")[1]
        #expect(failure(parts[0] + "." + forgedPayload + "." + parts[2]) == .badSignature)
    }

    @Test func tamperedSignatureIsRejected() {
        let token = signer.sign(claims)
        var parts = token.split(separator: ".").map(String.init)
        let first = parts[2].first == "A" ? "B" : "A"
        parts[2] = first + parts[2].dropFirst()
        #expect(failure(parts.joined(separator: ".")) == .badSignature)
        // Truncated (to an impossible base64url length) and empty signatures.
        #expect(failure(String(token.dropLast(2))) == .malformed("signature is not valid base64url"))
        #expect(failure(parts[0] + "." + parts[1] + ".") == .badSignature)
    }

    @Test func otherSecretIsRejected() {
        let other = JWTSigner(secret: Array("another secret that is long enough!".utf8), issuer: "swiftchat", audience: "swiftchat-api")
        #expect(failure(other.sign(claims)) == .badSignature)
    }

    // MARK: Algorithm pinning

    @Test func algNoneIsRejected() {
        let token = forge(header: #"{"alg":"none","typ":"JWT"}"#, payload: payload(), signature: "")
        #expect(failure(token) == .unsupportedAlgorithm("none"))
        #expect(failure(token).map(ErrorCode.token)?.name == "token_algorithm")
        #expect(failure(forge(header: #"{"alg":"None"}"#, payload: payload(), signature: "")) == .unsupportedAlgorithm("None"))
    }

    @Test func otherAlgorithmsAreRejected() {
        // Signed with our secret in HS256 but labelled otherwise: still refused (no algorithm switching).
        #expect(failure(forge(header: #"{"alg":"HS512","typ":"JWT"}"#, payload: payload())) == .unsupportedAlgorithm("HS512"))
        #expect(failure(forge(header: #"{"alg":"RS256","typ":"JWT"}"#, payload: payload())) == .unsupportedAlgorithm("RS256"))
        #expect(failure(forge(header: #"{"alg":"hs256"}"#, payload: payload())) == .unsupportedAlgorithm("hs256"))
        #expect(failure(forge(header: #"{"typ":"JWT"}"#, payload: payload())) == .unsupportedAlgorithm(""))
        #expect(failure(forge(header: #"{"alg":null}"#, payload: payload())) == .unsupportedAlgorithm(""))
        #expect(failure(forge(header: #"{"alg":["HS256"]}"#, payload: payload())) == .unsupportedAlgorithm(""))
        #expect(JWTError.unsupportedAlgorithm("").message == "token header does not name an algorithm; only HS256 is accepted")
        #expect(JWTError.unsupportedAlgorithm("RS256").message == "token algorithm 'RS256' is not accepted; only HS256 is")
    }

    @Test func headerVariationsWithHS256AreAccepted() throws {
        #expect(try signer.verify(forge(header: #"{"alg":"HS256"}"#, payload: payload()), now: Self.now).subject == "42")
        // Members in any order; a `kid` must name one of the signer's keys (see the rotation tests).
        #expect(try signer.verify(forge(header: #"{"typ":"JWT","kid":"\#(signer.keyID)","alg":"HS256"}"#, payload: payload()), now: Self.now).id == "j1")
    }

    @Test func criticalHeaderIsRejected() {
        let token = forge(header: #"{"alg":"HS256","crit":["exp"]}"#, payload: payload())
        #expect(failure(token) == .malformed("critical header parameters are not supported"))
    }

    // MARK: Time

    @Test func expiryWithLeeway() throws {
        let token = signer.sign(claims)
        let exp = claims.expiresAt
        #expect(try signer.verify(token, now: exp - 1).subject == "42")
        #expect(try signer.verify(token, now: exp + 4).subject == "42")
        #expect(failure(token, at: exp + 5) == .expired)
        #expect(failure(token, at: exp + 1000) == .expired)
        let strict = JWTSigner(secret: Self.secret, issuer: "swiftchat", audience: "swiftchat-api", leewaySeconds: 0)
        #expect(try strict.verify(token, now: exp - 1).subject == "42")
        #expect(failure(token, at: exp, signer: strict) == .expired)
        #expect(ErrorCode.token(.expired).name == "token_expired")
    }

    @Test func issuedInTheFuture() throws {
        let token = forge(payload: payload(iat: Self.now + 10, exp: Self.now + 900))
        #expect(failure(token) == .notYetValid)
        #expect(try signer.verify(token, now: Self.now + 5).subject == "42")
        let withinLeeway = forge(payload: payload(iat: Self.now + 5, exp: Self.now + 900))
        #expect(try signer.verify(withinLeeway, now: Self.now).subject == "42")
    }

    @Test func notBeforeIsHonoured() throws {
        let token = forge(payload: payload(#","nbf":\#(Self.now + 60)"#))
        #expect(failure(token) == .notYetValid)
        #expect(failure(token, at: Self.now + 54) == .notYetValid)
        #expect(try signer.verify(token, now: Self.now + 55).subject == "42")
        #expect(failure(forge(payload: payload(#","nbf":"soon""#))) == .malformed("claim 'nbf' must be an integer"))
    }

    @Test func extremeTimesDoNotTrap() {
        // Absurd times are refused as malformed (no issuer writes them; later arithmetic stays safe).
        let iatRange = JWTError.malformed("claim 'iat' must be a time between 1970 and 9999 (seconds since the epoch)")
        let expRange = JWTError.malformed("claim 'exp' must be a time between 1970 and 9999 (seconds since the epoch)")
        #expect(failure(forge(payload: payload(iat: .max, exp: .max)), at: .max) == iatRange)
        #expect(failure(forge(payload: payload(iat: .min, exp: .min)), at: .min) == iatRange)
        #expect(failure(forge(payload: payload(iat: Self.now, exp: 9_223_372_036_854_771))) == expRange)
        #expect(failure(forge(payload: payload(iat: Self.now, exp: .max))) == expRange)
        #expect(failure(forge(payload: payload(iat: Self.now, exp: -1))) == expRange)
        #expect(failure(forge(payload: payload(#","nbf":-9223372036854775808"#))) ==
                .malformed("claim 'nbf' must be a time between 1970 and 9999 (seconds since the epoch)"))
        // The edges of the range are times like any other, whatever the clock says.
        let last = JWTSigner.timestampRange.upperBound
        #expect(failure(forge(payload: payload(iat: 0, exp: last)), at: .max) == .expired)
        #expect(failure(forge(payload: payload(iat: 0, exp: last)), at: .min) == .notYetValid)
        #expect(failure(forge(payload: payload(iat: 0, exp: last)), at: Self.now) == nil)
        #expect(failure(signer.sign(claims), at: .min) == .notYetValid)
    }

    // MARK: Issuer and audience

    @Test func wrongIssuer() {
        #expect(failure(forge(payload: payload().replacingFirst("swiftchat\"", with: "evil\""))) == .wrongIssuer)
        #expect(
            failure(forge(payload: #"{"sub":"42","aud":"swiftchat-api","iat":\#(Self.now),"exp":\#(Self.now + 9),"jti":"j"}"#))
                == .wrongIssuer)
        #expect(ErrorCode.token(.wrongIssuer).name == "token_issuer")
    }

    @Test func wrongAudience() {
        let other = #"{"iss":"swiftchat","sub":"42","aud":"other","iat":\#(Self.now),"exp":\#(Self.now + 9),"jti":"j"}"#
        #expect(failure(forge(payload: other)) == .wrongAudience)
        let none = #"{"iss":"swiftchat","sub":"42","iat":\#(Self.now),"exp":\#(Self.now + 9),"jti":"j"}"#
        #expect(failure(forge(payload: none)) == .wrongAudience)
        #expect(ErrorCode.token(.wrongAudience).name == "token_audience")
    }

    @Test func audienceArray() throws {
        func token(_ aud: String) -> String {
            forge(payload: #"{"iss":"swiftchat","sub":"42","aud":\#(aud),"iat":\#(Self.now),"exp":\#(Self.now + 9),"jti":"j"}"#)
        }
        #expect(try signer.verify(token(#"["web","swiftchat-api"]"#), now: Self.now).audience == "swiftchat-api")
        #expect(failure(token(#"["web","mobile"]"#)) == .wrongAudience)
        #expect(failure(token("[]")) == .wrongAudience)
        #expect(failure(token(#"["swiftchat-api",1]"#)) == .malformed("claim 'aud' must be a string or an array of strings"))
        #expect(failure(token("5")) == .malformed("claim 'aud' must be a string or an array of strings"))
        let open = JWTSigner(secret: Self.secret, issuer: nil, audience: nil)
        #expect(try open.verify(token(#"["web","mobile"]"#), now: Self.now).audience == "web")
    }

    // MARK: Malformed tokens

    @Test(arguments: ["", ".", "..", "...", "a", "a.b", "a.b.c.d", "eyJhbGciOiJIUzI1NiJ9..", "not a token"])
    func malformedSegments(_ token: String) {
        guard case .malformed? = failure(token) else {
            Issue.record("expected malformed for \(token.debugDescription), got \(String(describing: failure(token)))")
            return
        }
    }

    @Test func malformedHeaderAndPayload() {
        let body = Base64URL.encode(Array(payload().utf8))
        #expect(failure("e30." + body + ".x") == .unsupportedAlgorithm(""))  // {} header
        #expect(failure(forge(header: "[]", payload: payload())) == .malformed("header is not a JSON object"))
        guard case .malformed(let detail)? = failure(forge(header: "{", payload: payload())) else {
            Issue.record("expected malformed")
            return
        }
        #expect(detail.hasPrefix("header is not valid JSON"))
        #expect(failure(forge(payload: "[1]")) == .malformed("payload is not a JSON object"))
        #expect(failure(forge(payload: "nope")) != nil)
        #expect(failure("e30=." + body + ".x") == .malformed("header is not valid base64url"))
    }

    @Test func nonCanonicalBase64URLIsRejected() {
        let token = signer.sign(claims)
        let parts = token.split(separator: ".").map(String.init)
        // 32-byte signature = 43 characters; the last one carries 2 unused bits.
        let signature = parts[2]
        let last = signature.last!
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let position = alphabet.firstIndex(of: last)!
        let sloppy = signature.dropLast() + String(alphabet[position | 1])
        #expect(failure(parts[0] + "." + parts[1] + "." + sloppy) == .malformed("signature is not valid base64url"))
        #expect(failure(token + "=") == .malformed("signature is not valid base64url"))
        let standardAlphabet = parts[2].replacingAll("-", with: "+").replacingAll("_", with: "/")
        if standardAlphabet != parts[2] {
            #expect(failure(parts[0] + "." + parts[1] + "." + standardAlphabet) == .malformed("signature is not valid base64url"))
        }

        // A payload segment with non-zero trailing bits, correctly signed over those very bytes,
        // is still refused: the token has exactly one spelling.
        // Pad the JSON so its last base64url character carries 4 unused bits.
        var json = payload()
        while json.utf8.count % 3 != 1 {
            json += " "
        }
        var payloadSegment = Base64URL.encode(Array(json.utf8))
        let tail = payloadSegment.removeLast()
        let tailValue = alphabet.firstIndex(of: tail)!
        payloadSegment.append(alphabet[tailValue | 1])
        let input = parts[0] + "." + payloadSegment
        let forged = input + "." + Base64URL.encode(HMACSHA256.authenticationCode(key: Self.secret, message: input.utf8))
        #expect(failure(forged) == .malformed("payload is not valid base64url"))
    }

    @Test func missingOrMistypedClaims() {
        func token(_ json: String) -> String { forge(payload: json) }
        let n = Self.now
        #expect(failure(token(#"{"iss":"swiftchat","aud":"swiftchat-api","iat":\#(n),"exp":\#(n + 9),"jti":"j"}"#)) == .malformed("claim 'sub' is missing"))
        #expect(failure(token(#"{"iss":"swiftchat","sub":42,"aud":"swiftchat-api","iat":\#(n),"exp":\#(n + 9),"jti":"j"}"#)) == .malformed("claim 'sub' must be a string"))
        #expect(failure(token(#"{"iss":"swiftchat","sub":"42","aud":"swiftchat-api","exp":\#(n + 9),"jti":"j"}"#)) == .malformed("claim 'iat' is missing"))
        #expect(failure(token(#"{"iss":"swiftchat","sub":"42","aud":"swiftchat-api","iat":"\#(n)","exp":\#(n + 9),"jti":"j"}"#)) == .malformed("claim 'iat' must be an integer"))
        #expect(failure(token(#"{"iss":"swiftchat","sub":"42","aud":"swiftchat-api","iat":\#(n),"jti":"j"}"#)) == .malformed("claim 'exp' is missing"))
        #expect(failure(token(#"{"iss":"swiftchat","sub":"42","aud":"swiftchat-api","iat":\#(n),"exp":1.5,"jti":"j"}"#)) == .malformed("claim 'exp' must be an integer"))
        #expect(failure(token(#"{"iss":"swiftchat","sub":"42","aud":"swiftchat-api","iat":\#(n),"exp":\#(n + 9)}"#)) == .malformed("claim 'jti' is missing"))
        #expect(failure(token(#"{"iss":7,"sub":"42","aud":"swiftchat-api","iat":\#(n),"exp":\#(n + 9),"jti":"j"}"#)) == .malformed("claim 'iss' must be a string"))
        #expect(failure(token(#"{"iss":"swiftchat","sub":"42","aud":"swiftchat-api","iat":\#(n),"exp":\#(n + 9),"jti":"j","typ":1}"#)) == .malformed("claim 'typ' must be a string"))
        #expect(failure(token(#"{"iss":"swiftchat","sub":"42","aud":"swiftchat-api","iat":\#(n),"exp":\#(n + 9),"jti":"j","sid":[]}"#)) == .malformed("claim 'sid' must be a string"))
    }

    @Test func oversizedTokensAreRefusedEarly() {
        let big = forge(payload: payload(#","pad":""# + "\"" + String(repeating: "x", count: 9000) + "\""))
        #expect(failure(big) == .malformed("token is longer than 8192 bytes"))
    }

    @Test func errorCodesAndMessages() {
        let all: [JWTError] = [
            .malformed("x"), .unsupportedAlgorithm("none"), .badSignature, .expired, .notYetValid, .wrongIssuer,
            .wrongAudience,
        ]
        #expect(
            all.map { ErrorCode.token($0).name } == [
                "token_malformed", "token_algorithm", "token_signature", "token_expired", "token_not_yet_valid",
                "token_issuer", "token_audience",
            ])
        #expect(Set(all.map(\.message)).count == all.count)
        #expect(JWTError.malformed("x").message == "token is malformed: x")
    }
    // MARK: Key rotation (issue 18)

    private static let nextSecret = Array("fedcba9876543210fedcba9876543210".utf8)

    @Test func keyIDsAreDerivedStableAndDistinct() {
        #expect(JWTSigner.keyID(of: Self.secret) == JWTSigner.keyID(of: Self.secret))
        #expect(JWTSigner.keyID(of: Self.secret) != JWTSigner.keyID(of: Self.nextSecret))
        #expect(JWTSigner.keyID(of: Self.secret).count == 16)
        #expect(signer.keyID == JWTSigner.keyID(of: Self.secret))
    }

    @Test func aRotationInThreeStepsNeverRefusesAToken() throws {
        let old = signer
        // 1. every gateway accepts the next secret before any signs with it;
        let accepting = JWTSigner(secret: Self.secret, acceptedSecrets: [Self.nextSecret], issuer: "swiftchat", audience: "swiftchat-api")
        // 2. gateways switch to signing with it, still accepting the old one;
        let switched = JWTSigner(secret: Self.nextSecret, acceptedSecrets: [Self.secret], issuer: "swiftchat", audience: "swiftchat-api")
        // 3. once the old tokens have expired, the old secret goes.
        let new = JWTSigner(secret: Self.nextSecret, issuer: "swiftchat", audience: "swiftchat-api")
        // Each step's tokens pass on the gateways of the step before and after (a rolling update).
        for (issuer, verifiers) in [(old, [old, accepting]), (accepting, [old, accepting, switched]),
                                    (switched, [accepting, switched, new]), (new, [switched, new])] {
            let token = issuer.sign(claims)
            for verifier in verifiers { #expect(try verifier.verify(token, now: Self.now) == claims) }
        }
        #expect(failure(new.sign(claims), signer: old) == .badSignature)
        #expect(failure(old.sign(claims), signer: new) == .badSignature)
    }

    @Test func aTokenWithoutAKeyIDIsTriedAgainstEveryKey() throws {
        let switched = JWTSigner(secret: Self.nextSecret, acceptedSecrets: [Self.secret], issuer: "swiftchat", audience: "swiftchat-api")
        // Issued before key ids existed: the plain header, the old secret.
        let legacy = forge(payload: payload())
        #expect(try switched.verify(legacy, now: Self.now).subject == "42")
        #expect(failure(forge(payload: payload(), key: Array("yet another secret of 32 bytes!!".utf8)), signer: switched) == .badSignature)
    }

    @Test func aTokenNamesItsKeyAndOnlyThatOneIsTried() {
        let both = JWTSigner(secret: Self.secret, acceptedSecrets: [Self.nextSecret], issuer: "swiftchat", audience: "swiftchat-api")
        let oldID = JWTSigner.keyID(of: Self.secret)
        // Signed with the next secret but claiming the old key's id: refused.
        let mislabelled = forge(header: #"{"alg":"HS256","kid":"\#(oldID)"}"#, payload: payload(), key: Self.nextSecret)
        #expect(failure(mislabelled, signer: both) == .badSignature)
        #expect(failure(forge(header: #"{"alg":"HS256","kid":"unknown"}"#, payload: payload()), signer: both) == .badSignature)
        if case .malformed? = failure(forge(header: #"{"alg":"HS256","kid":7}"#, payload: payload()), signer: both) {} else {
            Issue.record("a non-string kid must be malformed")
        }
    }

}

extension String {
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        return String(self[..<range.lowerBound]) + replacement + String(self[range.upperBound...])
    }

    fileprivate func replacingAll(_ target: Character, with replacement: Character) -> String {
        String(map { $0 == target ? replacement : $0 })
    }

}
