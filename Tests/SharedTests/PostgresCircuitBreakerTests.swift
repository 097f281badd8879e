import Testing
@testable import Shared

@Suite struct PostgresCircuitBreakerTests {
    private let ms: UInt64 = 1_000_000

    @Test func failureRejectsForTheOpenPeriodOnly() {
        var breaker = PostgresCircuitBreaker(openFor: .milliseconds(1_000))
        #expect(breaker.rejection(now: 10 * ms) == nil)
        breaker.recordFailure("Connection refused", now: 10 * ms)
        let reason = breaker.rejection(now: 500 * ms)
        #expect(reason?.contains("Connection refused") == true)
        #expect(reason?.contains("490 ms ago") == true)
        #expect(breaker.rejection(now: 1_009 * ms) != nil)
        #expect(breaker.rejection(now: 1_010 * ms) == nil)
    }

    @Test func successClosesTheBreaker() {
        var breaker = PostgresCircuitBreaker(openFor: .milliseconds(1_000))
        breaker.recordFailure("down", now: 0)
        breaker.recordSuccess()
        #expect(breaker.rejection(now: 1) == nil)
    }

    @Test func zeroPeriodDisablesIt() {
        var breaker = PostgresCircuitBreaker(openFor: .milliseconds(0))
        breaker.recordFailure("down", now: 5)
        #expect(breaker.rejection(now: 5) == nil)
    }
}
