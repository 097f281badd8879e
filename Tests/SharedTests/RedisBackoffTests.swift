import Testing
@testable import Shared

/// Reconnect delays and the reconnect state machine, without sockets or clocks.
@Suite struct RedisBackoffTests {
    @Test func ceilingDoublesFromMinimumUpToMaximum() {
        let backoff = RedisBackoff()
        #expect((0..<9).map { backoff.ceiling(attempt: $0).wholeMilliseconds } == [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000])
        #expect(backoff.ceiling(attempt: Int.max).wholeMilliseconds == 5_000)
    }

    @Test func jitterSpansTheUpperHalfByDefault() {
        let backoff = RedisBackoff()
        #expect(backoff.delay(attempt: 0, random: 0).wholeMilliseconds == 100)
        #expect(backoff.delay(attempt: 0, random: 0.5).wholeMilliseconds == 75)
        #expect(backoff.delay(attempt: 0, random: 0.999_999).wholeMilliseconds == 51)
        #expect(backoff.delay(attempt: 10, random: 0).wholeMilliseconds == 5_000)
        #expect(backoff.delay(attempt: 10, random: 0.999_999).wholeMilliseconds == 2_501)
        for attempt in 0..<20 {
            let delay = backoff.delay(attempt: attempt).wholeMilliseconds
            let ceiling = backoff.ceiling(attempt: attempt).wholeMilliseconds
            #expect(delay <= ceiling && delay >= ceiling / 2)
        }
    }

    @Test func noJitterAndFullJitter() {
        let fixed = RedisBackoff(minimum: .milliseconds(10), maximum: .milliseconds(1_000), jitter: 0)
        #expect(fixed.delay(attempt: 3, random: 0.9).wholeMilliseconds == 80)
        let full = RedisBackoff(minimum: .milliseconds(10), maximum: .milliseconds(1_000), jitter: 1)
        #expect(full.delay(attempt: 3, random: 0.999_999).wholeMilliseconds == 1)
    }

    @Test func invalidSettingsAreClamped() {
        let backoff = RedisBackoff(minimum: .milliseconds(0), maximum: .milliseconds(-5), jitter: 7)
        #expect(backoff.minimum == .milliseconds(1))
        #expect(backoff.maximum == .milliseconds(1))
        #expect(backoff.jitter == 1)
    }

    @Test func machineBacksOffExponentiallyAndResetsAfterSuccess() {
        var machine = RedisReconnectMachine(backoff: RedisBackoff(jitter: 0))
        #expect(machine.start() == .connect)
        #expect(machine.start() == .none)
        #expect(machine.connectFailed(random: 0) == .scheduleRetry(after: .milliseconds(100)))
        #expect(machine.retryTimerFired() == .connect)
        #expect(machine.connectFailed(random: 0) == .scheduleRetry(after: .milliseconds(200)))
        #expect(machine.retryTimerFired() == .connect)
        #expect(machine.connectFailed(random: 0) == .scheduleRetry(after: .milliseconds(400)))
        #expect(machine.retryTimerFired() == .connect)
        #expect(machine.connectSucceeded() == .none)
        #expect(machine.state == .connected)
        // After a success the delays start over.
        #expect(machine.connectionLost(random: 0) == .scheduleRetry(after: .milliseconds(100)))
        #expect(machine.retryTimerFired() == .connect)
        #expect(machine.connectFailed(random: 0) == .scheduleRetry(after: .milliseconds(200)))
    }

    @Test func machineIgnoresStaleEventsAndStopsWhenClosed() {
        var machine = RedisReconnectMachine(backoff: RedisBackoff())
        #expect(machine.retryTimerFired() == .none)
        #expect(machine.connectionLost(random: 0) == .none)
        #expect(machine.start() == .connect)
        machine.close()
        #expect(machine.state == .closed)
        #expect(machine.connectSucceeded() == .discardConnection)
        #expect(machine.connectFailed(random: 0) == .none)
        #expect(machine.retryTimerFired() == .none)
        #expect(machine.start() == .none)
    }
}
