import Testing
@testable import Shared
@testable import Redis

/// Argument vectors: flat storage, binary safety, and their RESP encoding.
@Suite struct RedisCommandTests {
    @Test func textAndBytesBuildTheSameVector() {
        var mixed = RedisCommand(["SET", "k"])
        mixed.append(bytes: [0, 255, 10])
        #expect(mixed.count == 3)
        #expect(mixed.arguments == [Array("SET".utf8), Array("k".utf8), [0, 255, 10]])
        #expect(mixed == RedisCommand([Array("SET".utf8), Array("k".utf8), [0, 255, 10]]))
        #expect(mixed.name.map(Array.init) == Array("SET".utf8))
    }

    @Test func respWritesEachArgumentWithItsLength() {
        var buffer: [UInt8] = []
        RedisCommand([[1, 2, 3], [], Array("é".utf8), [0x0D, 0x0A]]).appendRESP(to: &buffer)
        #expect(buffer == Array("*4\r\n$3\r\n".utf8) + [1, 2, 3] + Array("\r\n$0\r\n\r\n$2\r\n".utf8) + [0xC3, 0xA9]
            + Array("\r\n$2\r\n".utf8) + [0x0D, 0x0A] + Array("\r\n".utf8))
        RedisCommand(["PING"]).appendRESP(to: &buffer)
        #expect(buffer.suffix(14) == ArraySlice(Array("*1\r\n$4\r\nPING\r\n".utf8)))
        var long: [UInt8] = []
        RedisCommand([[UInt8](repeating: 7, count: 1234)]).appendRESP(to: &long)
        #expect(long.prefix(11) == ArraySlice(Array("*1\r\n$1234\r\n".utf8)))
        #expect(long.count == 11 + 1234 + 2)
    }

    @Test func emptyCommandHasNoName() {
        var buffer: [UInt8] = []
        RedisCommand().appendRESP(to: &buffer)
        #expect(buffer == Array("*0\r\n".utf8))
        #expect(RedisCommand().name == nil)
    }

    // MARK: Builders: each sends exactly the arguments the product sent as a literal array before.

    @Test func xaddAppendsWithAnAutomaticID() {
        let fields = ["v", "1", "type", "send", "user", "7", "body", "{}"]
        #expect(RedisCommand.xadd("chat:cmd", fields: fields) == RedisCommand(["XADD", "chat:cmd", "*"] + fields))
    }

    @Test func xaddWithApproximateCapAndBinaryFields() {
        var command = RedisCommand.xadd("chat:cmd:dead", maxLength: .approximately(100_000), fields: [
            "origin", "1-0", "reason", "bad", "deliveries", "6", "consumer", "w1",
        ])
        command.appendField("body", value: [0, 255])
        var expected = RedisCommand([
            "XADD", "chat:cmd:dead", "MAXLEN", "~", "100000", "*",
            "origin", "1-0", "reason", "bad", "deliveries", "6", "consumer", "w1",
        ])
        expected.append("body")
        expected.append(bytes: [0, 255])
        #expect(command == expected)
    }

    @Test func consumerGroupCommands() {
        #expect(RedisCommand.xreadgroup(group: "workers", consumer: "w1", count: 128, block: .milliseconds(2_000), stream: "chat:cmd", id: ">")
            == RedisCommand(["XREADGROUP", "GROUP", "workers", "w1", "COUNT", "128", "BLOCK", "2000", "STREAMS", "chat:cmd", ">"]))
        #expect(RedisCommand.xreadgroup(group: "workers", consumer: "w1", count: 64, block: .seconds(2),
                                        streams: [("chat:cmd:{s1}", ">"), ("chat:cmd:{s7}", "0")])
            == RedisCommand(["XREADGROUP", "GROUP", "workers", "w1", "COUNT", "64", "BLOCK", "2000", "STREAMS",
                             "chat:cmd:{s1}", "chat:cmd:{s7}", ">", "0"]))
        #expect(RedisCommand.xack("chat:cmd", group: "workers", ids: ["1-0", "2-0"])
            == RedisCommand(["XACK", "chat:cmd", "workers", "1-0", "2-0"]))
        #expect(RedisCommand.xautoclaim("chat:cmd", group: "workers", consumer: "w1", minIdle: .milliseconds(30_000), start: "0-0", count: 128)
            == RedisCommand(["XAUTOCLAIM", "chat:cmd", "workers", "w1", "30000", "0-0", "COUNT", "128"]))
        #expect(RedisCommand.xclaimJustID("chat:cmd", group: "workers", consumer: "w1", minIdle: .milliseconds(0), ids: ["1-0", "2-0"])
            == RedisCommand(["XCLAIM", "chat:cmd", "workers", "w1", "0", "1-0", "2-0", "JUSTID"]))
        #expect(RedisCommand.xgroupCreate("chat:cmd", group: "workers", startID: "0", makeStream: true)
            == RedisCommand(["XGROUP", "CREATE", "chat:cmd", "workers", "0", "MKSTREAM"]))
        #expect(RedisCommand.xgroupCreate("chat:cmd", group: "workers", startID: "$", makeStream: false)
            == RedisCommand(["XGROUP", "CREATE", "chat:cmd", "workers", "$"]))
    }

    @Test func streamInspectionAndTrimming() {
        #expect(RedisCommand.xpending("chat:cmd", group: "workers") == RedisCommand(["XPENDING", "chat:cmd", "workers"]))
        #expect(RedisCommand.xpending("chat:cmd", group: "workers", start: "5-1", end: "5-1", count: 1)
            == RedisCommand(["XPENDING", "chat:cmd", "workers", "5-1", "5-1", "1"]))
        #expect(RedisCommand.xinfoGroups("chat:cmd") == RedisCommand(["XINFO", "GROUPS", "chat:cmd"]))
        #expect(RedisCommand.xtrim("chat:cmd", minID: "5-0") == RedisCommand(["XTRIM", "chat:cmd", "MINID", "5-0"]))
        #expect(RedisCommand.xlen("chat:cmd") == RedisCommand(["XLEN", "chat:cmd"]))
    }

    @Test func publishAndSubscriptions() {
        var published = RedisCommand(["PUBLISH", "chat:user:1"])
        published.append(bytes: Array(#"{"event":"x"}"#.utf8))
        #expect(RedisCommand.publish("chat:user:1", payload: Array(#"{"event":"x"}"#.utf8)) == published)
        #expect(RedisCommand.subscribe(["a", "b"]) == RedisCommand(["SUBSCRIBE", "a", "b"]))
        #expect(RedisCommand.unsubscribe(["a", "b", "c"].dropFirst()) == RedisCommand(["UNSUBSCRIBE", "b", "c"]))
    }

    @Test func keyCommands() {
        #expect(RedisCommand.set("chat:revoked:j", "1", expireSeconds: 900) == RedisCommand(["SET", "chat:revoked:j", "1", "EX", "900"]))
        #expect(RedisCommand.exists(["a"]) == RedisCommand(["EXISTS", "a"]))
        #expect(RedisCommand.exists(["a", "b"]) == RedisCommand(["EXISTS", "a", "b"]))
        #expect(RedisCommand.setIfAbsent("chat:lease:{s3}", "w1", expire: .seconds(9))
                == RedisCommand(["SET", "chat:lease:{s3}", "w1", "NX", "PX", "9000"]))
        #expect(RedisCommand.setIfAbsent("k", "v", expire: .zero) == RedisCommand(["SET", "k", "v", "NX", "PX", "1"]))
        #expect(RedisCommand.get("k") == RedisCommand(["GET", "k"]))
    }

    @Test func connectionCommands() {
        #expect(RedisCommand.ping() == RedisCommand(["PING"]))
        #expect(RedisCommand.auth(username: "app", password: "secret") == RedisCommand(["AUTH", "app", "secret"]))
        #expect(RedisCommand.auth(username: nil, password: "secret") == RedisCommand(["AUTH", "secret"]))
        #expect(RedisCommand.select(database: 3) == RedisCommand(["SELECT", "3"]))
        #expect(RedisCommand.clientSetName("gateway-1") == RedisCommand(["CLIENT", "SETNAME", "gateway-1"]))
    }

    @Test func scriptCommands() {
        #expect(RedisCommand.evalsha("abc", keys: ["k1", "k2"], arguments: ["x", "y"])
            == RedisCommand(["EVALSHA", "abc", "2", "k1", "k2", "x", "y"]))
        #expect(RedisCommand.eval("return 1", keys: [], arguments: [String]()) == RedisCommand(["EVAL", "return 1", "0"]))
        var binary = RedisCommand(["EVAL", "return 1", "1", "k"])
        binary.append(bytes: [0, 1])
        #expect(RedisCommand.eval("return 1", keys: ["k"], arguments: [[0, 1]]) == binary)
        #expect(RedisCommand.evalsha("abc", keys: ["k"], arguments: [[0, 1]]).arguments
            == [Array("EVALSHA".utf8), Array("abc".utf8), Array("1".utf8), Array("k".utf8), [0, 1]])
    }
}
