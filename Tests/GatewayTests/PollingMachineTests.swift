import Testing
@testable import Gateway
@testable import Shared

/// The Engine.IO long-polling transport without I/O: held polls, the queue, overlap, close and the
/// upgrade to WebSocket.
@Suite struct PollingMachineTests {
    private static let rs: UInt8 = 0x1E
    private static let noop: [UInt8] = Array("6".utf8)
    private static let close: [UInt8] = Array("1".utf8)

    private static func machine(maxQueuedBytes: Int = 1_000, maxPacketsPerPost: Int = 1_000) -> PollingMachine {
        PollingMachine(configuration: .init(maxQueuedBytes: maxQueuedBytes, maxPacketsPerPost: maxPacketsPerPost))
    }

    private static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    private static func body(_ packets: String...) -> [UInt8] {
        EngineIOPayload.encode(packets.map(bytes))
    }

    // MARK: Polls and the queue

    @Test func pollWithNothingQueuedIsHeld() {
        var machine = Self.machine()
        #expect(machine.poll() == .hold)
        #expect(machine.holdingPoll)
        #expect(machine.state == .open)
        #expect(machine.flushHeld() == nil)  // nothing to flush yet
        #expect(machine.holdingPoll)
    }

    @Test func enqueueWhileHeldIsFlushedTogether() {
        var machine = Self.machine()
        #expect(machine.poll() == .hold)
        #expect(machine.enqueue(Self.bytes("4a")) == .pollWaiting)
        #expect(machine.enqueue(Self.bytes("4b")) == .pollWaiting)
        #expect(machine.enqueue(Self.bytes(#"42["recoveryOffset","1.2:3"]"#)) == .pollWaiting)
        #expect(machine.pendingBytes == 3 + 3 + Self.bytes(#"42["recoveryOffset","1.2:3"]"#).count + 1)
        #expect(machine.flushHeld() == Self.body("4a", "4b", #"42["recoveryOffset","1.2:3"]"#))
        #expect(!machine.holdingPoll)
        #expect(machine.pendingBytes == 0)
        #expect(machine.flushHeld() == nil)
        // The next enqueue waits for the next poll.
        #expect(machine.enqueue(Self.bytes("4c")) == .queued)
        #expect(machine.state == .open)
    }

    @Test func pollWithQueuedPacketsIsAnsweredAtOnce() {
        var machine = Self.machine()
        #expect(machine.enqueue(Self.bytes("4a")) == .queued)
        #expect(machine.enqueue(Self.bytes("4b")) == .queued)
        #expect(machine.poll() == .answer(Self.body("4a", "4b")))
        #expect(!machine.holdingPoll)
        #expect(machine.pendingBytes == 0)
        #expect(machine.poll() == .hold)
    }

    @Test func enqueueAcceptsAnyByteCollection() {
        var machine = Self.machine()
        #expect(machine.enqueue("4x".utf8) == .queued)
        let frame = WebSocketFrameEncoder.text("4y")
        #expect(machine.enqueue(WebSocketFrameEncoder.payload(ofUnmaskedFrame: frame)!) == .queued)
        #expect(machine.poll() == .answer(Self.body("4x", "4y")))
    }

    @Test func secondPollWhileHeldOverlapsAndCloses() {
        var machine = Self.machine()
        #expect(machine.poll() == .hold)
        #expect(machine.poll() == .overlap(heldBody: Self.close))
        #expect(machine.state == .closed)
        #expect(!machine.holdingPoll)
        #expect(machine.poll() == .gone)
        #expect(machine.enqueue(Self.bytes("4a")) == .dropped)
        #expect(machine.close() == nil)
    }

    @Test func overlapCarriesWhatWasQueuedThenTheClosePacket() {
        var machine = Self.machine()
        #expect(machine.poll() == .hold)
        #expect(machine.enqueue(Self.bytes("4a")) == .pollWaiting)
        guard case .overlap(let held) = machine.poll() else {
            Issue.record("expected an overlap")
            return
        }
        #expect(held == Self.body("4a", "1"))
        #expect(held.last == UInt8(ascii: "1"))
        #expect(machine.state == .closed)
        #expect(machine.poll() == .gone)
    }

