import Testing

@testable import Shared
@testable import JSON

@Suite struct ISO8601TimestampTests {
    private static let knownInstants: [(String, Int64)] = [
        ("1970-01-01T00:00:00.000Z", 0),
        ("2024-01-15T10:30:00.000Z", 1_705_314_600_000),
        ("2038-01-19T03:14:07.000Z", 2_147_483_647_000),
        ("2038-01-19T03:14:08.000Z", 2_147_483_648_000),
        ("2024-02-29T00:00:00.000Z", 1_709_164_800_000),
        ("2000-02-29T12:00:00.000Z", 951_825_600_000),
        ("1900-03-01T00:00:00.000Z", -2_203_891_200_000),
        ("2100-02-28T23:59:59.000Z", 4_107_542_399_000),
        ("1969-07-20T20:17:40.000Z", -14_182_940_000),
        ("1969-12-31T23:59:59.999Z", -1),
        ("0001-01-01T00:00:00.000Z", -62_135_596_800_000),
        ("0000-01-01T00:00:00.000Z", -62_167_219_200_000),
        ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
        ("2024-01-15T10:30:00.123Z", 1_705_314_600_123),
    ]

    @Test func formatsKnownInstants() {
        for (text, milliseconds) in Self.knownInstants {
            #expect(ISO8601.format(millisecondsSinceEpoch: milliseconds) == text)
        }
    }

    @Test func parsesKnownInstants() {
        for (text, milliseconds) in Self.knownInstants {
            #expect(ISO8601.parse(text) == milliseconds, "\(text)")
        }
    }

    @Test func expandedYearsOutsideFourDigits() {
        #expect(ISO8601.format(millisecondsSinceEpoch: 8_640_000_000_000_000) == "+275760-09-13T00:00:00.000Z")
        #expect(ISO8601.format(millisecondsSinceEpoch: -62_167_219_200_001) == "-000001-12-31T23:59:59.999Z")
        // The extremes must not trap.
        #expect(ISO8601.format(millisecondsSinceEpoch: .max).hasPrefix("+292278994-"))
        #expect(ISO8601.format(millisecondsSinceEpoch: .min).hasPrefix("-292275055-"))
    }

    @Test func roundTripsAcrossEras() {
        var value: Int64 = -62_167_219_200_000
        var generator = SplitMix(seed: 42)
        while value < 253_402_300_799_999 {
            let text = ISO8601.format(millisecondsSinceEpoch: value)
            #expect(ISO8601.parse(text) == value, "\(text)")
            value += Int64(generator.next() % 2_000_000_000_000)
        }
    }

    @Test func everyDayOfALeapAndACommonYearRoundTrips() {
        for year: Int64 in [1900, 2000, 2023, 2024] {
            let start = ISO8601.daysFromCivil(year: year, month: 1, day: 1)
            let end = ISO8601.daysFromCivil(year: year + 1, month: 1, day: 1)
            #expect(end - start == (ISO8601.isLeapYear(year) ? 366 : 365))
            for day in start..<end {
                let civil = ISO8601.civil(fromDays: day)
                #expect(ISO8601.daysFromCivil(year: civil.year, month: civil.month, day: civil.day) == day)
            }
        }
    }

    @Test func acceptedVariants() {
        #expect(ISO8601.parse("2024-01-15T10:30:00Z") == 1_705_314_600_000)
        #expect(ISO8601.parse("2024-01-15T10:30:00.1Z") == 1_705_314_600_100)
        #expect(ISO8601.parse("2024-01-15T10:30:00.12Z") == 1_705_314_600_120)
        #expect(ISO8601.parse("2024-01-15T10:30:00.123456Z") == 1_705_314_600_123)
        #expect(ISO8601.parse("2024-01-15T10:30:00.999999999Z") == 1_705_314_600_999)
        #expect(ISO8601.parse("2024-01-15T11:30:00+01:00") == 1_705_314_600_000)
        #expect(ISO8601.parse("2024-01-15T05:00:00-05:30") == 1_705_314_600_000)
        #expect(ISO8601.parse("2024-01-15T10:30:00.000+00:00") == 1_705_314_600_000)
    }

    @Test(arguments: [
        "", "2024-01-15", "2024-01-15T10:30:00", "2024-01-15 10:30:00Z", "2024-01-15t10:30:00z",
        "2024-1-15T10:30:00Z", "24-01-15T10:30:00Z", "2024-13-01T00:00:00Z", "2024-00-01T00:00:00Z",
        "2024-01-00T00:00:00Z", "2024-01-32T00:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z", "2024-01-15T24:00:00Z", "2024-01-15T10:60:00Z", "2024-01-15T10:30:60Z",
        "2024-01-15T10:30:00.Z", "2024-01-15T10:30:00.1234567890Z", "2024-01-15T10:30:00.000Zx",
        "2024-01-15T10:30:00+0100", "2024-01-15T10:30:00+24:00", "2024-01-15T10:30:00+01:60",
        "+2024-01-15T10:30:00Z", "2024-01-15T10:30:00.000 Z", "２０２４-01-15T10:30:00Z",
    ])
    func rejects(_ text: String) {
        #expect(ISO8601.parse(text) == nil)
    }

    @Test func wallClockIsPlausible() {
        let milliseconds = WallClock.milliseconds()
        let seconds = WallClock.seconds()
        #expect(milliseconds > 1_700_000_000_000)
        #expect(abs(milliseconds / 1000 - seconds) <= 1)
    }
}

/// A tiny deterministic generator so failures reproduce.
private struct SplitMix {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
