import Testing
@testable import Shared

/// The pure parts of rate limiting: policy texts, the sliding-log rule at its window edges, the
/// headers and 429 bodies, and how a refusal travels in a worker reply.
@Suite struct RateLimitTests {
    // MARK: RateLimitPolicy.parse

    private static func policy(_ text: String, name: String = "api") throws -> RateLimitPolicy? {
        try RateLimitPolicy.parse(text, name: name)
    }

    private static func parseError(_ text: String) -> RateLimitPolicyError? {
        do throws(RateLimitPolicyError) {
            _ = try RateLimitPolicy.parse(text, name: "api")
            return nil
        } catch {
            return error
        }
    }

    @Test func parsesCountsAndEveryWindowUnit() throws {
        #expect(try Self.policy("5/10s", name: "messages") == RateLimitPolicy(name: "messages", limit: 5, window: .milliseconds(10_000)))
        #expect(try Self.policy("100/1m") == RateLimitPolicy(name: "api", limit: 100, window: .milliseconds(60_000)))
        #expect(try Self.policy("10/15m") == RateLimitPolicy(name: "api", limit: 10, window: .milliseconds(900_000)))
        #expect(try Self.policy("5/250ms") == RateLimitPolicy(name: "api", limit: 5, window: .milliseconds(250)))
        #expect(try Self.policy("3/1h") == RateLimitPolicy(name: "api", limit: 3, window: .milliseconds(3_600_000)))
        #expect(try Self.policy("3/24h")?.window == RateLimitPolicy.maxWindow)
        #expect(try Self.policy("7/10S")?.window == .seconds(10))
        #expect(try Self.policy(" 5 / 10s ") == RateLimitPolicy(name: "api", limit: 5, window: .milliseconds(10_000)))
        #expect(try Self.policy("\t5/10s\t")?.limit == 5)
        #expect(try Self.policy("\(RateLimitPolicy.maxLimit)/1s")?.limit == RateLimitPolicy.maxLimit)
    }

    @Test func offMeansNoLimit() throws {
        for text in ["off", "OFF", "Off", " off "] {
            #expect(try Self.policy(text) == nil, "\(text)")
        }
    }

    @Test func badCountsAreRefusedWithTheTextQuoted() {
        for text in ["0/10s", "-1/1s", "abc", "", "5/10s/3", "/10s", "x/10s", "\(RateLimitPolicy.maxLimit + 1)/1s"] {
            let error = Self.parseError(text)
            #expect(error != nil, "\(text)")
            #expect(error?.message.contains("expected <count>/<window>") == true, "\(text)")
            #expect(error?.message.contains("'\(text)'") == true, "\(text)")
        }
    }

    @Test func badWindowsAreRefusedWithTheWindowQuoted() {
        for (text, window) in [("5/0s", "0s"), ("5/10", "10"), ("5/10d", "10d"), ("5/25h", "25h"), ("5/1441m", "1441m"),
                               ("5/s", "s"), ("5/ms", "ms"), ("5/-1s", "-1s"), ("5/1.5s", "1.5s"), ("5/", "")] {
            let error = Self.parseError(text)
            #expect(error != nil, "\(text)")
            #expect(error?.message.contains("positive duration up to 24h") == true, "\(text)")
            #expect(error?.message.contains("'\(window)'") == true, "\(text)")
        }
    }

    @Test func policyHeaderRoundsTheWindowUpToWholeSeconds() throws {
        #expect(RateLimitPolicy(name: "api", limit: 100, window: .milliseconds(60_000)).policyHeader == #""api";q=100;w=60"#)
        #expect(RateLimitPolicy(name: "messages", limit: 5, window: .milliseconds(10_000)).policyHeader == #""messages";q=5;w=10"#)
        #expect(RateLimitPolicy(name: "api", limit: 1, window: .milliseconds(500)).windowSeconds == 1)
        #expect(RateLimitPolicy(name: "api", limit: 1, window: .milliseconds(1)).windowSeconds == 1)
        #expect(RateLimitPolicy(name: "api", limit: 1, window: .milliseconds(1_000)).windowSeconds == 1)
        #expect(RateLimitPolicy(name: "api", limit: 1, window: .milliseconds(1_001)).windowSeconds == 2)
        #expect(RateLimitPolicy(name: "api", limit: 1, window: .milliseconds(1_500)).policyHeader == #""api";q=1;w=2"#)
    }

