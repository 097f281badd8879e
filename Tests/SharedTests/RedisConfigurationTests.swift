import Testing
@testable import Shared

/// `redis://` URL parsing: accepted forms, defaults, percent-decoding, and clear refusals.
@Suite struct RedisConfigurationTests {
    @Test func hostOnlyUsesDefaults() throws {
        let configuration = try RedisConfiguration(url: "redis://cache.internal")
        #expect(configuration.host == "cache.internal")
        #expect(configuration.port == 6379)
        #expect(configuration.database == 0)
        #expect(configuration.username == nil)
        #expect(configuration.password == nil)
        #expect(configuration.connectTimeout == .seconds(2))
        #expect(configuration.commandTimeout == .seconds(5))
        #expect(configuration.backoff == RedisBackoff(minimum: .milliseconds(100), maximum: .milliseconds(5_000), jitter: 0.5))
    }

    @Test func fullFormWithUserPasswordPortAndDatabase() throws {
        let configuration = try RedisConfiguration(url: "redis://app:s3cret@10.0.0.5:6380/3")
        #expect(configuration.host == "10.0.0.5")
        #expect(configuration.port == 6380)
        #expect(configuration.database == 3)
        #expect(configuration.username == "app")
        #expect(configuration.password == "s3cret")
    }

    @Test func passwordOnlyAndPercentDecoding() throws {
        let configuration = try RedisConfiguration(url: "redis://:p%40ss%3Aw%2Fo%25rd@localhost/")
        #expect(configuration.username == nil)
        #expect(configuration.password == "p@ss:w/o%rd")
        #expect(configuration.host == "localhost")
        #expect(configuration.database == 0)
    }

    @Test func unencodedAtInPasswordIsTolerated() throws {
        let configuration = try RedisConfiguration(url: "redis://:a@b@host:1")
        #expect(configuration.password == "a@b")
        #expect(configuration.host == "host")
        #expect(configuration.port == 1)
    }

    @Test func schemeIsCaseInsensitive() throws {
        #expect(try RedisConfiguration(url: "REDIS://h").host == "h")
    }

    @Test func bracketedIPv6() throws {
        let configuration = try RedisConfiguration(url: "redis://[::1]:7000/2")
        #expect(configuration.host == "::1")
        #expect(configuration.port == 7000)
        #expect(configuration.database == 2)
        #expect(configuration.endpointDescription == "[::1]:7000")
        #expect(try RedisConfiguration(url: "redis://[fe80::1]").port == 6379)
    }

    @Test(arguments: [
        "http://localhost",
        "unix:///tmp/redis.sock",
        "localhost:6379",
        "redis://",
        "redis://:6379",
        "redis://host:0",
        "redis://host:65536",
        "redis://host:abc",
        "redis://host:",
        "redis://host/x",
        "redis://host/1/2",
        "redis://host?db=1",
        "redis://host#frag",
        "redis://user@host",
        "redis://user:@host",
        "redis://:%zz@host",
        "redis://:%4@host",
        "redis://:%ff@host",
        "redis://::1:6379",
        "redis://[::1",
        "redis://[nothost]:1",
        "redis://[::1]x",
        "redis://ho st",
        "redis://host$name",
    ])
    func refusesMalformedURLs(url: String) {
        #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
    }

    @Test func errorsExplainAndNeverEchoThePassword() {
        do {
            _ = try RedisConfiguration(url: "redis://:hunter2@host:99999")
            Issue.record("expected an error")
        } catch {
            guard case .invalidURL(let reason) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(reason.contains("port"))
            #expect(!error.message.contains("hunter2"))
            #expect(error.message.contains("redis://[[user]:password@]host[:port][/db]"))
            #expect(error.message.contains("redis+sentinel://"))
            #expect(error.code == "redis_invalid_url")
        }

    }

    @Test func errorCodesAreDistinct() {
        let errors: [RedisError] = [.unavailable, .timeout, .connectionLost, .server("x"), .invalidURL("x"), .protocolError("x")]
        #expect(Set(errors.map(\.code)).count == errors.count)
        #expect(RedisError.unavailable.code == "redis_unavailable")
        #expect(RedisError.server("WRONGTYPE bad").message.contains("WRONGTYPE bad"))
    }

    // MARK: redis+sentinel:// (issue 18)

    @Test func sentinelURLNamesTheSentinelsThePrimaryAndTheDatabase() throws {
        let configuration = try RedisConfiguration(url: "redis+sentinel://:s%40cret@10.0.0.1,sentinel-2:26380,[fd00::3]/my%20primary/2")
        #expect(configuration.sentinel == RedisSentinelConfiguration(nodes: [
            .init(host: "10.0.0.1", port: 26379), .init(host: "sentinel-2", port: 26380), .init(host: "fd00::3", port: 26379),
        ], primaryName: "my primary"))
        #expect(configuration.password == "s@cret")
        #expect(configuration.database == 2)
        let plain = try RedisConfiguration(url: "REDIS+SENTINEL://s1/mymaster")
        #expect(plain.sentinel?.primaryName == "mymaster")
        #expect(plain.database == 0)
        #expect(try RedisConfiguration(url: "redis://h").sentinel == nil)
    }

    @Test(arguments: [
        "redis+sentinel://s1",            // no primary name
        "redis+sentinel://s1/",           // empty primary name
        "redis+sentinel://s1/m/0/extra",  // too many path parts
        "redis+sentinel://s1/m/x",        // database not a number
        "redis+sentinel://s1,,s2/m",      // empty host
        "redis+sentinel://s1:0/m",        // port out of range
        "redis+sentinel://s1/m?x=1",      // query
        "redis+sentinel:///m",            // no sentinel at all
    ])
    func refusesMalformedSentinelURLs(url: String) {
        #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
    }

    @Test func aSentinelURLListsAtMostSixteenSentinels() throws {
        let hosts = (1...17).map { "s\($0)" }.joined(separator: ",")
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "redis+sentinel://\(hosts)/m") }
        _ = try RedisConfiguration(url: "redis+sentinel://\((1...16).map { "s\($0)" }.joined(separator: ","))/m")
    }

    @Test func redissAsksForTLSWithTheSystemsAuthoritiesAndRedissSentinelForTheSentinelsToo() throws {
        let plain = try RedisConfiguration(url: "rediss://:pw@cache.example.com:6380/1")
        #expect(plain.tls == RedisTLSConfiguration())
        #expect(plain.host == "cache.example.com" && plain.port == 6380 && plain.database == 1 && plain.password == "pw")
        #expect(try RedisConfiguration(url: "redis://cache").tls == nil)
        let sentinel = try RedisConfiguration(url: "rediss+sentinel://s1,s2/mymaster")
        #expect(sentinel.tls == RedisTLSConfiguration())
        #expect(sentinel.sentinel?.nodes.count == 2)
        #expect(try RedisConfiguration(url: "redis+sentinel://s1/m").tls == nil)
    }
}
