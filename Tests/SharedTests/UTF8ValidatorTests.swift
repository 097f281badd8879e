import Testing

@testable import Shared

/// The standard library's verdict on complete input.
private func stdlibAccepts(_ bytes: [UInt8]) -> Bool {
    String(validating: bytes, as: UTF8.self) != nil
}

/// Continuation-byte boundaries and neighbours, enough to hit every range edge of RFC 3629.
private let edgeBytes: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xED, 0xF0, 0xF4, 0xF5, 0xFF]

@Suite struct UTF8ValidatorTests {
    @Test func agreesWithStandardLibraryOnAllOneAndTwoByteInputs() {
        for first in 0...255 {
            #expect(UTF8Validator.isValid([UInt8(first)]) == stdlibAccepts([UInt8(first)]))
            for second in 0...255 {
                let bytes = [UInt8(first), UInt8(second)]
                if UTF8Validator.isValid(bytes) != stdlibAccepts(bytes) {
                    Issue.record("disagree on \(bytes)")
                }
            }
        }
    }

    @Test func agreesOnThreeAndFourByteInputs() {
        for lead in 0xC0...0xFF {
            for second in edgeBytes {
                for third in edgeBytes {
                    let three = [UInt8(lead), second, third]
                    if UTF8Validator.isValid(three) != stdlibAccepts(three) {
                        Issue.record("disagree on \(three)")
                    }
                    for fourth in [UInt8(0x7F), 0x80, 0xBF, 0xC0] {
                        let four = three + [fourth]
                        if UTF8Validator.isValid(four) != stdlibAccepts(four) {
                            Issue.record("disagree on \(four)")
                        }
                    }
                }
            }
        }
    }

    @Test func rejectsAtTheFirstImpossibleByte() {
        // Overlong, surrogate, above U+10FFFF, invalid lead, stray continuation: the byte that makes
        // the input impossible is the last one fed.
        for prefix: [UInt8] in [[0xC0], [0xC1], [0xF5], [0xFF], [0x80], [0xE0, 0x9F], [0xED, 0xA0], [0xF0, 0x8F], [0xF4, 0x90], [0xE2, 0x41]] {
            var validator = UTF8Validator()
            let head = validator.validate(prefix.dropLast())
            #expect(head, "\(prefix) is fine until its last byte")
            let last = validator.validate(prefix.suffix(1))
            #expect(!last, "\(prefix) rejected at its last byte")
            #expect(validator.hasFailed)
            let after = validator.validate([0x41])
            #expect(!after, "rejection is sticky")
        }
    }

    @Test func carriesStateAcrossPieces() {
        let text = Array("aé€😀 mixed ASCII and ünïcødé, long enough for the 8-byte path".utf8)
        for cut in 0...text.count {
            var validator = UTF8Validator()
            let first = validator.validate(text[..<cut])
            let second = validator.validate(text[cut...])
            #expect(first && second && validator.isComplete)
        }
        var partial = UTF8Validator()
        let prefixAccepted = partial.validate([0xF0, 0x9F])
        #expect(prefixAccepted && !partial.isComplete)
        partial.reset()
        #expect(partial.isComplete)
    }

    @Test func asciiFastPathSeesEveryByte() {
        for length in 1...40 {
            for position in 0..<length {
                var bytes = [UInt8](repeating: 0x61, count: length)
                bytes[position] = 0x80
                #expect(!UTF8Validator.isValid(bytes), "stray continuation at \(position) of \(length)")
                bytes[position] = 0xC3
                if position + 1 < length {
                    bytes[position + 1] = 0xA9
                    #expect(UTF8Validator.isValid(bytes), "é at \(position) of \(length)")
                } else {
                    #expect(!UTF8Validator.isValid(bytes), "truncated é at the end of \(length)")
                }
            }
        }
    }
}
