import Testing
@testable import Shared

@Suite struct EngineIOHeartbeatTests {
    private func heartbeat() -> EngineIOHeartbeat { EngineIOHeartbeat(interval: 25, timeout: 20) }

    @Test func pingsEveryIntervalWhilePongsArrive() {
        var h = heartbeat()
        #expect(h.start(now: 0) == .schedule(deadline: 25))
        #expect(h.timerFired(now: 25) == .ping(thenScheduleAt: 45))
        h.pongReceived()
        #expect(h.timerFired(now: 45) == .schedule(deadline: 50))
        #expect(h.timerFired(now: 50) == .ping(thenScheduleAt: 70))
        h.pongReceived()
        #expect(h.timerFired(now: 70) == .schedule(deadline: 75))
    }

    @Test func missingPongTimesOut() {
        var h = heartbeat()
        _ = h.start(now: 0)
        _ = h.timerFired(now: 25)
        #expect(h.timerFired(now: 45) == .timedOut)
    }

    @Test func pongBeforeAnyPingIsIgnored() {
        var h = heartbeat()
        _ = h.start(now: 0)
        h.pongReceived()
        _ = h.timerFired(now: 25)
        #expect(h.timerFired(now: 45) == .timedOut)
    }

    @Test func lateTimerPingsAtOnce() {
        var h = heartbeat()
        _ = h.start(now: 0)
        _ = h.timerFired(now: 25)
        h.pongReceived()
        // The loop was busy: the pong check runs after the next ping time already passed.
        #expect(h.timerFired(now: 60) == .ping(thenScheduleAt: 80))
    }
}
