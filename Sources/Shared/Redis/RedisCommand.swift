/// One command as an argument vector, stored flat: every argument's bytes back to back plus their
/// lengths, written to the socket as RESP by `appendRESP`.
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

    /// Appends the command in RESP, as Redis reads it: `*<count>\r\n`, then `$<length>\r\n<bytes>\r\n`
    /// for each argument (binary-safe: lengths, never delimiters).
    package func appendRESP(to buffer: inout [UInt8]) {
        Self.appendLine(UInt8(ascii: "*"), lengths.count, to: &buffer)
        storage.withUnsafeBufferPointer { bytes in
            var offset = 0
            for length in lengths {
                Self.appendLine(UInt8(ascii: "$"), length, to: &buffer)
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[offset..<(offset + length)]))
                buffer.append(0x0D)
                buffer.append(0x0A)
                offset += length
            }
        }
    }

    /// `<marker><decimal value>\r\n` (values are counts and lengths: never negative). Digits are
    /// written from the most significant down, so no scratch buffer is allocated per argument.
    private static func appendLine(_ marker: UInt8, _ value: Int, to buffer: inout [UInt8]) {
        buffer.append(marker)
        let number = UInt(max(0, value))
        var divisor: UInt = 1
        while number / divisor >= 10 { divisor *= 10 }
        repeat {
            buffer.append(UInt8(ascii: "0") + UInt8(number / divisor % 10))
            divisor /= 10
        } while divisor > 0
        buffer.append(0x0D)
        buffer.append(0x0A)
    }
}
