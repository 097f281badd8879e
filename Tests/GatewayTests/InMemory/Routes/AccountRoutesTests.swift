import Testing
@testable import Gateway
@testable import Shared

/// `AccountRoutes` over the in-memory gateway: sign-up and its refusals, login and its limits,
/// refresh-token rotation and reuse, logout, the profile, and what a request without a valid
/// token is answered.
@Suite struct AccountRoutesTests {
    init() { EventLoop.shared.startInBackground() }

    /// A valid sign-up body with a unique username.
    private static func signupBody(_ prefix: String = "acct") -> (username: String, email: String, body: JSONObject) {
        let username = "\(prefix)\(UInt32.random(in: 0...UInt32.max))"
        let email = "\(username)@example.com"
        return (username, email, ["username": .string(username), "email": .string(email), "password": "correct horse battery"])
    }

    /// Signs up without logging in (a login would spend the account's login budget).
    @LoopActor private static func signup(_ gateway: GatewayHarness) async throws -> (id: Int64, username: String, email: String) {
        let (username, email, body) = signupBody()
        let response = try await gateway.request(.POST, "/api/auth/signup", json: .object(body))
        guard response.status == 201, let id = response.json?["user"]?["id"]?.int64Value else {
            throw GatewayHarness.SetupFailure(description: "signup answered \(response.status): \(response.text)")
        }
        return (id, username, email)
    }

    @LoopActor private static func login(_ gateway: GatewayHarness, _ identifier: (String, String), password: String = "correct horse battery",
                                         client: TestHTTPClient? = nil) async throws -> TestResponse {
        let body: JSONValue = [identifier.0: .string(identifier.1), "password": .string(password)]
        if let client { return try await client.request(.POST, "/api/auth/login", json: body) }
        return try await gateway.request(.POST, "/api/auth/login", json: body)
    }

    // MARK: Sign-up

