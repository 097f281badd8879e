// IMF-fixdate for the `Date` response header (RFC 9110 §5.6.7), by civil-calendar arithmetic so
// it needs neither Foundation nor the C library's time-zone state.

/// Formats `Date` header values such as `Sun, 06 Nov 1994 08:49:37 GMT`.
package enum HTTPDate {
    private static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// The IMF-fixdate of a UTC instant given as whole seconds since 1970-01-01T00:00:00Z.
    /// Servers call this once per second and reuse the string.
    package static func format(secondsSinceEpoch: Int) -> String {
        let parts = civil(secondsSinceEpoch: secondsSinceEpoch)
        var out: [UInt8] = []
        out.reserveCapacity(29)
        out.append(contentsOf: weekdays[parts.weekday].utf8)
        out.append(contentsOf: ", ".utf8)
        appendTwoDigits(parts.day, to: &out)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: months[parts.month - 1].utf8)
        out.append(UInt8(ascii: " "))
        HTTPSyntax.appendDecimal(parts.year, to: &out)
        out.append(UInt8(ascii: " "))
        appendTwoDigits(parts.hour, to: &out)
        out.append(UInt8(ascii: ":"))
        appendTwoDigits(parts.minute, to: &out)
        out.append(UInt8(ascii: ":"))
        appendTwoDigits(parts.second, to: &out)
        out.append(contentsOf: " GMT".utf8)
        return String(decoding: out, as: UTF8.self)
    }

    /// Calendar fields of a UTC instant; `weekday` is 0 for Sunday, `month` 1...12.
    static func civil(
        secondsSinceEpoch: Int
    ) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, weekday: Int) {
        // Floor division so instants before 1970 land on the right day.
        var days = secondsSinceEpoch / 86_400
        var secondOfDay = secondsSinceEpoch % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        // 1970-01-01 was a Thursday (index 4).
        let weekday = ((days % 7) + 11) % 7
        // Howard Hinnant's days_from_civil inverse (proleptic Gregorian, eras of 400 years).
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day, secondOfDay / 3600, secondOfDay / 60 % 60, secondOfDay % 60, weekday)
    }

    private static func appendTwoDigits(_ value: Int, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value / 10))
        out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10))
    }
}
