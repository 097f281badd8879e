/// Incremental UTF-8 validation (RFC 3629) as a small deterministic automaton.
///
/// The state survives between calls, so a text message can be checked piece by piece as its frames
/// and fragments arrive, and a character split across two pieces is handled. It rejects at the first
/// byte that no valid continuation could follow (overlong forms, surrogates, code points above
/// U+10FFFF, stray continuation bytes), which is what lets the WebSocket parser fail fast with 1007.
/// Runs of ASCII are skipped eight bytes at a time.
package struct UTF8Validator: Sendable, Equatable {
    /// Automaton states. `accept` is a character boundary; `reject` is sticky.
    private enum State {
        static let accept: UInt8 = 0
        static let reject: UInt8 = 1
        /// One continuation byte (80-BF) still expected.
        static let needOne: UInt8 = 2
        /// Two continuation bytes expected.
        static let needTwo: UInt8 = 3
        /// After E0: the next byte must be A0-BF (else the form is overlong).
        static let afterE0: UInt8 = 4
        /// After ED: the next byte must be 80-9F (else a UTF-16 surrogate).
        static let afterED: UInt8 = 5
        /// After F0: the next byte must be 90-BF (else overlong).
        static let afterF0: UInt8 = 6
        /// After F1-F3: any continuation byte, then two more.
        static let afterF1toF3: UInt8 = 7
        /// After F4: the next byte must be 80-8F (else above U+10FFFF).
        static let afterF4: UInt8 = 8
        static let count = 9
    }

    /// `transitions[state << 8 | byte]` is the next state: one lookup per non-ASCII byte.
    private static let transitions: [UInt8] = {
        var table = [UInt8](repeating: State.reject, count: State.count << 8)
        for state in 0..<UInt8(State.count) {
            for byte in 0...UInt8.max {
                table[Int(state) << 8 | Int(byte)] = step(state, byte)
            }
        }
        return table
    }()

    /// The transition function the table is built from, written out by the rules of RFC 3629 §4.
    private static func step(_ state: UInt8, _ byte: UInt8) -> UInt8 {
        func within(_ range: ClosedRange<UInt8>, then next: UInt8) -> UInt8 {
            range.contains(byte) ? next : State.reject
        }
        switch state {
        case State.accept:
            switch byte {
            case 0x00...0x7F: return State.accept
            case 0xC2...0xDF: return State.needOne
            case 0xE0: return State.afterE0
            case 0xE1...0xEC, 0xEE...0xEF: return State.needTwo
            case 0xED: return State.afterED
            case 0xF0: return State.afterF0
            case 0xF1...0xF3: return State.afterF1toF3
            case 0xF4: return State.afterF4
            default: return State.reject  // 80-BF stray continuation, C0/C1 overlong, F5-FF
            }
        case State.needOne: return within(0x80...0xBF, then: State.accept)
        case State.needTwo: return within(0x80...0xBF, then: State.needOne)
        case State.afterE0: return within(0xA0...0xBF, then: State.needOne)
        case State.afterED: return within(0x80...0x9F, then: State.needOne)
        case State.afterF0: return within(0x90...0xBF, then: State.needTwo)
        case State.afterF1toF3: return within(0x80...0xBF, then: State.needTwo)
        case State.afterF4: return within(0x80...0x8F, then: State.needTwo)
        default: return State.reject
        }
    }

    private var state = State.accept

    /// A validator at a character boundary.
    package init() {}

    /// True when the bytes so far end on a character boundary (a complete text is valid).
    package var isComplete: Bool { state == State.accept }

    /// True once some byte made the input invalid; it stays so until `reset()`.
    package var hasFailed: Bool { state == State.reject }

    /// Back to the initial state, for the next message.
    package mutating func reset() {
        state = State.accept
    }

    /// Feeds the next bytes. Returns false as soon as the input so far cannot be the prefix of valid
    /// UTF-8; an incomplete character at the end is fine (check `isComplete` at the end of the text).
    @discardableResult
    package mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard state != State.reject else { return false }
        let count = bytes.count
        guard count > 0, let base = bytes.baseAddress else { return true }
        var current = state
        var index = 0
        Self.transitions.withUnsafeBufferPointer { table in
            while index < count {
                if current == State.accept {
                    // Eight ASCII bytes have no high bit set; skip them in one test.
                    while index + 8 <= count,
                        base.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 == 0
                    {
                        index += 8
                    }
                    while index < count, base.load(fromByteOffset: index, as: UInt8.self) < 0x80 {
                        index += 1
                    }
                    if index == count { break }
                }
                let byte = base.load(fromByteOffset: index, as: UInt8.self)
                current = table[Int(current) << 8 | Int(byte)]
                index += 1
                if current == State.reject { break }
            }
        }
        state = current
        return current != State.reject
    }

    /// Feeds the next bytes from any collection (copied first when not contiguous).
    @discardableResult
    package mutating func validate(_ bytes: some Collection<UInt8>) -> Bool {
        if let result = bytes.withContiguousStorageIfAvailable({ validate(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(bytes).withUnsafeBytes { validate($0) }
    }

    /// True when `bytes` is complete, valid UTF-8.
    package static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        var validator = UTF8Validator()
        return validator.validate(bytes) && validator.isComplete
    }
}
