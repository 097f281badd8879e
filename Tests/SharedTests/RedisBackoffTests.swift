import Testing
@testable import Shared

/// Reconnect delays and the reconnect state machine, without sockets or clocks.
@Suite struct RedisBackoffTests {
    @Test func ceilingDoublesFromMinimumUpToMaximum() {
        let backoff = RedisBackoff()
        #expect((0..<9).map { backoff.ceiling(attempt: $0) } == [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000])
        #expect(backoff.ceiling(attempt: Int.max) == 5_000)
    }

    @Test func jitterSpansTheUpperHalfByDefault() {
        let backoff = RedisBackoff()
        #expect(backoff.delay(attempt: 0, random: 0) == 100)
        #expect(backoff.delay(attempt: 0, random: 0.5) == 75)
        #expect(backoff.delay(attempt: 0, random: 0.999_999) == 51)
        #expect(backoff.delay(attempt: 10, random: 0) == 5_000)
        #expect(backoff.delay(attempt: 10, random: 0.999_999) == 2_501)
        for attempt in 0..<20 {
            let delay = backoff.delay(attempt: attempt)
            let ceiling = backoff.ceiling(attempt: attempt)
            #expect(delay <= ceiling && delay >= ceiling / 2)
        }
    }

    @Test func noJitterAndFullJitter() {
        let fixed = RedisBackoff(minimumMilliseconds: 10, maximumMilliseconds: 1_000, jitter: 0)
        #expect(fixed.delay(attempt: 3, random: 0.9) == 80)
        let full = RedisBackoff(minimumMilliseconds: 10, maximumMilliseconds: 1_000, jitter: 1)
        #expect(full.delay(attempt: 3, random: 0.999_999) == 1)
    }

    @Test func invalidSettingsAreClamped() {
        let backoff = RedisBackoff(minimumMilliseconds: 0, maximumMilliseconds: -5, jitter: 7)
        #expect(backoff.minimumMilliseconds == 1)
        #expect(backoff.maximumMilliseconds == 1)
        #expect(backoff.jitter == 1)
    }

    @Test func machineBacksOffExponentiallyAndResetsAfterSuccess() {
        var machine = RedisReconnectMachine(backoff: RedisBackoff(jitter: 0))
        #expect(machine.start() == .connect)
        #expect(machine.start() == .none)
        #expect(machine.connectFailed(random: 0) == .scheduleRetry(afterMilliseconds: 100))
        #expect(machine.retryTimerFired() == .connect)
        #expect(machine.connectFailed(random: 0) == .scheduleRetry(afterMilliseconds: 200))
        #expect(machine.retryTimerFired() == .connect)
        #expect(machine.connectFailed(random: 0) == .scheduleRetry(afterMilliseconds: 400))
        #expect(machine.retryTimerFired() == .connect)
        #expect(machine.connectSucceeded() == .none)
        #expect(machine.state == .connected)
        // After a success the delays start over.
        #expect(machine.connectionLost(random: 0) == .scheduleRetry(afterMilliseconds: 100))
        #expect(machine.retryTimerFired() == .connect)
        #expect(machine.connectFailed(random: 0) == .scheduleRetry(afterMilliseconds: 200))
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
