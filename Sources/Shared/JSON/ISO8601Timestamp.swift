import Glibc

/// UTC timestamps in the one ISO 8601 shape the API speaks: `2024-01-15T10:30:00.000Z`.
///
/// Pure proleptic-Gregorian arithmetic (Howard Hinnant's `days_from_civil` / `civil_from_days`), so it
/// needs no time-zone database and works for instants before 1970 and after 2038.
package enum ISO8601 {
    private static let millisecondsPerDay: Int64 = 86_400_000

    /// Formats milliseconds since 1970-01-01T00:00:00Z as `YYYY-MM-DDTHH:MM:SS.sssZ`.
    ///
    /// Years outside 0000...9999 use ISO 8601's expanded form with a sign and six or more digits
    /// (`+275760-09-13T00:00:00.000Z`), as JavaScript's `toISOString` does.
    package static func format(millisecondsSinceEpoch milliseconds: Int64) -> String {
        let (days, millisecondOfDay) = floorDivision(milliseconds, millisecondsPerDay)
        let (year, month, day) = civil(fromDays: days)
        var output: [UInt8] = []
        output.reserveCapacity(30)
        if (0...9999).contains(year) {
            appendDigits(year, width: 4, to: &output)
        } else {
            output.append(year < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            appendDigits(year.magnitude, width: 6, to: &output)
        }
        output.append(UInt8(ascii: "-"))
        appendDigits(month, width: 2, to: &output)
        output.append(UInt8(ascii: "-"))
        appendDigits(day, width: 2, to: &output)
        output.append(UInt8(ascii: "T"))
        appendDigits(millisecondOfDay / 3_600_000, width: 2, to: &output)
        output.append(UInt8(ascii: ":"))
        appendDigits(millisecondOfDay / 60_000 % 60, width: 2, to: &output)
        output.append(UInt8(ascii: ":"))
        appendDigits(millisecondOfDay / 1000 % 60, width: 2, to: &output)
        output.append(UInt8(ascii: "."))
        appendDigits(millisecondOfDay % 1000, width: 3, to: &output)
        output.append(UInt8(ascii: "Z"))
        return String(decoding: output, as: UTF8.self)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into milliseconds since the epoch.
    ///
    /// The fraction may have 1 to 9 digits (digits past milliseconds are truncated). Returns nil for
    /// anything else, including impossible dates (`2023-02-29`) and second 60.
    package static func parse(_ text: String) -> Int64? {
        var scanner = DigitScanner(Array(text.utf8))
        guard let year = scanner.number(digits: 4), scanner.take("-"),
            let month = scanner.number(digits: 2), scanner.take("-"),
            let day = scanner.number(digits: 2), scanner.take("T"),
            let hour = scanner.number(digits: 2), scanner.take(":"),
            let minute = scanner.number(digits: 2), scanner.take(":"),
            let second = scanner.number(digits: 2)
        else { return nil }
        guard (1...12).contains(month), (1...daysInMonth(year: year, month: month)).contains(day),
            hour < 24, minute < 60, second < 60
        else { return nil }

        var millisecond: Int64 = 0
        if scanner.take(".") {
            var digits = 0
            while let digit = scanner.digit() {
                digits += 1
                guard digits <= 9 else { return nil }
                if digits <= 3 {
                    millisecond = millisecond * 10 + digit
                }
            }
            guard digits > 0 else { return nil }
            while digits < 3 {
                millisecond *= 10
                digits += 1
            }
        }

        var offsetMinutes: Int64 = 0
        if !scanner.take("Z") {
            let sign: Int64
            if scanner.take("+") {
                sign = 1
            } else if scanner.take("-") {
                sign = -1
            } else {
                return nil
            }
            guard let offsetHour = scanner.number(digits: 2), scanner.take(":"),
                let offsetMinute = scanner.number(digits: 2), offsetHour < 24, offsetMinute < 60
            else { return nil }
            offsetMinutes = sign * (offsetHour * 60 + offsetMinute)
        }
        guard scanner.isAtEnd else { return nil }

        let days = daysFromCivil(year: year, month: month, day: day)
        let secondOfDay = hour * 3600 + minute * 60 + second
        return days * millisecondsPerDay + secondOfDay * 1000 + millisecond - offsetMinutes * 60_000
    }

    // MARK: Calendar arithmetic

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The proleptic Gregorian date of a day count since 1970-01-01.
    package static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    /// Gregorian leap-year rule.
    static func isLeapYear(_ year: Int64) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    /// Length of `month` (1-12) in `year`.
    static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Quotient rounded toward negative infinity and the matching non-negative remainder.
    private static func floorDivision(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value / divisor
        let remainder = value % divisor
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }

    private static func appendDigits(_ value: some BinaryInteger, width: Int, to output: inout [UInt8]) {
        var digits: [UInt8] = []
        var remaining = value
        repeat {
            digits.append(UInt8(ascii: "0") + UInt8(remaining % 10))
            remaining /= 10
        } while remaining > 0
        for _ in digits.count..<max(width, digits.count) {
            output.append(UInt8(ascii: "0"))
        }
        output.append(contentsOf: digits.reversed())
    }
}

/// Reads fixed-width ASCII digits and single characters from a timestamp.
private struct DigitScanner {
    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { index == bytes.count }

    mutating func digit() -> Int64? {
        guard index < bytes.count, bytes[index] &- UInt8(ascii: "0") <= 9 else { return nil }
        defer { index += 1 }
        return Int64(bytes[index] - UInt8(ascii: "0"))
    }

    mutating func number(digits count: Int) -> Int64? {
        var value: Int64 = 0
        for _ in 0..<count {
            guard let digit = digit() else { return nil }
            value = value * 10 + digit
        }
        return value
    }

    mutating func take(_ character: Unicode.Scalar) -> Bool {
        guard index < bytes.count, bytes[index] == UInt8(ascii: character) else { return false }
        index += 1
        return true
    }
}