    @Test func queueOverflow() {
        // Each packet costs its bytes plus one (the separator).
        var machine = Self.machine(maxQueuedBytes: 10)
        #expect(machine.enqueue(Self.bytes("4abc")) == .queued)  // 5
        #expect(machine.enqueue(Self.bytes("4abc")) == .queued)  // 10: exactly the limit
        #expect(machine.pendingBytes == 10)
        #expect(machine.enqueue(Self.bytes("4")) == .overflow)  // 12
        #expect(machine.pendingBytes == 0)
        // The queue is dropped: the session closes, nothing is sent.
        #expect(machine.poll() == .hold)
    }

    @Test func overflowWhileHeld() {
        var machine = Self.machine(maxQueuedBytes: 4)
        #expect(machine.poll() == .hold)
        #expect(machine.enqueue(Self.bytes("4abcd")) == .overflow)
        #expect(machine.flushHeld() == nil)
        #expect(machine.pendingBytes == 0)
    }

    @Test func onePacketLargerThanTheQueue() {
        var machine = Self.machine(maxQueuedBytes: 0)
        #expect(machine.enqueue([UInt8]()) == .overflow)  // an empty packet still costs its separator
    }

    // MARK: Close

    @Test func closeWhileHeld() {
        var machine = Self.machine()
        #expect(machine.poll() == .hold)
        #expect(machine.close() == Self.close)
        #expect(machine.state == .closed)
        #expect(!machine.holdingPoll)
        #expect(machine.poll() == .gone)
        #expect(machine.close() == nil)
    }

    @Test func closeWhileHeldWithPacketsQueued() {
        var machine = Self.machine()
        #expect(machine.poll() == .hold)
        #expect(machine.enqueue(Self.bytes("4a")) == .pollWaiting)
        #expect(machine.close() == Self.body("4a", "1"))
        #expect(machine.state == .closed)
    }

    @Test func closeWithoutHeldPoll() {
        var machine = Self.machine()
        #expect(machine.enqueue(Self.bytes("4a")) == .queued)
        #expect(machine.close() == nil)
        #expect(machine.state == .closing)
        #expect(machine.enqueue(Self.bytes("4b")) == .dropped)
        #expect(machine.close() == nil)
        #expect(machine.state == .closing)
        #expect(machine.poll() == .answer(Self.body("4a", "1")))
        #expect(machine.state == .closed)
        #expect(machine.poll() == .gone)
    }

    @Test func closeWithEmptyQueue() {
        var machine = Self.machine()
        #expect(machine.close() == nil)
        #expect(machine.state == .closing)
        #expect(machine.pendingBytes == 2)
        #expect(machine.poll() == .answer(Self.close))
        #expect(machine.state == .closed)
        #expect(machine.pendingBytes == 0)
    }

    /// The close packet is always queued, even on a full queue: `pendingBytes` may then pass
    /// `maxQueuedBytes` by the close packet's two bytes (documented here, not a failure).
    @Test func closeOnAFullQueue() {
        var machine = Self.machine(maxQueuedBytes: 5)
        #expect(machine.enqueue(Self.bytes("4abc")) == .queued)
        #expect(machine.close() == nil)
        #expect(machine.pendingBytes == 7)
        #expect(machine.poll() == .answer(Self.body("4abc", "1")))
    }

    @Test func enqueueAfterCloseIsDropped() {
        var machine = Self.machine()
        #expect(machine.poll() == .hold)
        _ = machine.close()
        #expect(machine.enqueue(Self.bytes("4a")) == .dropped)
        #expect(machine.pendingBytes == 0)
    }

    @Test func abandonReportsTheHeldPoll() {
        var held = Self.machine()
        #expect(held.poll() == .hold)
        #expect(held.enqueue(Self.bytes("4a")) == .pollWaiting)
        #expect(held.abandon() == true)
        #expect(held.state == .closed)
        #expect(held.pendingBytes == 0)
        #expect(held.flushHeld() == nil)
        #expect(held.poll() == .gone)
        #expect(held.enqueue(Self.bytes("4b")) == .dropped)

        var idle = Self.machine()
        #expect(idle.enqueue(Self.bytes("4a")) == .queued)
        #expect(idle.abandon() == false)
        #expect(idle.state == .closed)
        #expect(idle.pendingBytes == 0)
        #expect(idle.abandon() == false)
    }

    // MARK: Upgrade

