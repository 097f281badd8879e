import Testing
@testable import Shared

/// Script digests must match what Redis computes for `SCRIPT LOAD`.
@Suite struct RedisScriptTests {
    @Test func sha1IsLowercaseHexOfTheSource() {
        #expect(RedisScript(source: "return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
        #expect(RedisScript(source: "return redis.call('GET', KEYS[1])").sha1 == "d3c21d0c2b9ca22f82737626a27bcaf5d288f99f")
        #expect(RedisScript(source: "").sha1 == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    }
}
