import Testing
@testable import Shared
@testable import Redis

/// Argument vectors: flat storage, binary safety, and the pointers handed to hiredis.
@Suite struct RedisCommandTests {
    @Test func textAndBytesBuildTheSameVector() {
        var mixed = RedisCommand(["SET", "k"])
        mixed.append(bytes: [0, 255, 10])
        #expect(mixed.count == 3)
        #expect(mixed.arguments == [Array("SET".utf8), Array("k".utf8), [0, 255, 10]])
        #expect(mixed == RedisCommand([Array("SET".utf8), Array("k".utf8), [0, 255, 10]]))
        #expect(mixed.name.map(Array.init) == Array("SET".utf8))
    }

    @Test func argvPointsAtEachArgument() {
        let command = RedisCommand([[1, 2, 3], [], Array("é".utf8), [0]])
        let seen: [[UInt8]]? = command.withArgv { argc, argv, lengths in
            (0..<Int(argc)).map { index in
                guard let pointer = argv[index] else { return [] }
                return Array(UnsafeRawBufferPointer(start: pointer, count: lengths[index]))
            }
        }
        #expect(seen == [[1, 2, 3], [], [0xC3, 0xA9], [0]])
    }

    @Test func allEmptyArgumentsStillGetValidPointers() {
        let command = RedisCommand([[UInt8]](repeating: [], count: 2))
        let result: Bool? = command.withArgv { argc, argv, lengths in
            argc == 2 && argv[0] != nil && argv[1] != nil && lengths[0] == 0 && lengths[1] == 0
        }
        #expect(result == true)
    }

    @Test func emptyCommandHasNoArgv() {
        #expect(RedisCommand().withArgv { _, _, _ in true } == nil)
        #expect(RedisCommand().name == nil)
    }
}
