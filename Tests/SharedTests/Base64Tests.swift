import Testing

@testable import Shared

@Suite struct Base64Tests {
    /// RFC 4648 section 10.
    private static let vectors: [(String, String)] = [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ]

    @Test func rfc4648Vectors() {
        for (plain, encoded) in Self.vectors {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
            #expect(Base64.decode(encoded) == Array(plain.utf8))
            let unpadded = String(encoded.prefix { $0 != "=" })
            #expect(Base64.encodeUnpadded(Array(plain.utf8)) == unpadded)
            #expect(Base64.decodeUnpadded(unpadded) == Array(plain.utf8))
            #expect(Base64URL.encode(Array(plain.utf8)) == unpadded)
            #expect(Base64URL.decode(unpadded) == Array(plain.utf8))
        }
    }

    @Test func alphabetsDiffer() {
        let bytes: [UInt8] = [0xFB, 0xFF, 0xBF]
        #expect(Base64.encode(bytes) == "+/+/")
        #expect(Base64URL.encode(bytes) == "-_-_")
        #expect(Base64.encode([0xFB, 0xFF]) == "+/8=")
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
        #expect(Base64URL.decode("+/8") == nil)
        #expect(Base64.decode("-_8=") == nil)
    }

    @Test func allByteValuesRoundTrip() {
        var generator = LinearCongruential(seed: 7)
        for length in 0...70 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
            #expect(Base64.decodeUnpadded(Base64.encodeUnpadded(bytes)) == bytes)
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
        let all = (0...255).map { UInt8($0) }
        #expect(Base64URL.decode(Base64URL.encode(all)) == all)
    }

    @Test(arguments: [
        "Zg", "Zm8", "Zg=", "Zg===", "Z===", "====", "Zg=A", "Zm9v=", "Zm9v====", "Zh==", "Zm9=",
        "Zm9v\n", " Zm9v", "Zm 9v", "Zm9*", "Zm-_", "Z", "Zm9vY",
    ])
    func standardDecodingIsStrict(_ text: String) {
        #expect(Base64.decode(text) == nil)
    }

    @Test(arguments: [
        "Zg==", "Zm8=", "Z", "Zm9vY", "Zh", "Zm9", "Zm+v", "Zm/v", "Zm9v\n", "Zm9v ", "Zm.9", "Zg=",
        "é",
    ])
    func urlDecodingIsStrict(_ text: String) {
        #expect(Base64URL.decode(text) == nil)
    }

    @Test func unpaddedStandardRejectsPadding() {
        #expect(Base64.decodeUnpadded("Zg==") == nil)
        #expect(Base64.decodeUnpadded("Zh") == nil)
        #expect(Base64.decodeUnpadded("Zg") == [0x66])
    }

    @Test func decodesFromBytes() {
        #expect(Base64URL.decode(bytes: Array("Zm9vYmFy".utf8)[...]) == Array("foobar".utf8))
    }
}

private struct LinearCongruential {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 33
    }
}
