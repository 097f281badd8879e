import Testing
@testable import Shared

@Suite struct HTTPConnectionStateMachineTests {
    private let read: UInt64 = 1_000
    private let idle: UInt64 = 5_000

    private func machine() -> HTTPConnectionStateMachine {
        HTTPConnectionStateMachine(requestReadTimeout: read, idleTimeout: idle)
    }

    @Test func firstBytesDoNotExtendTheFirstDeadline() {
        var m = machine()
        _ = m.opened(now: 0)
        #expect(m.awaitingMoreData(partial: true, now: 300) == .resumeReading(deadline: 1_300))
        #expect(m.awaitingMoreData(partial: true, now: 600) == .resumeReading(deadline: 1_300))
    }

    @Test func firstRequestMustArriveWithinTheReadTimeout() {
        var m = machine()
        #expect(m.opened(now: 0) == .scheduleTimeout(deadline: 1_000))
        #expect(m.timerFired(now: 999) == .scheduleTimeout(deadline: 1_000))
        #expect(m.timerFired(now: 1_000) == .close)
        #expect(m.state == .closed)
    }

    @Test func slowHeadersGetA408() {
        var m = machine()
        _ = m.opened(now: 0)
        _ = m.receivedRequest(keepAlive: true)
        _ = m.responseQueued()
        #expect(m.awaitingMoreData(partial: true, now: 10) == .resumeReading(deadline: 1_010))
        // More bytes of the same request do not extend the deadline (slowloris).
        #expect(m.awaitingMoreData(partial: true, now: 500) == .resumeReading(deadline: 1_010))
        #expect(m.awaitingMoreData(partial: true, now: 900) == .resumeReading(deadline: 1_010))
        #expect(m.timerFired(now: 1_010) == .timeoutRequest)
    }

    @Test func keepAliveCycleUsesIdleTimeoutBetweenRequests() {
        var m = machine()
        _ = m.opened(now: 0)
        #expect(m.receivedRequest(keepAlive: true) == .dispatch)
        let queued = m.responseQueued()
        #expect(queued.keepAlive && queued.next == .parseNext)
        #expect(m.awaitingMoreData(partial: false, now: 100) == .resumeReading(deadline: 5_100))
        #expect(m.timerFired(now: 5_100) == .close)
    }

    @Test func pipelinedPartialRequestKeepsTheReadTimeout() {
        var m = machine()
        _ = m.opened(now: 0)
        _ = m.receivedRequest(keepAlive: true)
        _ = m.responseQueued()
        #expect(m.awaitingMoreData(partial: true, now: 100) == .resumeReading(deadline: 1_100))
        #expect(m.state == .readingRequest)
    }

    @Test func connectionCloseRequestClosesAfterTheResponse() {
        var m = machine()
        _ = m.opened(now: 0)
        _ = m.receivedRequest(keepAlive: false)
        let queued = m.responseQueued()
        #expect(!queued.keepAlive && queued.next == .closeAfterFlush)
    }

    @Test func peerEOFDuringProcessingClosesAfterTheResponse() {
        var m = machine()
        _ = m.opened(now: 0)
        _ = m.receivedRequest(keepAlive: true)
        #expect(m.peerClosedInput() == .none)
        #expect(m.responseQueued().next == .closeAfterFlush)
    }

    @Test func peerEOFWhileIdleClosesAtOnce() {
        var m = machine()
        _ = m.opened(now: 0)
        #expect(m.peerClosedInput() == .close)
    }

    @Test func shutdownClosesIdleAndFinishesInFlight() {
        var idleMachine = machine()
        _ = idleMachine.opened(now: 0)
        #expect(idleMachine.shutdownRequested() == .close)

        var busy = machine()
        _ = busy.opened(now: 0)
        _ = busy.receivedRequest(keepAlive: true)
        #expect(busy.shutdownRequested() == .none)
        let queued = busy.responseQueued()
        #expect(!queued.keepAlive && queued.next == .closeAfterFlush)
    }

    @Test func parseFailureClosesAfterTheErrorResponse() {
        var m = machine()
        _ = m.opened(now: 0)
        #expect(m.parseFailed() == .closeAfterFlush)
        #expect(m.receivedRequest(keepAlive: true) == .none)
    }
}
