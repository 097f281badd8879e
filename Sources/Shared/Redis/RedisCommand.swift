/// One command as an argument vector, stored flat: every argument's bytes back to back plus their
/// lengths, so handing it to `redisAsyncCommandArgv` needs one pointer table, not one buffer per argument.
///
/// Binary-safe: arguments are byte strings and never pass through a format string.
package struct RedisCommand: Sendable, Equatable {
    /// All arguments' bytes, concatenated.
    package private(set) var storage: [UInt8] = []
    /// The length of each argument, in order.
    package private(set) var lengths: [Int] = []

    /// An empty command; add arguments with `append`.
    package init() {}

    /// An empty command with room for `count` argument lengths (the builders know their count).
    init(reservingArguments count: Int) {
        lengths.reserveCapacity(count)
    }

    /// A command of text arguments, e.g. `["SET", key, value]`.
    package init(_ arguments: [String]) {
        lengths.reserveCapacity(arguments.count)
        for argument in arguments { append(argument) }
    }

    /// A command of byte-string arguments.
    package init(_ arguments: [[UInt8]]) {
        lengths.reserveCapacity(arguments.count)
        for argument in arguments { append(bytes: argument) }
    }

    /// Appends a text argument (its UTF-8 bytes).
    package mutating func append(_ argument: String) {
        let before = storage.count
        storage.append(contentsOf: argument.utf8)
        lengths.append(storage.count - before)
    }

    /// Appends a byte-string argument.
    package mutating func append(bytes argument: some Collection<UInt8>) {
        storage.append(contentsOf: argument)
        lengths.append(argument.count)
    }

    /// Number of arguments.
    package var count: Int { lengths.count }

    /// The first argument (the command name), without copying the rest.
    package var name: ArraySlice<UInt8>? {
        guard let first = lengths.first else { return nil }
        return storage[0..<first]
    }

    /// The arguments, split again (tests and diagnostics).
    package var arguments: [[UInt8]] {
        var result: [[UInt8]] = []
        var offset = 0
        for length in lengths {
            result.append(Array(storage[offset..<(offset + length)]))
            offset += length
        }
        return result
    }

    /// Calls `body` with hiredis's `argc`, `argv` and `argvlen`, valid only during the call; nil for a
    /// command without arguments.
    func withArgv<R>(
        _ body: (CInt, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R? {
        guard !lengths.isEmpty else { return nil }
        func run(_ base: UnsafePointer<UInt8>) -> R? {
            let raw = UnsafeRawPointer(base)
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(lengths.count)
            var offset = 0
            for length in lengths {
                pointers.append((raw + offset).assumingMemoryBound(to: CChar.self))
                offset += length
            }
            return pointers.withUnsafeMutableBufferPointer { argv -> R? in
                lengths.withUnsafeBufferPointer { argvlen -> R? in
                    guard let argvBase = argv.baseAddress, let lengthBase = argvlen.baseAddress else { return nil }
                    return body(CInt(lengths.count), argvBase, lengthBase)
                }
            }
        }
        return storage.withUnsafeBufferPointer { buffer -> R? in
            if let base = buffer.baseAddress { return run(base) }
            // Every argument is empty: hiredis reads zero bytes, but still wants a valid pointer.
            var placeholder: UInt8 = 0
            return withUnsafePointer(to: &placeholder) { run($0) }
        }
    }
}