    @Test func summariesUseTheLargestExactUnit() throws {
        #expect(try Self.policy("100/1m")?.summary == "100 per 1m")
        #expect(try Self.policy("5/10s")?.summary == "5 per 10s")
        #expect(try Self.policy("10/15m")?.summary == "10 per 15m")
        #expect(try Self.policy("5/250ms")?.summary == "5 per 250ms")
        #expect(try Self.policy("1/1h")?.summary == "1 per 1h")
        #expect(try Self.policy("1/120s")?.summary == "1 per 2m")
        #expect(try Self.policy("1/90s")?.summary == "1 per 90s")
        #expect(try Self.policy("1/60m")?.summary == "1 per 1h")
        #expect(try Self.policy("1/1500ms")?.summary == "1 per 1500ms")
    }

    // MARK: SlidingWindowLog

    private static let second: Int64 = 1_000_000
    private static let fivePerTenSeconds = RateLimitPolicy(name: "messages", limit: 5, window: .milliseconds(10_000))

    /// One unit with a fresh member (an HTTP request).
    private static func one(_ log: inout SlidingWindowLog, _ key: String = "k", at now: Int64,
                            policy: RateLimitPolicy = fivePerTenSeconds) -> RateLimitDecision {
        log.decide(key: key, members: ["u\(UInt64.random(in: 0...UInt64.max))"], policy: policy, now: now)[0]
    }

    @Test func fiveAdmittedThenTheSixthWaitsTheWholeWindow() {
        var log = SlidingWindowLog()
        let t0: Int64 = 1_000 * Self.second
        for index in 0..<5 {
            let decision = Self.one(&log, at: t0)
            #expect(decision.allowed)
            #expect(decision.remaining == 4 - index)
            #expect(decision.retryAfter.wholeMilliseconds == 10_000)
            #expect(decision.source == .local)
        }
        let refused = Self.one(&log, at: t0)
        #expect(refused == RateLimitDecision(allowed: false, remaining: 0, retryAfter: .milliseconds(10_000), source: .local))
    }

