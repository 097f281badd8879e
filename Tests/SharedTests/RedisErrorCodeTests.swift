import Testing

@testable import Shared

/// Error replies are compared by their typed code, parsed from the reply's first word.
@Suite struct RedisErrorCodeTests {
    @Test func serverRepliesCarryTheirCode() {
        #expect(RedisError.server("NOGROUP No such key 'chat:cmd' or consumer group 'workers'").serverCode == .noGroup)
        #expect(RedisError.server("BUSYGROUP Consumer Group name already exists").serverCode == .busyGroup)
        #expect(RedisError.server("NOSCRIPT No matching script. Please use EVAL.").serverCode == .noScript)
        #expect(RedisError.server("WRONGTYPE Operation against a key holding the wrong kind of value").serverCode == .wrongType)
        #expect(RedisError.server("ERR unknown command 'FOO'").serverCode == .generic)
        #expect(RedisError.server("LOADING Redis is loading the dataset in memory").serverCode == RedisErrorCode("LOADING"))
        #expect(RedisError.server("NOGROUPX").serverCode != .noGroup)
    }

    @Test func otherFailuresHaveNoServerCode() {
        for error in [RedisError.unavailable, .timeout, .connectionLost, .invalidURL("x"), .protocolError("x"), .server("")] {
            #expect(error.serverCode == nil)
        }
    }
}
