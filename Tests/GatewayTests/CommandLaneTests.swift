import Testing
@testable import Gateway
@testable import Shared

/// One socket's commands leave in the order it sent them, even when one of them first waits for an
/// asynchronous admission (the API budget) and the next one needs none.
@Suite struct CommandLaneTests {
    init() { EventLoop.shared.startInBackground() }

    @LoopActor
    private final class Log {
        var appended: [String] = []
    }

    @Test @LoopActor func aSlowAdmissionHoldsBackLaterCommands() async throws {
        let lane = CommandLane()
        let log = Log()
        lane.submit(admit: nil) { log.appended.append("send-1") }  // nothing waiting: at once
        #expect(log.appended == ["send-1"])
        lane.submit(admit: {
            await EventLoop.shared.sleep(for: .milliseconds(30))
            return true
        }) { log.appended.append("read") }
        lane.submit(admit: nil) { log.appended.append("send-2") }  // behind the read
        lane.submit(admit: {
            await EventLoop.shared.sleep(for: .milliseconds(5))
            return false
        }) { log.appended.append("refused") }
        lane.submit(admit: nil) { log.appended.append("send-3") }
        #expect(log.appended == ["send-1"])
        // Waits for the lane to empty (the admissions take 35 ms; a loaded test machine may take longer).
        try await until("the lane to empty") { log.appended.count >= 4 }
        await EventLoop.shared.sleep(for: .milliseconds(20))
        #expect(log.appended == ["send-1", "read", "send-2", "send-3"])
        // The lane is empty again: the next command goes at once.
        lane.submit(admit: nil) { log.appended.append("send-4") }
        #expect(log.appended.last == "send-4")
    }
}