    @Test func aUnitLeavesAtExactlyItsTimePlusTheWindow() {
        var log = SlidingWindowLog()
        let t0: Int64 = 77 * Self.second + 123
        let window = Self.fivePerTenSeconds.window.wholeMilliseconds * 1_000
        for _ in 0..<5 { #expect(Self.one(&log, at: t0).allowed) }
        let stillEarly = Self.one(&log, at: t0 + window - 1_001)
        #expect(!stillEarly.allowed)
        #expect(stillEarly.retryAfter.wholeMilliseconds == 2)
        // One microsecond before the edge: still full; the wait (1 µs) rounds up to 1 ms.
        let early = Self.one(&log, at: t0 + window - 1)
        #expect(!early.allowed)
        #expect(early.remaining == 0)
        #expect(early.retryAfter.wholeMilliseconds == 1)
        #expect(early.retryAfterSeconds == 1)
        // At the edge all five leave together: a fresh window.
        let atEdge = Self.one(&log, at: t0 + window)
        #expect(atEdge.allowed)
        #expect(atEdge.remaining == 4)
        #expect(atEdge.retryAfter.wholeMilliseconds == 10_000)
    }

    @Test func staggeredAdmissionsFreeOneSlotAtATime() {
        var log = SlidingWindowLog()
        let t0: Int64 = 5 * Self.second
        let window = 10 * Self.second
        let admitted = (0..<5).map { t0 + Int64($0) * 2 * Self.second }
        for (index, time) in admitted.enumerated() {
            let decision = Self.one(&log, at: time)
            #expect(decision.allowed)
            #expect(decision.remaining == 4 - index)
            // The oldest (t0) is what frees next.
            #expect(decision.retryAfter.wholeMilliseconds == (t0 + window - time) / 1_000)
        }
        let full = Self.one(&log, at: t0 + 9 * Self.second)
        #expect(!full.allowed)
        #expect(full.retryAfter.wholeMilliseconds == 1_000)
        // Each entry frees its slot at its own time + window, and only that one slot.
        for (index, time) in admitted.enumerated() {
            let edge = time + window
            let before = Self.one(&log, at: edge - 1)
            #expect(!before.allowed, "slot \(index) before its edge")
            #expect(before.retryAfter.wholeMilliseconds == 1)
            let at = Self.one(&log, at: edge)
            #expect(at.allowed, "slot \(index) at its edge")
            #expect(at.remaining == 0)
            // Next to leave: the following original entry, or after the last one, the unit that
            // took the first freed slot (admitted at admitted[0] + window).
            let next = (index + 1 < admitted.count ? admitted[index + 1] : admitted[0] + window) + window
            #expect(at.retryAfter.wholeMilliseconds == (next - edge) / 1_000)
            let again = Self.one(&log, at: edge)
            #expect(!again.allowed, "only one slot freed at \(index)'s edge")
            #expect(again.retryAfter.wholeMilliseconds == (next - edge) / 1_000)
        }
    }

    @Test func aReplayedMemberKeepsItsSlotInsideTheWindowOnly() {
        var log = SlidingWindowLog()
        let policy = Self.fivePerTenSeconds
        let t0: Int64 = 3 * Self.second
        let window = 10 * Self.second
        let first = log.decide(key: "k", members: ["m"], policy: policy, now: t0)[0]
        #expect(first.allowed && first.remaining == 4 && first.retryAfter.wholeMilliseconds == 10_000)
        // Inside the window: admitted, not counted again, the original time still rules.
        let replay = log.decide(key: "k", members: ["m"], policy: policy, now: t0 + Self.second)[0]
        #expect(replay.allowed && replay.remaining == 4 && replay.retryAfter.wholeMilliseconds == 9_000)
        // After the window: it is a new unit at the new time.
        let later = log.decide(key: "k", members: ["m"], policy: policy, now: t0 + window)[0]
        #expect(later.allowed && later.remaining == 4 && later.retryAfter.wholeMilliseconds == 10_000)
        let other = log.decide(key: "k", members: ["n"], policy: policy, now: t0 + window + Self.second)[0]
        #expect(other.allowed && other.remaining == 3 && other.retryAfter.wholeMilliseconds == 9_000)
    }

    @Test func aFullLogStillAdmitsAReplayedMember() {
        var log = SlidingWindowLog()
        let policy = RateLimitPolicy(name: "messages", limit: 2, window: .milliseconds(1_000))
        #expect(log.decide(key: "k", members: ["a", "b"], policy: policy, now: 0).map(\.allowed) == [true, true])
        #expect(log.decide(key: "k", members: ["c"], policy: policy, now: 10).map(\.allowed) == [false])
        #expect(log.decide(key: "k", members: ["b"], policy: policy, now: 20).map(\.allowed) == [true])
        #expect(log.decide(key: "k", members: ["c"], policy: policy, now: 30).map(\.allowed) == [false])
    }

    @Test func membersOfOneCallAreDecidedInOrder() {
        var log = SlidingWindowLog()
        let policy = RateLimitPolicy(name: "messages", limit: 2, window: .milliseconds(10_000))
        let decisions = log.decide(key: "k", members: ["a", "b", "c"], policy: policy, now: 0)
        #expect(decisions.map(\.allowed) == [true, true, false])
        // Remaining and the wait are read once, after the whole call.
        #expect(decisions.map(\.remaining) == [0, 0, 0])
        #expect(decisions.map(\.retryAfter.wholeMilliseconds) == [10_000, 10_000, 10_000])
        // A member repeated within one call is counted once.
        var other = SlidingWindowLog()
        #expect(other.decide(key: "k", members: ["a", "a", "b", "c"], policy: policy, now: 0).map(\.allowed) == [true, true, true, false])
    }

    @Test func keysAreIndependent() {
        var log = SlidingWindowLog()
        for _ in 0..<5 { #expect(Self.one(&log, "alice", at: 0).allowed) }
        #expect(!Self.one(&log, "alice", at: 0).allowed)
        let bob = Self.one(&log, "bob", at: 0)
        #expect(bob.allowed)
        #expect(bob.remaining == 4)
        #expect(log.keyCount == 2)
    }

    @Test func emptyLogsAreForgotten() {
        var log = SlidingWindowLog()
        #expect(Self.one(&log, "a", at: 0).allowed)
        #expect(log.keyCount == 1)
        // A call with no members after the window purges the key's entries and drops it.
        let none = log.decide(key: "a", members: [], policy: Self.fivePerTenSeconds, now: 10 * Self.second)
        #expect(none.isEmpty)
        #expect(log.keyCount == 0)
    }

    @Test func evictionKeepsTheKeyCountBounded() {
        var log = SlidingWindowLog(maxKeys: 3)
        #expect(log.maxKeys == 3)
        let policy = RateLimitPolicy(name: "api", limit: 1, window: .milliseconds(60_000))
        #expect(Self.one(&log, "a", at: 1, policy: policy).allowed)
        #expect(Self.one(&log, "b", at: 2, policy: policy).allowed)
        #expect(Self.one(&log, "c", at: 3, policy: policy).allowed)
        #expect(!Self.one(&log, "a", at: 4, policy: policy).allowed)
        // A fourth key drops the log with the oldest newest entry ("a"), which is then forgotten.
        #expect(Self.one(&log, "d", at: 5, policy: policy).allowed)
        #expect(log.keyCount == 3)
        #expect(!Self.one(&log, "b", at: 6, policy: policy).allowed)
        #expect(!Self.one(&log, "c", at: 6, policy: policy).allowed)
        #expect(!Self.one(&log, "d", at: 6, policy: policy).allowed)
        // ("a" is back, so "b", the stalest now, went.)
        #expect(Self.one(&log, "a", at: 7, policy: policy).allowed)
        #expect(log.keyCount == 3)
        #expect(Self.one(&log, "b", at: 8, policy: policy).allowed)

        // Expired logs are dropped before any live one.
        var expiring = SlidingWindowLog(maxKeys: 3)
        let short = RateLimitPolicy(name: "api", limit: 1, window: .milliseconds(1_000))
        for key in ["a", "b", "c"] { #expect(Self.one(&expiring, key, at: 0, policy: short).allowed) }
        #expect(Self.one(&expiring, "d", at: 2 * Self.second, policy: short).allowed)
        #expect(expiring.keyCount == 1)

        // An attacker cycling keys never grows it.
        var cycled = SlidingWindowLog(maxKeys: 100)
        for index in 0..<5_000 {
            _ = Self.one(&cycled, "key-\(index)", at: Int64(index) * 1_000, policy: policy)
            #expect(cycled.keyCount <= 100)
        }
        #expect(cycled.keyCount == 100)
        #expect(SlidingWindowLog(maxKeys: 0).maxKeys == 1)
        var tiny = SlidingWindowLog(maxKeys: 0)
        #expect(Self.one(&tiny, "x", at: 0, policy: policy).allowed)
        #expect(Self.one(&tiny, "y", at: 0, policy: policy).allowed)
        #expect(tiny.keyCount == 1)
    }

    @Test func microsecondsRoundUpToMilliseconds() {
        #expect(SlidingWindowLog.milliseconds(microseconds: 0) == 0)
        #expect(SlidingWindowLog.milliseconds(microseconds: 1) == 1)
        #expect(SlidingWindowLog.milliseconds(microseconds: 999) == 1)
        #expect(SlidingWindowLog.milliseconds(microseconds: 1_000) == 1)
        #expect(SlidingWindowLog.milliseconds(microseconds: 1_001) == 2)
        #expect(SlidingWindowLog.milliseconds(microseconds: 10_000_000) == 10_000)
        #expect(SlidingWindowLog.milliseconds(microseconds: -1) == 0)
        #expect(SlidingWindowLog.milliseconds(microseconds: -5_000) == 0)
    }

    // MARK: The script reply

    @Test func scriptRepliesBecomeDecisions() {
        let reply = RedisValue.array([.integer(3), .integer(1_500), .integer(1), .integer(0)])
        let decisions = RateLimitScript.decisions(reply, members: 2)
        #expect(decisions == [
            RateLimitDecision(allowed: true, remaining: 3, retryAfter: .milliseconds(2), source: .redis),
            RateLimitDecision(allowed: false, remaining: 3, retryAfter: .milliseconds(2), source: .redis),
        ])
        #expect(RateLimitScript.decisions(.array([.integer(-2), .integer(0), .integer(0)]), members: 1)?.first?.remaining == 0)
        #expect(RateLimitScript.decisions(reply, members: 3) == nil)
        #expect(RateLimitScript.decisions(.integer(1), members: 1) == nil)
        #expect(RateLimitScript.decisions(.array([.integer(1), .null, .integer(1)]), members: 1) == nil)
        #expect(RateLimitScript.decisions(.array([.integer(1), .integer(0), .null]), members: 1) == nil)
    }

    // MARK: Headers

    @Test func rateLimitHeaderRoundsTheWaitUp() {
        let policy = RateLimitPolicy(name: "api", limit: 100, window: .milliseconds(60_000))
        func decision(_ remaining: Int, _ wait: Int64) -> RateLimitDecision {
            RateLimitDecision(allowed: true, remaining: remaining, retryAfter: .milliseconds(wait))
        }
        #expect(decision(57, 0).header(for: policy) == #""api";r=57;t=0"#)
        #expect(decision(57, 1).header(for: policy) == #""api";r=57;t=1"#)
        #expect(decision(0, 1_000).header(for: policy) == #""api";r=0;t=1"#)
        #expect(decision(0, 1_001).header(for: policy) == #""api";r=0;t=2"#)
        #expect(decision(-3, 42_000).header(for: policy) == #""api";r=0;t=42"#)
        #expect(decision(0, -5).header(for: policy) == #""api";r=0;t=0"#)
        // Retry-After is never 0: a client told 0 would retry at once.
        #expect(decision(0, 0).retryAfterSeconds == 1)
        #expect(decision(0, 1).retryAfterSeconds == 1)
        #expect(decision(0, 1_000).retryAfterSeconds == 1)
        #expect(decision(0, 1_001).retryAfterSeconds == 2)
        #expect(decision(0, 59_999).retryAfterSeconds == 60)
    }

    // MARK: 429 bodies

    @Test func rateLimitedIsA429WithRetryAfterAndDetails() throws {
        let policy = RateLimitPolicy(name: "api", limit: 100, window: .milliseconds(60_000))
        let error = APIError.rateLimited(policy, RateLimitDecision(allowed: false, remaining: 0, retryAfter: .milliseconds(1_500)))
        #expect(error.status == .tooManyRequests)
        #expect(error.code.name == "rate_limited")
        #expect(error.message == "rate limit exceeded (100 per 1m); retry in 2 s")
        #expect(error.headers["Retry-After"] == "2")
        let response = error.response
        #expect(response.status.code == 429)
        #expect(response.headers["Retry-After"] == "2")
        #expect(response.headers["Content-Type"] == "application/json; charset=utf-8")
        let body = try JSONParser.parse(response.body)
        #expect(body == ["error": ["code": "rate_limited", "message": "rate limit exceeded (100 per 1m); retry in 2 s",
                                   "limit": "api", "retryAfterMs": 1_500]])
        #expect(body["error"]?.objectValue?.keys == ["code", "message", "limit", "retryAfterMs"])
    }

    @Test func rateLimitedWaitsAtLeastOneMillisecondAndOneSecond() throws {
        let zero = APIError.rateLimited(limit: "login", retryAfter: .milliseconds(0), message: "slow down")
        #expect(zero.headers["Retry-After"] == "1")
        #expect(zero.details["retryAfterMs"] == 1)
        #expect(zero.details["limit"] == "login")
        let exact = APIError.rateLimited(limit: "messages", retryAfter: .milliseconds(3_000), message: "m")
        #expect(exact.headers["Retry-After"] == "3")
        let body = try JSONParser.parse(exact.response.body)
        #expect(body["error"]?["retryAfterMs"] == 3_000)
        #expect(body["error"]?["limit"] == "messages")
        let custom = APIError.rateLimited(RateLimitPolicy(name: "messages", limit: 5, window: .milliseconds(10_000)),
                                          RateLimitDecision(allowed: false, remaining: 0, retryAfter: .milliseconds(10_000)),
                                          message: "too many messages")
        #expect(custom.message == "too many messages")
        #expect(custom.headers["Retry-After"] == "10")
    }

    @Test func errorsWithoutDetailsKeepTheirBody() throws {
        let error = APIError(ErrorCode("user_not_found", .notFound, "unused"), message: "no \"such\" user")
        #expect(error.response == HTTPResponse.error(.notFound, code: "user_not_found", message: "no \"such\" user"))
        #expect(String(decoding: error.response.body, as: UTF8.self) == #"{"error":{"code":"user_not_found","message":"no \"such\" user"}}"#)
        #expect(String(decoding: ChatErrors.workerUnavailable.response.body, as: UTF8.self)
            == #"{"error":{"code":"worker_unavailable","message":"no message worker answered in time, retry shortly"}}"#)
        #expect(ChatErrors.workerUnavailable.response.headers["Retry-After"] == "1")
    }

    @Test func detailsCannotOverrideCodeOrMessage() throws {
        let error = APIError(ErrorCode("real", .badRequest, "unused"), message: "real message", details: ["code": "fake", "message": "fake", "extra": true])
        #expect(error.json == ["code": "real", "message": "real message", "extra": true])
        let body = try JSONParser.parse(error.response.body)
        #expect(body == ["error": ["code": "real", "message": "real message", "extra": true]])
    }

    @Test func rateLimiterUnavailableIsA503() {
        let error = APIError.rateLimiterUnavailable
        #expect(error.status == .serviceUnavailable)
        #expect(error.code.name == "rate_limiter_unavailable")
        #expect(error.headers["Retry-After"] == "1")
        #expect(ChatErrors.apiError(code: error.code.name, message: error.message).status == .serviceUnavailable)
    }

    // MARK: Worker replies

    @Test func failedRepliesKeepTheirDetails() throws {
        let policy = RateLimitPolicy(name: "messages", limit: 5, window: .milliseconds(10_000))
        let error = APIError.rateLimited(policy, RateLimitDecision(allowed: false, remaining: 0, retryAfter: .milliseconds(4_321)),
                                         message: "too many messages")
        let reply = ChatReply(reply: ReplyAddress(gateway: "gw-1", engineSession: "s1", ack: 7), error: error)
        #expect(reply.outcome == .failed(code: "rate_limited", message: "too many messages",
                                         details: ["limit": "messages", "retryAfterMs": 4_321]))
        #expect(String(decoding: reply.payload(), as: UTF8.self)
            == #"{"reply":{"gateway":"gw-1","socket":"s1","ack":7},"ok":false,"error":{"code":"rate_limited","message":"too many messages","limit":"messages","retryAfterMs":4321}}"#)
        let parsed = try #require(ChatReply.parse(reply.payload()))
        #expect(parsed == reply)
        guard case .failed(let code, let message, let details) = parsed.outcome else {
            Issue.record("expected a failure")
            return
        }
        // Back to the REST answer: 429 with the same fields.
        let api = ChatErrors.apiError(code: code, message: message, details: details)
        #expect(api.status == .tooManyRequests)
        #expect(api.details == ["limit": "messages", "retryAfterMs": 4_321])
        let body = try JSONParser.parse(api.response.body)
        #expect(body == ["error": ["code": "rate_limited", "message": "too many messages", "limit": "messages", "retryAfterMs": 4_321]])
        #expect(APIError.errorObject(code: code, message: message, details: details)
            == ["code": "rate_limited", "message": "too many messages", "limit": "messages", "retryAfterMs": 4_321])
    }

    @Test func failedRepliesWithoutDetailsStayAsBefore() throws {
        let reply = ChatReply(reply: ReplyAddress(gateway: "g", request: "r"), outcome: .failed(code: "user_not_found", message: "gone"))
        #expect(String(decoding: reply.payload(), as: UTF8.self)
            == #"{"reply":{"gateway":"g","request":"r"},"ok":false,"error":{"code":"user_not_found","message":"gone"}}"#)
        #expect(ChatReply.parse(reply.payload()) == reply)
        // A reply from an older worker with no message still parses.
        let old = ChatReply.parse(Array(#"{"reply":{"gateway":"g"},"ok":false,"error":{"code":"rate_limited"}}"#.utf8))
        #expect(old?.outcome == .failed(code: "rate_limited", message: "rate_limited", details: [:]))
        #expect(ChatErrors.apiError(code: "rate_limited", message: "m").status == .tooManyRequests)
    }

    // MARK: Settings

    private static let settings = [
        Setting("RATE_LIMIT_API", "100/1m", "requests per window"),
        Setting("RATE_LIMIT_API_ON_REDIS_ERROR", "local", "allow, deny or local"),
    ]

    private static func reader(_ environment: [String: String]) -> SettingsReader {
        SettingsReader(settings: settings, environment: environment)
    }

    private static func configurationError(_ body: () throws(ConfigurationError) -> Void) -> ConfigurationError? {
        do throws(ConfigurationError) {
            try body()
            return nil
        } catch {
            return error
        }
    }

    @Test func settingsReadPoliciesAndFailureModes() throws {
        #expect(try Self.reader([:]).rateLimit("RATE_LIMIT_API", policyName: "api")
            == RateLimitPolicy(name: "api", limit: 100, window: .milliseconds(60_000)))
        #expect(try Self.reader(["RATE_LIMIT_API": "5/10s"]).rateLimit("RATE_LIMIT_API", policyName: "api")?.limit == 5)
        #expect(try Self.reader(["RATE_LIMIT_API": "off"]).rateLimit("RATE_LIMIT_API", policyName: "api") == nil)
        #expect(try Self.reader([:]).rateLimitFailureMode("RATE_LIMIT_API_ON_REDIS_ERROR") == .local)
        #expect(try Self.reader(["RATE_LIMIT_API_ON_REDIS_ERROR": "DENY"]).rateLimitFailureMode("RATE_LIMIT_API_ON_REDIS_ERROR") == .deny)
        #expect(try Self.reader(["RATE_LIMIT_API_ON_REDIS_ERROR": "allow"]).rateLimitFailureMode("RATE_LIMIT_API_ON_REDIS_ERROR") == .allow)
        #expect(RateLimitFailureMode.allCases.map(\.rawValue) == ["allow", "deny", "local"])
    }

    @Test func settingsErrorsNameTheVariable() {
        let policy = Self.configurationError { () throws(ConfigurationError) in
            _ = try Self.reader(["RATE_LIMIT_API": "5/10d"]).rateLimit("RATE_LIMIT_API", policyName: "api")
        }
        #expect(policy?.variable == "RATE_LIMIT_API")
        #expect(policy?.description.hasPrefix("RATE_LIMIT_API: ") == true)
        #expect(policy?.reason.contains("'10d'") == true)

        let mode = Self.configurationError { () throws(ConfigurationError) in
            _ = try Self.reader(["RATE_LIMIT_API_ON_REDIS_ERROR": "maybe"]).rateLimitFailureMode("RATE_LIMIT_API_ON_REDIS_ERROR")
        }
        #expect(mode?.variable == "RATE_LIMIT_API_ON_REDIS_ERROR")
        #expect(mode?.reason == "must be allow, deny or local; got 'maybe'")

        let required = Self.configurationError { () throws(ConfigurationError) in
            _ = try SettingsReader(settings: [Setting("RATE_LIMIT_X", nil, "")], environment: [:]).rateLimit("RATE_LIMIT_X", policyName: "x")
        }
        #expect(required?.variable == "RATE_LIMIT_X")
    }
}