    @Test @LoopActor func signupAnswers201WithTheUserAndNeverThePasswordHash() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        var (username, email, body) = Self.signupBody()
        body["email"] = .string("  " + email.uppercased() + " ")
        body["displayName"] = "  Alice  "
        let response = try await gateway.request(.POST, "/api/auth/signup", json: .object(body))
        #expect(response.status == 201, "\(response.text)")
        #expect(response.json?["message"] == "User registered successfully")
        let user = try #require(response.json?["user"]?.objectValue)
        #expect(user["id"]?.int64Value.map { $0 > 0 } == true)
        #expect(user["username"] == .string(username))
        #expect(user["email"] == .string(email), "stored trimmed and lower-cased, shown to its owner")
        #expect(user["displayName"] == "Alice")
        #expect(user["createdAt"]?.stringValue?.hasSuffix("Z") == true)
        #expect(user["lastSeen"] == .null)
        #expect(!user.keys.contains { $0.lowercased().contains("password") || $0.lowercased().contains("hash") }, "\(user.keys)")
        let stored = try await gateway.sql("SELECT password_hash FROM users WHERE username = $1", [.string(username)])
        #expect(try !stored.string("password_hash").contains("correct horse"), "only a hash is stored")
    }

    @Test @LoopActor func registerIsAnAliasOfSignupAndTheDisplayNameDefaultsToTheUsername() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let (username, _, body) = Self.signupBody()
        let response = try await gateway.request(.POST, "/api/auth/register", json: .object(body))
        #expect(response.status == 201, "\(response.text)")
        #expect(response.json?["user"]?["username"] == .string(username))
        #expect(response.json?["user"]?["displayName"] == .string(username))
    }

    @Test @LoopActor func signupBoundariesAreAccepted() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let short = String(("a" + suffix).prefix(3))
        let long = String(("B" + suffix + String(repeating: "b", count: 32)).prefix(32))
        let charset = "A.b-c_" + suffix
        for (username, password) in [(short, String(repeating: "p", count: 8)), (long, String(repeating: "q", count: 128)),
                                     (charset, String(repeating: "é", count: 20))] {
            let signup = try await gateway.request(.POST, "/api/auth/signup", json: [
                "username": .string(username), "email": .string("\(username.lowercased())@example.com"), "password": .string(password),
            ])
            // A random 3-character name may be taken by an earlier run: only that refusal is tolerated.
            if signup.status == 409, username == short { continue }
            #expect(signup.status == 201, "\(username)/\(password.count): \(signup.text)")
            let login = try await Self.login(gateway, ("username", username), password: password)
            #expect(login.status == 200, "\(username): \(login.text)")
        }
    }

    @Test @LoopActor func eachMissingFieldIsRefusedNamingIt() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        for field in ["username", "email", "password"] {
            var body = Self.signupBody().body
            body[field] = nil
            let response = try await gateway.request(.POST, "/api/auth/signup", json: .object(body))
            expectError(response, 422, "validation_failed", field: field)
            #expect(response.errorMessage?.contains(field) == true, "\(response.text)")
        }
    }

    @Test @LoopActor func badFieldValuesAreRefusedNamingTheField() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let cases: [(String, JSONValue)] = [
            ("username", "ab"), ("username", .string(String(repeating: "a", count: 33))), ("username", "has space"),
            ("username", "bang!"), ("username", "ünïcode"), ("username", .int(12345)), ("username", .null),
            ("email", "not-an-email"), ("email", "missing-domain@"), ("email", "@missing-local.com"), ("email", ""),
            ("email", "two@@example.com"), ("email", "a@example"), ("email", .array(["a@b.co"])),
            ("password", "short7!"), ("password", .string(String(repeating: "x", count: 129))), ("password", .int(12_345_678)),
            ("displayName", .int(42)), ("displayName", "   "), ("displayName", .string(String(repeating: "d", count: 65))),
            ("displayName", "tab\there"),
        ]
        for (field, value) in cases {
            var body = Self.signupBody().body
            body[field] = value
            let response = try await gateway.request(.POST, "/api/auth/signup", json: .object(body))
            expectError(response, 422, "validation_failed", field: field)
            #expect(response.errorMessage?.lowercased().contains(field.lowercased()) == true, "\(field)=\(value): \(response.text)")
        }
    }

    @Test @LoopActor func aNULInASignupFieldIsAValidationErrorNamingIt() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        for field in ["username", "email", "displayName"] {
            var body = Self.signupBody().body
            body[field] = field == "email" ? .string("nul\u{0}x@example.com") : .string("Dis\u{0}play")
            let response = try await gateway.request(.POST, "/api/auth/signup", json: .object(body))
            expectError(response, 422, "validation_failed", field: field)
            #expect(response.header("Retry-After") == nil)
        }
    }

    @Test @LoopActor func aTakenUsernameOrEmailIs409WhateverTheCase() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let taken = try await Self.signup(gateway)
        var body = Self.signupBody().body
        body["username"] = .string(taken.username.uppercased())
        let sameName = try await gateway.request(.POST, "/api/auth/signup", json: .object(body))
        expectError(sameName, 409, "username_taken")
        #expect(sameName.errorMessage?.contains("username") == true)

        body = Self.signupBody().body
        body["email"] = .string(taken.email.uppercased())
        let sameEmail = try await gateway.request(.POST, "/api/auth/signup", json: .object(body))
        expectError(sameEmail, 409, "email_taken")
        #expect(sameEmail.errorMessage?.contains("email") == true)
        let count = try await gateway.sql("SELECT count(*) AS n FROM users WHERE lower(username) = lower($1) OR email = $2",
                                          [.string(taken.username), .string(taken.email)])
        #expect(try count.int64("n") == 1)
    }

    // MARK: Login

    @Test @LoopActor func loginByEmailAnswersBothTokensAndTheUser() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let user = try await Self.signup(gateway)
        let response = try await Self.login(gateway, ("email", user.email.uppercased()))
        #expect(response.status == 200, "\(response.text)")
        let body = try #require(response.json)
        #expect(body["token"]?.stringValue?.split(separator: ".").count == 3)
        #expect(body["refreshToken"]?.stringValue?.isEmpty == false)
        #expect(body["tokenType"] == "Bearer")
        #expect(body["expiresIn"] == .int(gateway.configuration.accessTokenTTLSeconds))
        #expect(body["user"]?["id"] == .int(user.id))
        #expect(body["user"]?["email"] == .string(user.email))
        let profile = try await gateway.request(.GET, "/api/auth/profile", token: body["token"]?.stringValue)
        #expect(profile.status == 200)
    }

    @Test @LoopActor func loginByUsernameIgnoresItsCase() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let user = try await Self.signup(gateway)
        let response = try await Self.login(gateway, ("username", user.username.uppercased()))
        #expect(response.status == 200, "\(response.text)")
        #expect(response.json?["user"]?["username"] == .string(user.username))
    }

    @Test @LoopActor func aWrongPasswordAndAnUnknownAccountGetTheSameAnswer() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let user = try await Self.signup(gateway)
        let wrong = try await Self.login(gateway, ("email", user.email), password: "not the password")
        let unknownEmail = try await Self.login(gateway, ("email", "nobody\(UInt32.random(in: 0...UInt32.max))@example.com"))
        let unknownName = try await Self.login(gateway, ("username", "nobody\(UInt32.random(in: 0...UInt32.max))"))
        for response in [wrong, unknownEmail, unknownName] {
            expectError(response, 401, "invalid_credentials")
            #expect(response.header("WWW-Authenticate") == "Bearer")
            #expect(response.body == wrong.body)
        }
    }

    @Test @LoopActor func loginNeedsAnIdentifierAndRefusesNULInIt() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        expectError(try await gateway.request(.POST, "/api/auth/login", json: ["password": "whatever pass"]), 422, "validation_failed")
        expectError(try await gateway.request(.POST, "/api/auth/login", json: ["email": "a@example.com"]), 422, "validation_failed",
                    field: "password")
        expectError(try await Self.login(gateway, ("email", "nul\u{0}@example.com")), 422, "validation_failed", field: "email")
        expectError(try await Self.login(gateway, ("username", "nul\u{0}user")), 422, "validation_failed", field: "username")
    }

    @Test @LoopActor func theAccountLimitSpansEmailAndUsernameAndRefusesEvenTheRightPassword() async throws {
        let gateway = try await GatewayHarness(settings: ["RATE_LIMIT_LOGIN_ACCOUNT": "3/1m"])
        defer { gateway.close() }
        let victim = try await Self.signup(gateway)
        let bystander = try await Self.signup(gateway)
        for identifier in [("email", victim.email), ("email", victim.email.uppercased()), ("username", victim.username.uppercased())] {
            expectError(try await Self.login(gateway, identifier, password: "wrong password!"), 401, "invalid_credentials")
        }
        for identifier in [("username", victim.username), ("email", victim.email)] {
            let refused = try await Self.login(gateway, identifier)
            expectError(refused, 429, "rate_limited")
            #expect(refused.json?["error"]?["limit"] == "login")
            let wait = try #require(refused.json?["error"]?["retryAfterMs"]?.int64Value)
            #expect(wait > 0 && wait <= 60_000)
            #expect(refused.header("Retry-After") == String(APIError.retryAfterSeconds(.milliseconds(wait))))
        }
        #expect(try await Self.login(gateway, ("email", bystander.email)).status == 200, "another account is not affected")
    }

    @Test @LoopActor func theAccountLimitCoversNamesOfNoAccount() async throws {
        let gateway = try await GatewayHarness(settings: ["RATE_LIMIT_LOGIN_ACCOUNT": "3/1m"])
        defer { gateway.close() }
        let ghost = "ghost\(UInt32.random(in: 0...UInt32.max))@example.com"
        for _ in 0..<3 { expectError(try await Self.login(gateway, ("email", ghost)), 401, "invalid_credentials") }
        let refused = try await Self.login(gateway, ("email", ghost.uppercased()))
        expectError(refused, 429, "rate_limited")
        #expect(refused.header("Retry-After") != nil)
    }

    @Test @LoopActor func theAddressLimitCountsLoginsAndSignupsFromOneAddress() async throws {
        let gateway = try await GatewayHarness(settings: ["RATE_LIMIT_LOGIN_IP": "3/1m"])
        defer { gateway.close() }
        let guesser = gateway.http(address: uniqueClientAddress())
        for _ in 0..<3 {
            expectError(try await Self.login(gateway, ("email", "nobody\(UInt32.random(in: 0...UInt32.max))@example.com"), client: guesser),
                        401, "invalid_credentials")
        }
        let refused = try await Self.login(gateway, ("email", "nobody\(UInt32.random(in: 0...UInt32.max))@example.com"), client: guesser)
        expectError(refused, 429, "rate_limited")
        #expect(refused.json?["error"]?["limit"] == "login")
        #expect(refused.header("Retry-After") != nil)
        let signup = try await guesser.request(.POST, "/api/auth/signup", json: .object(Self.signupBody().body))
        expectError(signup, 429, "rate_limited")

        let honest = gateway.http(address: uniqueClientAddress())
        expectError(try await Self.login(gateway, ("email", "nobody\(UInt32.random(in: 0...UInt32.max))@example.com"), client: honest),
                    401, "invalid_credentials")
    }

    // MARK: Refresh and logout

    @Test @LoopActor func refreshRotatesTheRefreshTokenAndIssuesAWorkingAccessToken() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let account = try await gateway.account()
        let response = try await gateway.request(.POST, "/api/auth/refresh", json: ["refreshToken": .string(account.refreshToken)])
        #expect(response.status == 200, "\(response.text)")
        let token = try #require(response.json?["token"]?.stringValue)
        let refresh = try #require(response.json?["refreshToken"]?.stringValue)
        #expect(refresh != account.refreshToken)
        #expect(response.json?["tokenType"] == "Bearer")
        #expect(response.json?["user"]?["id"] == .int(account.id))
        #expect(try await gateway.request(.GET, "/api/auth/profile", token: token).status == 200)
        let again = try await gateway.request(.POST, "/api/auth/refresh", json: ["refreshToken": .string(refresh)])
        #expect(again.status == 200, "the rotated token refreshes in turn: \(again.text)")
    }

    @Test @LoopActor func reusingARotatedRefreshTokenRevokesTheWholeSession() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let account = try await gateway.account()
        let other = try await Self.login(gateway, ("email", account.email))  // a second session of the same user
        let rotated = try await gateway.request(.POST, "/api/auth/refresh", json: ["refreshToken": .string(account.refreshToken)])
        let newToken = try #require(rotated.json?["token"]?.stringValue)
        let newRefresh = try #require(rotated.json?["refreshToken"]?.stringValue)

        let reuse = try await gateway.request(.POST, "/api/auth/refresh", json: ["refreshToken": .string(account.refreshToken)])
        expectError(reuse, 401, "refresh_token_reused")
        expectError(try await gateway.request(.GET, "/api/auth/profile", token: newToken), 401, "token_revoked")
        expectError(try await gateway.request(.GET, "/api/auth/profile", token: account.token), 401, "token_revoked")
        expectError(try await gateway.request(.POST, "/api/auth/refresh", json: ["refreshToken": .string(newRefresh)]),
                    401, "refresh_token_revoked")
        #expect(try await gateway.request(.GET, "/api/auth/profile", token: other.json?["token"]?.stringValue).status == 200,
                "another session of the user is not revoked")
    }

    @Test @LoopActor func aRefreshTokenThatIsNotOursOrHasExpiredIsRefused() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        for garbage in ["definitely-not-a-refresh-token", "abc.def", ".", String(repeating: "a", count: 300) + ".x"] {
            expectError(try await gateway.request(.POST, "/api/auth/refresh", json: ["refreshToken": .string(garbage)]),
                        401, "refresh_token_invalid")
        }
        let account = try await gateway.account()
        let parts = account.refreshToken.split(separator: ".", maxSplits: 1)
        expectError(try await gateway.request(.POST, "/api/auth/refresh", json: ["refreshToken": .string("\(parts[0]).wrong-secret")]),
                    401, "refresh_token_invalid")
        expectError(try await gateway.request(.POST, "/api/auth/refresh", json: ["refreshToken": "abc\u{0}def.ghi"]),
                    422, "validation_failed", field: "refreshToken")
        expectError(try await gateway.request(.POST, "/api/auth/refresh", json: [:]), 422, "validation_failed", field: "refreshToken")

        try await gateway.sql("UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1", [.int64(account.id)])
        expectError(try await gateway.request(.POST, "/api/auth/refresh", json: ["refreshToken": .string(account.refreshToken)]),
                    401, "refresh_token_expired")
    }

    @Test @LoopActor func logoutAnswers200AndEndsTheTokenAndItsSession() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let account = try await gateway.account()
        let response = try await gateway.request(.POST, "/api/auth/logout", token: account.token)
        #expect(response.status == 200, "\(response.text)")
        #expect(response.json == ["message": "Logged out"])
        let after = try await gateway.request(.GET, "/api/auth/profile", token: account.token)
        expectError(after, 401, "token_revoked")
        #expect(after.header("WWW-Authenticate") == "Bearer")
        expectError(try await gateway.request(.POST, "/api/auth/refresh", json: ["refreshToken": .string(account.refreshToken)]),
                    401, "refresh_token_revoked")
        expectError(try await gateway.request(.POST, "/api/auth/logout", token: account.token), 401, "token_revoked")
    }

    // MARK: Profile and authentication

    @Test @LoopActor func theProfileIsServedOnBothPathsWithTheOwnersEmail() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let account = try await gateway.account()
        let profile = try await gateway.request(.GET, "/api/auth/profile", token: account.token)
        let me = try await gateway.request(.GET, "/api/users/me", token: account.token)
        for response in [profile, me] {
            #expect(response.status == 200, "\(response.text)")
            #expect(response.json?["user"]?["id"] == .int(account.id))
            #expect(response.json?["user"]?["username"] == .string(account.username))
            #expect(response.json?["user"]?["email"] == .string(account.email))
        }
        #expect(profile.body == me.body)
    }

    @Test @LoopActor func aMissingOrMalformedAuthorizationHeaderIs401() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let missing = try await gateway.request(.GET, "/api/auth/profile")
        expectError(missing, 401, "token_missing")
        #expect(missing.header("WWW-Authenticate") == "Bearer")
        for header in ["Basic dXNlcjpwYXNz", "Bearer", "Token abc", "bearer not-a-jwt", "Bearer a.b"] {
            let response = try await gateway.request(.GET, "/api/auth/profile", headers: [("Authorization", header)])
            expectError(response, 401, "token_malformed")
            #expect(response.header("WWW-Authenticate") == "Bearer")
        }
    }

    @Test @LoopActor func aTokenWithABadSignatureOrAlgorithmIsRefused() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let account = try await gateway.account()
        let foreign = gateway.accessToken(userID: account.id, secret: Array(String(repeating: "z", count: 48).utf8))
        expectError(try await gateway.request(.GET, "/api/auth/profile", token: foreign), 401, "token_signature")

        let parts = account.token.split(separator: ".").map(String.init)
        let noneHeader = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8))
        expectError(try await gateway.request(.GET, "/api/auth/profile", token: "\(noneHeader).\(parts[1])."), 401, "token_algorithm")
        var payload = try #require(Base64URL.decode(parts[1]).flatMap { try? JSONParser.parse($0) }?.objectValue)
        payload["sub"] = .string(String(account.id + 1))
        let tampered = [parts[0], Base64URL.encode(JSONValue.object(payload).serialized()), parts[2]].joined(separator: ".")
        expectError(try await gateway.request(.GET, "/api/auth/profile", token: tampered), 401, "token_signature")
    }

    @Test @LoopActor func anExpiredOrNotYetValidTokenIsRefused() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let account = try await gateway.account()
        let expired = gateway.accessToken(userID: account.id, issuedSecondsAgo: 3_600, expiresInSeconds: -60)
        expectError(try await gateway.request(.GET, "/api/auth/profile", token: expired), 401, "token_expired")
        let early = gateway.accessToken(userID: account.id, issuedSecondsAgo: -3_600, expiresInSeconds: 7_200)
        expectError(try await gateway.request(.GET, "/api/auth/profile", token: early), 401, "token_not_yet_valid")
        let fresh = gateway.accessToken(userID: account.id)
        #expect(try await gateway.request(.GET, "/api/auth/profile", token: fresh).status == 200, "the same signer's valid token works")
    }

    @Test @LoopActor func theTokenOfADeletedAccountIsRevoked() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let account = try await gateway.account()
        try await gateway.sql("DELETE FROM users WHERE id = $1", [.int64(account.id)])
        let response = try await gateway.request(.GET, "/api/users/me", token: account.token)
        expectError(response, 401, "token_revoked")
        #expect(response.errorMessage == "this account no longer exists")
    }
}
