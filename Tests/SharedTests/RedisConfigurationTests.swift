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
        "rediss://localhost",
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
            #expect(error.code == "redis_invalid_url")
        }
        #expect(throws: RedisError.invalidURL("TLS (rediss://) is not supported; use redis:// on a private network")) {
            try RedisConfiguration(url: "rediss://x")
        }
    }

    @Test func errorCodesAreDistinct() {
        let errors: [RedisError] = [.unavailable, .timeout, .connectionLost, .server("x"), .invalidURL("x"), .protocolError("x")]
        #expect(Set(errors.map(\.code)).count == errors.count)
        #expect(RedisError.unavailable.code == "redis_unavailable")
        #expect(RedisError.server("WRONGTYPE bad").message.contains("WRONGTYPE bad"))
    }
}