    @Test func upgradeProbedAnswersTheHeldPollWithNoop() {
        var machine = Self.machine()
        #expect(machine.poll() == .hold)
        #expect(machine.upgradeProbed() == Self.noop)
        #expect(machine.state == .upgrading)
        #expect(!machine.holdingPoll)
        // A second probe changes nothing.
        #expect(machine.upgradeProbed() == nil)
        #expect(machine.state == .upgrading)
    }

    @Test func upgradeProbedWithoutHeldPoll() {
        var machine = Self.machine()
        #expect(machine.upgradeProbed() == nil)
        #expect(machine.state == .upgrading)
    }

    @Test func upgradeProbedGivesTheHeldPollWhatIsQueued() {
        var machine = Self.machine()
        #expect(machine.poll() == .hold)
        #expect(machine.enqueue(Self.bytes("4a")) == .pollWaiting)
        #expect(machine.upgradeProbed() == Self.body("4a"))
        #expect(machine.state == .upgrading)
    }

    @Test func pollWhileUpgrading() {
        var machine = Self.machine()
        _ = machine.upgradeProbed()
        #expect(machine.poll() == .answer(Self.noop))
        #expect(!machine.holdingPoll)
        #expect(machine.enqueue(Self.bytes("4a")) == .queued)
        #expect(machine.poll() == .answer(Self.body("4a")))
        #expect(machine.poll() == .answer(Self.noop))
    }

    @Test func releaseHeldPoll() {
        var machine = Self.machine()
        #expect(machine.releaseHeldPoll() == nil)
        #expect(machine.poll() == .hold)
        #expect(machine.releaseHeldPoll() == Self.noop)
        #expect(machine.releaseHeldPoll() == nil)
        #expect(machine.poll() == .hold)
        #expect(machine.enqueue(Self.bytes("4a")) == .pollWaiting)
        #expect(machine.releaseHeldPoll() == Self.body("4a"))
    }

    @Test func upgradedHandsOverTheQueue() throws {
        var machine = Self.machine()
        #expect(machine.poll() == .hold)
        _ = machine.upgradeProbed()
        #expect(machine.enqueue(Self.bytes("4a")) == .queued)
        #expect(machine.enqueue(Self.bytes("4b")) == .queued)
        #expect(machine.poll() == .answer(Self.body("4a", "4b")))
        #expect(machine.enqueue(Self.bytes("4c")) == .queued)
        #expect(machine.enqueue(Self.bytes("4d")) == .queued)
        let handOver = machine.upgraded()
        let upgraded = try #require(handOver)
        #expect(upgraded.queued == [Self.bytes("4c"), Self.bytes("4d")])
        #expect(upgraded.heldBody == nil)
        #expect(machine.state == .upgraded)
        #expect(machine.pendingBytes == 0)
        #expect(machine.poll() == .gone)
        #expect(machine.enqueue(Self.bytes("4e")) == .dropped)
        #expect(machine.upgraded() == nil)
        #expect(machine.close() == nil)
        #expect(machine.upgradeProbed() == nil)
    }

    @Test func upgradedWithAHeldPoll() throws {
        // The upgrade packet arrives while a poll is held (the probe went without `upgradeProbed`
        // answering it, or the client polled in between).
        var direct = Self.machine()
        #expect(direct.poll() == .hold)
        #expect(direct.enqueue(Self.bytes("4a")) == .pollWaiting)
        #expect(direct.enqueue(Self.bytes("4b")) == .pollWaiting)
        let handOver = direct.upgraded()
        let upgraded = try #require(handOver)
        #expect(upgraded.queued == [Self.bytes("4a"), Self.bytes("4b")])
        #expect(upgraded.heldBody == Self.noop)
        #expect(direct.state == .upgraded)
        #expect(!direct.holdingPoll)
        #expect(direct.poll() == .gone)
    }

    @Test func upgradedRefusedWhenClosing() {
        var machine = Self.machine()
        _ = machine.close()
        #expect(machine.upgraded() == nil)
        #expect(machine.state == .closing)
        #expect(machine.upgradeProbed() == nil)
    }

