import Testing

@testable import Shared
@testable import Security

@Suite struct PasswordHasherTests {
    /// Cheap parameters so the suite stays fast; one test below uses the defaults.
    private static let fast = ScryptParameters(logN: 10, r: 8, p: 1)!
    private let hasher = PasswordHasher(parameters: fast)

    /// Computed independently with Python's hashlib.scrypt.
    private static let knownHash = "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M"

    @Test func rfc7914Vector() throws {
        let parameters = try #require(ScryptParameters(logN: 10, r: 8, p: 16))
        let key = try PasswordHasher.derive(
            password: Array("password".utf8), salt: Array("NaCl".utf8), parameters: parameters, length: 64)
        let expected: [UInt8] = [
            0xfd, 0xba, 0xbe, 0x1c, 0x9d, 0x34, 0x72, 0x00, 0x78, 0x56, 0xe7, 0x19, 0x0d, 0x01, 0xe9, 0xfe,
            0x7c, 0x6a, 0xd7, 0xcb, 0xc8, 0x23, 0x78, 0x30, 0xe7, 0x73, 0x76, 0x63, 0x4b, 0x37, 0x31, 0x62,
            0x2e, 0xaf, 0x30, 0xd9, 0x2e, 0x22, 0xa3, 0x88, 0x6f, 0xf1, 0x09, 0x27, 0x9d, 0x98, 0x30, 0xda,
            0xc7, 0x27, 0xaf, 0xb9, 0x4a, 0x83, 0xee, 0x6d, 0x83, 0x60, 0xcb, 0xdf, 0xa2, 0xcc, 0x06, 0x40,
        ]
        #expect(key == expected)
        // The same vector as a PHC string verifies through the public API (64-byte key).
        let encoded = "$scrypt$ln=10,r=8,p=16$" + Base64.encodeUnpadded(Array("NaCl".utf8)) + "$" + Base64.encodeUnpadded(expected)
        // "NaCl" is 4 bytes, shorter than the 8-byte minimum salt this service accepts.
        #expect(!hasher.verify("password", against: encoded))
    }

    @Test func verifiesAnIndependentlyComputedHash() {
        #expect(hasher.verify("correct horse", against: Self.knownHash))
        #expect(!hasher.verify("correct horse ", against: Self.knownHash))
        #expect(!hasher.needsRehash(Self.knownHash))
    }

    @Test func roundTrip() throws {
        let encoded = try hasher.hash("s3cret pässwörd 🔑")
        #expect(encoded.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
        let fields = encoded.split(separator: "$", omittingEmptySubsequences: false)
        #expect(fields.count == 5)
        #expect(fields[3].utf8.count == 22)  // 16-byte salt
        #expect(fields[4].utf8.count == 43)  // 32-byte key
        #expect(hasher.verify("s3cret pässwörd 🔑", against: encoded))
        #expect(!hasher.verify("s3cret pässwörd", against: encoded))
        #expect(!hasher.verify("", against: encoded))
    }

    @Test func emptyAndLongPasswords() throws {
        let empty = try hasher.hash("")
        #expect(hasher.verify("", against: empty))
        #expect(!hasher.verify(" ", against: empty))
        let long = String(repeating: "x", count: 10_000)
        #expect(hasher.verify(long, against: try hasher.hash(long)))
    }

    @Test func saltsDiffer() throws {
        let first = try hasher.hash("same")
        let second = try hasher.hash("same")
        #expect(first != second)
        #expect(hasher.verify("same", against: first))
        #expect(hasher.verify("same", against: second))
    }

    @Test func parametersComeFromTheStoredString() throws {
        let other = try #require(ScryptParameters(logN: 11, r: 4, p: 2))
        let encoded = try PasswordHasher(parameters: other).hash("pw")
        #expect(encoded.hasPrefix("$scrypt$ln=11,r=4,p=2$"))
        #expect(hasher.verify("pw", against: encoded))
        #expect(hasher.needsRehash(encoded))
        #expect(!PasswordHasher(parameters: other).needsRehash(encoded))
    }

    @Test(arguments: [
        "", "$scrypt$", "scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$argon2id$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=9,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=21,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=10,r=0,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=10,r=33,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=10,r=8,p=17$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=010,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$r=8,ln=10,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=10,r=8$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=10,r=8,p=1,x=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=+10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg==$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M=",
        "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZh$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF-uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=10,r=8,p=1$MDEy$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaT",
        "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$",
        "$scrypt$ln=10,r=8,p=1$$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M$",
        " $scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
        "$scrypt$ln=20,r=32,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6g3umF+uVrJsObaTZhIbbTlgrvOEFcCItdwSjtPF67M",
    ])
    func malformedHashesNeverVerify(_ encoded: String) {
        #expect(!hasher.verify("correct horse", against: encoded))
        #expect(hasher.needsRehash(encoded))
    }

    @Test func parameterParsing() {
        #expect(ScryptParameters(phcParameters: "ln=17,r=8,p=1") == .default)
        #expect(ScryptParameters(phcParameters: "ln=10,r=1,p=16") == ScryptParameters(logN: 10, r: 1, p: 16))
        #expect(ScryptParameters(phcParameters: "ln=20,r=8,p=1") != nil)  // exactly 1 GiB
        #expect(ScryptParameters(phcParameters: "ln=20,r=9,p=1") == nil)  // over the memory cap
        for bad in ["", "ln=17", "ln=17,r=8,p=1,", "ln=17,r=8,p=01", "ln=17,r=8,p=", "ln=17,r=8,p=x", "LN=17,r=8,p=1",
            "ln=17,r=8,p=1 ", "ln=١٧,r=8,p=1", "ln=9999999999999999999999,r=8,p=1"]
        {
            #expect(ScryptParameters(phcParameters: bad[...]) == nil, "\(bad)")
        }
        #expect(ScryptParameters(logN: 9, r: 8, p: 1) == nil)
        #expect(ScryptParameters(logN: 10, r: 8, p: 0) == nil)
        #expect(ScryptParameters.default.description == "ln=17,r=8,p=1")
        #expect(ScryptParameters.default.memoryBytes == 128 << 20)
    }

    @Test func verifyWithoutAccountIsAlwaysFalse() {
        #expect(!hasher.verifyWithoutAccount("anything"))
        #expect(!hasher.verifyWithoutAccount(""))
    }

    @Test func defaultParametersWork() throws {
        let standard = PasswordHasher()
        let clock = ContinuousClock()
        var encoded = ""
        let hashTime = try clock.measure { encoded = try standard.hash("default cost") }
        let verifyTime = clock.measure { #expect(standard.verify("default cost", against: encoded)) }
        #expect(encoded.hasPrefix("$scrypt$ln=17,r=8,p=1$"))
        #expect(!standard.needsRehash(encoded))
        print("scrypt ln=17,r=8,p=1: hash \(hashTime), verify \(verifyTime)")
    }
}
