import Testing
@testable import Gateway

@Suite struct TypingStateTests {
    private static let second: UInt64 = 1_000_000_000
    private func state(maxReceivers: Int = 4) -> TypingState {
        TypingState(limits: .init(timeout: 5 * Self.second, repeatInterval: Self.second, maxReceivers: maxReceivers))
    }

    @Test func firstTypingIsRelayedAndLapsesAfterTheTimeout() {
        var typing = state()
        #expect(typing.typing(to: 2, now: 0) == .publish)
        #expect(typing.activeReceivers == [2])
        #expect(typing.nextDeadline == 5 * Self.second)
        #expect(typing.expire(now: 5 * Self.second - 1) == [])
        #expect(typing.expire(now: 5 * Self.second) == [2])
        #expect(typing.activeReceivers.isEmpty && typing.nextDeadline == nil)
    }

    @Test func repeatsWithinASecondOnlyRearm() {
        var typing = state()
        #expect(typing.typing(to: 2, now: 0) == .publish)
        // Keystrokes every 100 ms: one publish per second, the deadline follows the last one.
        var publishes = 0
        for step in 1...30 {
            if typing.typing(to: 2, now: UInt64(step) * Self.second / 10) == .publish { publishes += 1 }
        }
        #expect(publishes == 3)
        #expect(typing.nextDeadline == 3 * Self.second + 5 * Self.second)
        #expect(typing.expire(now: 7 * Self.second) == [])
        #expect(typing.expire(now: 8 * Self.second) == [2])
    }

    @Test func explicitStopIsRelayedOnlyWhenTyping() {
        var typing = state()
        #expect(typing.stopTyping(to: 2) == false)
        _ = typing.typing(to: 2, now: 0)
        #expect(typing.stopTyping(to: 2) == true)
        #expect(typing.stopTyping(to: 2) == false)
        #expect(typing.expire(now: 10 * Self.second) == [], "no automatic stop after an explicit one")
        #expect(typing.typing(to: 2, now: Self.second / 2) == .publish, "typing again after a stop is relayed at once")
    }

    @Test func severalReceiversLapseIndependently() {
        var typing = state()
        _ = typing.typing(to: 3, now: 0)
        _ = typing.typing(to: 2, now: 2 * Self.second)
        #expect(typing.nextDeadline == 5 * Self.second)
        #expect(typing.expire(now: 6 * Self.second) == [3])
        #expect(typing.nextDeadline == 7 * Self.second)
        #expect(typing.activeReceivers == [2])
    }

    @Test func disconnectStopsEveryReceiver() {
        var typing = state()
        _ = typing.typing(to: 9, now: 0)
        _ = typing.typing(to: 4, now: 0)
        #expect(typing.stopAll() == [4, 9])
        #expect(typing.stopAll() == [])
        #expect(typing.nextDeadline == nil)
    }

    @Test func receiversAreBounded() {
        var typing = state(maxReceivers: 2)
        #expect(typing.typing(to: 1, now: 0) == .publish)
        #expect(typing.typing(to: 2, now: 0) == .publish)
        #expect(typing.typing(to: 3, now: 0) == .refused)
        #expect(typing.typing(to: 1, now: Self.second) == .publish, "a known receiver is not refused")
        _ = typing.stopTyping(to: 2)
        #expect(typing.typing(to: 3, now: Self.second) == .publish)
    }
}
