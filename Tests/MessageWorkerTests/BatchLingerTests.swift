import Testing
@testable import MessageWorker

@Suite struct BatchLingerTests {
    private let linger = BatchLinger(delay: .milliseconds(2), minimum: 8, batchSize: 128)

    @Test func anIdleStreamIsReadAtOnce() {
        #expect(linger.pause(afterBatchOf: 0) == nil)
        #expect(linger.pause(afterBatchOf: 1) == nil)
        #expect(linger.pause(afterBatchOf: 7) == nil)
    }

    @Test func aBusyStreamGathersTheNextBatch() {
        #expect(linger.pause(afterBatchOf: 8) == .milliseconds(2))
        #expect(linger.pause(afterBatchOf: 127) == .milliseconds(2))
    }

    @Test func afterAFullBatchMoreIsWaitingAlready() {
        #expect(linger.pause(afterBatchOf: 128) == nil)
    }

    @Test func zeroNeverPauses() {
        #expect(BatchLinger(delay: .zero, minimum: 1, batchSize: 128).pause(afterBatchOf: 64) == nil)
    }
}
