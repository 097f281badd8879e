import Testing

@testable import Shared
@testable import HTTP

@Suite struct HTTPDateTests {
    @Test(arguments: [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (1_700_000_000, "Tue, 14 Nov 2023 22:13:20 GMT"),
        (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 GMT"),
        (4_102_444_800, "Fri, 01 Jan 2100 00:00:00 GMT"),
        (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
    ] as [(Int, String)])
    func formatsIMFFixdate(seconds: Int, expected: String) {
        #expect(HTTPDate.format(secondsSinceEpoch: seconds) == expected)
    }

    @Test func everyDayOfFourHundredYearsIsConsistent() {
        // Day after day, the calendar fields must advance by exactly one day.
        let daysInMonth = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        var previous = HTTPDate.civil(secondsSinceEpoch: 43_200)
        var firstBadDay: Int?
        for day in 1..<146_097 {
            let current = HTTPDate.civil(secondsSinceEpoch: day * 86_400 + 43_200)
            let leap = previous.year % 4 == 0 && (previous.year % 100 != 0 || previous.year % 400 == 0)
            let monthLength = previous.month == 2 && leap ? 29 : daysInMonth[previous.month - 1]
            let expected: (year: Int, month: Int, day: Int)
            if previous.day < monthLength {
                expected = (previous.year, previous.month, previous.day + 1)
            } else if previous.month < 12 {
                expected = (previous.year, previous.month + 1, 1)
            } else {
                expected = (previous.year + 1, 1, 1)
            }
            let consistent = current.weekday == (previous.weekday + 1) % 7
                && (current.year, current.month, current.day) == expected
                && current.hour == 12 && current.minute == 0 && current.second == 0
            if !consistent {
                firstBadDay = day
                break
            }
            previous = current
        }
        #expect(firstBadDay == nil)
        #expect(previous.year == 2369 && previous.month == 12 && previous.day == 31)
    }
}
