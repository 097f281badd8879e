import Testing
@testable import Shared

@Suite struct EngineIOHeartbeatTests {
    private func heartbeat() -> EngineIOHeartbeat { EngineIOHeartbeat(interval: 25, timeout: 20) }

    @Test func pingsOneIntervalAfterEachPong() {
        var h = heartbeat()
        #expect(h.start(now: 0) == .schedule(deadline: 25))
        #expect(h.timerFired(now: 25) == .ping(thenScheduleAt: 45))
        #expect(h.pongReceived(now: 27) == .schedule(deadline: 52))
        #expect(h.timerFired(now: 52) == .ping(thenScheduleAt: 72))
        #expect(h.pongReceived(now: 60) == .schedule(deadline: 85))
    }

    @Test func shortIntervalIsHonouredWhateverTheTimeout() {
        var h = EngineIOHeartbeat(interval: 2, timeout: 20)
        _ = h.start(now: 0)
        #expect(h.timerFired(now: 2) == .ping(thenScheduleAt: 22))
        #expect(h.pongReceived(now: 3) == .schedule(deadline: 5))
    }

    @Test func missingPongTimesOut() {
        var h = heartbeat()
        _ = h.start(now: 0)
        _ = h.timerFired(now: 25)
        #expect(h.timerFired(now: 45) == .timedOut)
    }

    @Test func unsolicitedPongsChangeNothing() {
        var h = heartbeat()
        _ = h.start(now: 0)
        #expect(h.pongReceived(now: 1) == .none)
        _ = h.timerFired(now: 25)
        #expect(h.pongReceived(now: 26) == .schedule(deadline: 51))
        #expect(h.pongReceived(now: 27) == .none)
    }
}