    @Test func upgradeAbandonedGoesBackToOpen() {
        var machine = Self.machine()
        _ = machine.upgradeProbed()
        #expect(machine.state == .upgrading)
        machine.upgradeAbandoned()
        #expect(machine.state == .open)
        #expect(machine.poll() == .hold)
        // Only an upgrading transport goes back.
        machine.upgradeAbandoned()
        #expect(machine.state == .open)
        _ = machine.close()
        machine.upgradeAbandoned()
        #expect(machine.state == .closed)
    }

    @Test func closeWhileUpgrading() {
        var machine = Self.machine()
        _ = machine.upgradeProbed()
        #expect(machine.enqueue(Self.bytes("4a")) == .queued)
        #expect(machine.close() == nil)
        #expect(machine.state == .closing)
        machine.upgradeAbandoned()
        #expect(machine.state == .closing)
        #expect(machine.poll() == .answer(Self.body("4a", "1")))
        #expect(machine.state == .closed)
    }

    // MARK: POST

    @Test func postDecodesBodies() {
        let machine = Self.machine(maxPacketsPerPost: 2)
        #expect(machine.post(Self.body("4a", "2")) == .success(["4a", "2"]))
        #expect(machine.post(Self.bytes("4é😀")) == .success(["4é😀"]))
        #expect(machine.post([]) == .failure(.empty))
        #expect(machine.post(Self.body("4a", "2", "3")) == .failure(.tooManyPackets(limit: 2)))
        #expect(machine.post(Self.bytes("4a") + [Self.rs]) == .failure(.emptyPacket))
        #expect(machine.post([0x34, 0xFF]) == .failure(.invalidUTF8))
    }

    @Test func postDoesNotDependOnState() {
        var machine = Self.machine()
        _ = machine.abandon()
        #expect(machine.post(Self.bytes("4a")) == .success(["4a"]))
    }

    // MARK: Fuzz

