/// Arithmetic that clamps to the representable range instead of trapping, for values that come
/// from outside the process (token claims, client numbers, replies of other servers): a hostile
/// or absurd value must give a clear answer, never kill the process.
extension FixedWidthInteger {
    /// `self + other`, clamped to `min...max`.
    package func addingSaturated(_ other: Self) -> Self {
        let (sum, overflow) = addingReportingOverflow(other)
        guard overflow else { return sum }
        return other > 0 ? .max : .min
    }

    /// `self - other`, clamped to `min...max`.
    package func subtractingSaturated(_ other: Self) -> Self {
        let (difference, overflow) = subtractingReportingOverflow(other)
        guard overflow else { return difference }
        return other > 0 ? .min : .max
    }

    /// `self * other`, clamped to `min...max`.
    package func multipliedSaturated(by other: Self) -> Self {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        guard overflow else { return product }
        return (self < 0) == (other < 0) ? .max : .min
    }
}

extension Int64 {
    /// `self / divisor` rounded toward positive infinity, for a positive `divisor`. Unlike
    /// `(self + divisor - 1) / divisor` it cannot overflow, so a wait read from a reply (a Redis
    /// script result, a worker's `retryAfterMs`) near `Int64.max` converts instead of trapping.
    package func dividedRoundingUp(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return self % divisor > 0 ? quotient + 1 : quotient
    }
}
