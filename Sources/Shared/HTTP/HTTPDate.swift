import JSON

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
        let date = ISO8601.civil(fromDays: Int64(days))
        let (year, month, day) = (Int(date.year), Int(date.month), Int(date.day))
        return (year, month, day, secondOfDay / 3600, secondOfDay / 60 % 60, secondOfDay % 60, weekday)
    }

    private static func appendTwoDigits(_ value: Int, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value / 10))
        out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10))
    }
}
