import Testing
@testable import Shared

@Suite struct EngineIOHeartbeatTests {
    private func heartbeat() -> EngineIOHeartbeat { EngineIOHeartbeat(interval: 25, timeout: 20) }

    @Test func pingsOneIntervalAfterEachPongWithoutRearming() {
        var h = heartbeat()
        #expect(h.start(now: 0) == .schedule(deadline: 25))
        #expect(h.timerFired(now: 25) == .ping(thenScheduleAt: 45))
        #expect(h.pongReceived(now: 27) == .none)
        // The pong-deadline timer schedules the next ping one interval after the pong.
        #expect(h.timerFired(now: 45) == .schedule(deadline: 52))
        #expect(h.timerFired(now: 52) == .ping(thenScheduleAt: 72))
        #expect(h.pongReceived(now: 60) == .none)
        #expect(h.timerFired(now: 72) == .schedule(deadline: 85))
    }

    @Test func lateTimerPingsAtOnce() {
        var h = heartbeat()
        _ = h.start(now: 0)
        _ = h.timerFired(now: 25)
        _ = h.pongReceived(now: 26)
        #expect(h.timerFired(now: 60) == .ping(thenScheduleAt: 80))
    }

    @Test func shortIntervalRearmsOnThePong() {
        var h = EngineIOHeartbeat(interval: 2, timeout: 20)
        _ = h.start(now: 0)
        #expect(h.timerFired(now: 2) == .ping(thenScheduleAt: 22))
        #expect(h.pongReceived(now: 3) == .schedule(deadline: 5))
        #expect(h.timerFired(now: 5) == .ping(thenScheduleAt: 25))
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
        #expect(h.timerFired(now: 25) == .ping(thenScheduleAt: 45))
        _ = h.pongReceived(now: 26)
        #expect(h.pongReceived(now: 27) == .none)
        #expect(h.timerFired(now: 45) == .schedule(deadline: 51))
    }
}
