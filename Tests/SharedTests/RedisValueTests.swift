import CHiredis
import Testing
@testable import Shared

/// Converting hiredis replies (built by hand here, as hiredis would) and the convenience accessors.
@Suite struct RedisValueTests {
    /// Owns hand-made `redisReply` trees for the duration of a test.
    final class ReplyArena {
        private var replies: [UnsafeMutablePointer<redisReply>] = []
        private var buffers: [UnsafeMutableRawPointer] = []
        private var tables: [UnsafeMutablePointer<UnsafeMutablePointer<redisReply>?>] = []

        deinit {
            replies.forEach { $0.deallocate() }
            buffers.forEach { $0.deallocate() }
            tables.forEach { $0.deallocate() }
        }

        func make(type: Int32, integer: Int64 = 0, bytes: [UInt8]? = nil, elements: [UnsafeMutablePointer<redisReply>?]? = nil) -> UnsafeMutablePointer<redisReply> {
            let reply = UnsafeMutablePointer<redisReply>.allocate(capacity: 1)
            replies.append(reply)
            reply.initialize(to: redisReply())
            reply.pointee.type = type
            reply.pointee.integer = integer
            if let bytes {
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes.count + 1, alignment: 1)
                buffers.append(buffer)
                buffer.copyMemory(from: bytes + [0], byteCount: bytes.count + 1)
                reply.pointee.str = buffer.assumingMemoryBound(to: CChar.self)
                reply.pointee.len = bytes.count
            }
            if let elements {
                let table = UnsafeMutablePointer<UnsafeMutablePointer<redisReply>?>.allocate(capacity: max(1, elements.count))
                tables.append(table)
                for (index, element) in elements.enumerated() { table[index] = element }
                reply.pointee.element = table
                reply.pointee.elements = elements.count
            }
            return reply
        }
    }

    @Test func scalarRepliesConvert() {
        let arena = ReplyArena()
        #expect(RedisValue(reply: arena.make(type: REDIS_REPLY_INTEGER, integer: -42)) == .integer(-42))
        #expect(RedisValue(reply: arena.make(type: REDIS_REPLY_NIL)) == .null)
        #expect(RedisValue(reply: arena.make(type: REDIS_REPLY_STATUS, bytes: Array("OK".utf8))) == .simpleString("OK"))
        #expect(RedisValue(reply: arena.make(type: REDIS_REPLY_ERROR, bytes: Array("ERR bad".utf8))) == .error("ERR bad"))
        #expect(RedisValue(reply: arena.make(type: 99)) == .error("unsupported reply type 99"))
    }

    @Test func bulkStringsAreBinarySafe() {
        let arena = ReplyArena()
        let all = (0...255).map { UInt8($0) }
        #expect(RedisValue(reply: arena.make(type: REDIS_REPLY_STRING, bytes: all)) == .bulk(all))
        #expect(RedisValue(reply: arena.make(type: REDIS_REPLY_STRING, bytes: [])) == .bulk([]))
    }

    @Test func nestedArraysConvertRecursively() {
        let arena = ReplyArena()
        let inner = arena.make(type: REDIS_REPLY_ARRAY, elements: [
            arena.make(type: REDIS_REPLY_INTEGER, integer: 1),
            arena.make(type: REDIS_REPLY_NIL),
        ])
        let outer = arena.make(type: REDIS_REPLY_ARRAY, elements: [
            arena.make(type: REDIS_REPLY_STRING, bytes: Array("a".utf8)), inner, nil,
        ])
        #expect(RedisValue(reply: outer) == .array([.bulk(Array("a".utf8)), .array([.integer(1), .null]), .null]))
        #expect(RedisValue(reply: arena.make(type: REDIS_REPLY_ARRAY, elements: [])) == .array([]))
    }

    @Test func accessors() {
        #expect(RedisValue.bulk(Array("héllo".utf8)).string == "héllo")
        #expect(RedisValue.bulk([0xFF]).string == nil)
        #expect(RedisValue.simpleString("PONG").string == "PONG")
        #expect(RedisValue.integer(3).string == nil)
        #expect(RedisValue.integer(7).int == 7)
        #expect(RedisValue.bulk(Array("-12".utf8)).int == -12)
        #expect(RedisValue.bulk(Array("1.5".utf8)).int == nil)
        #expect(RedisValue.null.int == nil)
        #expect(RedisValue.array([.null]).array == [.null])
        #expect(RedisValue.bulk([1]).array == nil)
        #expect(RedisValue.bulk([1, 2]).bytes == [1, 2])
        #expect(RedisValue.simpleString("OK").bytes == Array("OK".utf8))
        #expect(RedisValue.null.isNull)
        #expect(RedisValue.error("ERR x").errorMessage == "ERR x")
        #expect(RedisValue.integer(1).errorMessage == nil)
    }
}