    /// Random operations never crash, never deliver a packet twice or out of order, and every body
    /// carries exactly what the queue held (checked against a model of the queue).
    @Test(arguments: [UInt64(1), 2, 3, 0xC0FFEE, 0xDEAD_BEEF])
    func randomOperations(seed: UInt64) {
        var random = FuzzRandom(state: seed)
        var totalDelivered = 0
        var totalCloses = 0
        for _ in 0..<400 {
            let maxQueuedBytes = Int.random(in: 0...200, using: &random)
            var machine = Self.machine(maxQueuedBytes: maxQueuedBytes)
            var model = FuzzModel()
            for _ in 0..<Int.random(in: 1...80, using: &random) {
                let before = machine.state
                let wasHolding = machine.holdingPoll
                // Weighted so sessions usually live a while before an operation ends them.
                switch Int.random(in: 0..<100, using: &random) {
                case 0..<25:
                    switch machine.poll() {
                    case .hold:
                        #expect(!wasHolding && before == .open && model.pending.isEmpty && !model.closeQueued)
                        #expect(machine.holdingPoll)
                    case .answer(let body):
                        #expect(!wasHolding)
                        model.deliver(body, noopAllowed: before == .upgrading)
                    case .overlap(let body):
                        #expect(wasHolding)
                        model.closeQueued = true
                        model.deliver(body, noopAllowed: false, mustClose: true)
                        #expect(machine.state == .closed)
                    case .gone:
                        #expect(before == .upgraded || before == .closed)
                    }
                case 25..<60:
                    let number = model.nextNumber
                    model.nextNumber += 1
                    // Sizes vary so the queue limit is reached now and then.
                    let packet = Self.bytes("4m\(number)" + String(repeating: "x", count: Int.random(in: 0...6, using: &random)))
                    switch machine.enqueue(packet) {
                    case .queued:
                        #expect(!machine.holdingPoll)
                        model.pending.append(number)
                    case .pollWaiting:
                        #expect(machine.holdingPoll)
                        model.pending.append(number)
                    case .overflow:
                        model.pending = []
                    case .dropped:
                        #expect(before == .upgraded || before == .closing || before == .closed)
                    }
                case 60..<72:
                    if let body = machine.flushHeld() {
                        #expect(wasHolding && !model.pending.isEmpty)
                        model.deliver(body, noopAllowed: false)
                    }
                case 72..<75:
                    if let body = machine.close() {
                        #expect(wasHolding)
                        model.closeQueued = true
                        model.deliver(body, noopAllowed: false, mustClose: true)
                        #expect(machine.state == .closed)
                    } else if before == .open || before == .upgrading {
                        model.closeQueued = true
                        #expect(machine.state == .closing)
                    }
                case 75..<81:
                    if let body = machine.upgradeProbed() {
                        #expect(wasHolding && before == .open)
                        model.deliver(body, noopAllowed: true)
                    }
                    if before == .open { #expect(machine.state == .upgrading) }
                case 81..<87:
                    machine.upgradeAbandoned()
                    #expect(machine.state == (before == .upgrading ? .open : before))
                case 87..<89:
                    if case let (queued, held)? = machine.upgraded() {
                        #expect(before == .open || before == .upgrading)
                        #expect(held == (wasHolding ? Self.noop : nil))
                        model.deliver(EngineIOPayload.encode(queued), noopAllowed: false, wholeQueue: true)
                        #expect(machine.state == .upgraded)
                    }
                default:
                    if Int.random(in: 0..<8, using: &random) == 0 {
                        #expect(machine.abandon() == wasHolding)
                        model.pending = []
                        model.closeQueued = false
                        #expect(machine.state == .closed)
                    } else if let body = machine.releaseHeldPoll() {
                        #expect(wasHolding)
                        model.deliver(body, noopAllowed: true)
                    }
                }
                // The queue stays within its limit; the close packet (2 bytes) is always let in.
                let allowance = model.closeQueued ? 2 : 0
                #expect(machine.pendingBytes <= maxQueuedBytes + allowance, "state \(machine.state)")
                #expect(machine.pendingBytes >= 0)
                if machine.state == .upgraded || machine.state == .closed { #expect(!machine.holdingPoll) }
            }
            // What never reached a body is still queued (or was dropped by an overflow/abandon).
            if machine.state == .open || machine.state == .upgrading, case let (queued, _)? = machine.upgraded() {
                model.deliver(EngineIOPayload.encode(queued), noopAllowed: false, wholeQueue: true)
            }
            #expect(model.closesDelivered <= 1)
            // Every packet delivered at most once, in enqueue order.
            #expect(model.delivered == model.delivered.sorted())
            #expect(Set(model.delivered).count == model.delivered.count)
            totalDelivered += model.delivered.count
            totalCloses += model.closesDelivered
        }
        // The run is not vacuous: packets and close packets did reach bodies.
        #expect(totalDelivered > 500)
        #expect(totalCloses > 100)
    }
}

/// The queue as the tests expect it: the numbers of the packets waiting, in order.
private struct FuzzModel {
    var nextNumber = 0
    var pending: [Int] = []
    var closeQueued = false
    var delivered: [Int] = []
    var closesDelivered = 0

    /// A body left the machine: it must be the whole queue (plus the close packet when queued), or
    /// a noop when the queue was empty and a noop is allowed.
    mutating func deliver(
        _ body: [UInt8], noopAllowed: Bool, mustClose: Bool = false, wholeQueue: Bool = false,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let packets = body.split(separator: 0x1E, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if body == [UInt8(ascii: "6")] {
            #expect(noopAllowed && pending.isEmpty && !closeQueued, "unexpected noop", sourceLocation: sourceLocation)
            return
        }
        var numbers: [Int] = []
        var closes = 0
        for (index, packet) in packets.enumerated() {
            if packet == "1" {
                closes += 1
                #expect(index == packets.count - 1, "close packet not last: \(packets)", sourceLocation: sourceLocation)
            } else if packet.hasPrefix("4m") {
                let digits = packet.dropFirst(2).prefix { $0.isNumber }
                numbers.append(Int(digits)!)
            } else if !(wholeQueue && packet.isEmpty && body.isEmpty) {
                Issue.record("unexpected packet \(packet) in \(packets)", sourceLocation: sourceLocation)
            }
        }
        #expect(numbers == pending, "body \(packets) but queue \(pending)", sourceLocation: sourceLocation)
        #expect(closes == (closeQueued ? 1 : 0), "closes in \(packets)", sourceLocation: sourceLocation)
        if mustClose { #expect(closes == 1, sourceLocation: sourceLocation) }
        if !wholeQueue { #expect(!body.isEmpty, "empty body", sourceLocation: sourceLocation) }
        delivered += numbers
        closesDelivered += closes
        pending = []
        if closes > 0 { closeQueued = false }
    }
}
