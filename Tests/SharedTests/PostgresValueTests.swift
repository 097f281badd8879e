import Testing
@testable import Shared

@Suite struct PostgresValueTests {
    @Test func textEncodings() {
        #expect(PostgresValue.string("héllo").textEncoding == "héllo")
        #expect(PostgresValue.int64(-9_223_372_036_854_775_808).textEncoding == "-9223372036854775808")
        #expect(PostgresValue.int(42).textEncoding == "42")
        #expect(PostgresValue.bool(true).textEncoding == "t")
        #expect(PostgresValue.bool(false).textEncoding == "f")
        #expect(PostgresValue.double(0.1).textEncoding == "0.1")
        #expect(PostgresValue.double(1e-5).textEncoding == "1e-05")
        #expect(PostgresValue.double(.infinity).textEncoding == "Infinity")
        #expect(PostgresValue.double(-.infinity).textEncoding == "-Infinity")
        #expect(PostgresValue.double(.nan).textEncoding == "NaN")
        #expect(PostgresValue.bytes([0x00, 0xAB, 0xFF]).textEncoding == "\\x00abff")
        #expect(PostgresValue.bytes([]).textEncoding == "\\x")
    }

    @Test func doublesRoundTripThroughText() {
        for value in [0.1, 1.0 / 3.0, 123_456_789.123_456_78, -2.5e-300, Double.greatestFiniteMagnitude] {
            #expect(Double(PostgresValue.double(value).textEncoding) == value)
        }
    }

    @Test func typeOIDsLetStringsBeInferred() {
        #expect(PostgresValue.string("x").typeOID == 0)
        #expect(PostgresValue.int64(1).typeOID == 20)
        #expect(PostgresValue.double(1).typeOID == 701)
        #expect(PostgresValue.bool(true).typeOID == 16)
        #expect(PostgresValue.bytes([1]).typeOID == 17)
    }

    @Test func literals() {
        let values: [PostgresValue?] = ["a", 7, 2.5, true, nil]
        #expect(values == [.string("a"), .int64(7), .double(2.5), .bool(true), nil])
    }

    @Test func nulCharactersAreRefused() {
        #expect(PostgresValue.string("a\u{0}b").encodingProblem != nil)
        #expect(PostgresValue.string("ab").encodingProblem == nil)
        #expect(PostgresValue.bytes([0]).encodingProblem == nil)
    }

    @Test func byteaHexRoundTrip() {
        let all = (0...255).map { UInt8($0) }
        #expect(PostgresBytea.decodeHex(PostgresBytea.encodeHex(all)) == all)
        #expect(PostgresBytea.decodeHex("\\xDEADbeef") == [0xDE, 0xAD, 0xBE, 0xEF])
        #expect(PostgresBytea.decodeHex("\\x") == [])
        #expect(PostgresBytea.decodeHex("\\x0") == nil)
        #expect(PostgresBytea.decodeHex("\\xzz") == nil)
        #expect(PostgresBytea.decodeHex("abc") == nil)
        #expect(PostgresBytea.decodeHex("\\001") == nil)
    }
}
