import Glibc
import Testing

@testable import Shared

/// `WebSocketConnection` over an in-memory connection with a manual clock, the test playing the
/// client: messages both ways, fragmentation, pings, both closing handshakes and their timeout,
/// every protocol failure's close code, the idle timeout, a vanished peer and a slow consumer.
@Suite struct WebSocketConnectionInMemoryTests {
    init() { EventLoop.shared.startInBackground() }

    /// Records what the connection delivered.
    @LoopActor
    final class Recorder: WebSocketConnectionDelegate {
        var messages: [WebSocketMessage] = []
        var closeCodes: [UInt16] = []
        func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) { messages.append(message) }
        func webSocketDidClose(_ connection: WebSocketConnection, code: UInt16) { closeCodes.append(code) }
    }

    @LoopActor
    final class ReleaseCount {
        var value = 0
    }

    /// A server-side connection and the client playing against it.
    @LoopActor
    final class Fixture {
        let clock = ManualClock(wallMilliseconds: fixedWallMilliseconds)
        let transport = InMemoryConnection()
        let recorder = Recorder()
        let connection: WebSocketConnection
        private let releaseCount = ReleaseCount()
        private var parser = WebSocketParser(role: .client)

        init(leftover: [UInt8] = [], _ configure: (inout WebSocketConfiguration) -> Void = { _ in }) {
            var configuration = WebSocketConfiguration()
            configure(&configuration)
            connection = WebSocketConnection(transport: transport, configuration: configuration, clock: clock,
                                             release: { [releaseCount] in releaseCount.value += 1 })
            connection.delegate = recorder
            connection.start(leftover: leftover)
        }

        /// How many times the connection called its `release`.
        var releases: Int { releaseCount.value }

        /// A client frame: masked, as RFC 6455 requires.
        static func frame(_ opcode: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
            WebSocketFrameEncoder.frame(opcode, payload: payload, fin: fin, maskingKey: (0x37, 0xFA, 0x21, 0x3D))
        }

        static func closeFrame(_ code: UInt16, reason: String = "") -> [UInt8] {
            frame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8))
        }

        /// The client sends `bytes`.
        func send(_ bytes: [UInt8], chunkSize: Int = .max) { transport.receive(bytes, chunkSize: chunkSize) }

        func sendText(_ text: String) { send(Self.frame(.text, Array(text.utf8))) }

        /// The frames the server wrote since the last call, decoded as a client decodes them.
        func received() -> [WebSocketEvent] {
            parser.append(transport.takeOutput())
            var events: [WebSocketEvent] = []
            while true {
                let event = parser.next()
                switch event {
                case .needMoreData:
                    return events
                case .close, .failure:
                    // The parser repeats its last event once finished.
                    if events.last != event { events.append(event) }
                    return events
                default:
                    events.append(event)
                }
            }
        }
    }

    // MARK: Messages

    @Test @LoopActor func aMaskedTextMessageReachesTheDelegate() async throws {
        let fixture = Fixture()
        fixture.sendText("héllo")
        #expect(fixture.recorder.messages == [.text("héllo")])
        #expect(fixture.connection.isOpen)
        #expect(fixture.received().isEmpty)
    }

    @Test @LoopActor func aBinaryMessageReachesTheDelegate() async throws {
        let fixture = Fixture()
        let payload: [UInt8] = [0, 1, 2, 0xFF, 0xFE] + Array(repeating: 7, count: 300)
        fixture.send(Fixture.frame(.binary, payload))
        #expect(fixture.recorder.messages == [.binary(payload)])
    }

    @Test @LoopActor func sentMessagesAreWrittenAsUnmaskedFrames() async throws {
        let fixture = Fixture()
        #expect(fixture.connection.send(text: "to the client"))
        #expect(fixture.connection.sendFrame(WebSocketFrameEncoder.binary([9, 8, 7])))
        #expect(fixture.received() == [.message(.text("to the client")), .message(.binary([9, 8, 7]))])
    }

    @Test @LoopActor func aFragmentedMessageIsReassembledAroundAPing() async throws {
        let fixture = Fixture()
        fixture.send(Fixture.frame(.text, Array("frag".utf8), fin: false))
        fixture.send(Fixture.frame(.ping, [1, 2]))
        fixture.send(Fixture.frame(.continuation, Array("men".utf8), fin: false))
        #expect(fixture.recorder.messages.isEmpty)
        fixture.send(Fixture.frame(.continuation, Array("ted".utf8)))

        #expect(fixture.recorder.messages == [.text("fragmented")])
        #expect(fixture.received() == [.pong([1, 2])])
    }

    @Test @LoopActor func framesArrivingOneByteAtATimeAreParsedWhole() async throws {
        let fixture = Fixture()
        fixture.send(Fixture.frame(.text, Array("one".utf8)) + Fixture.frame(.binary, [1, 2, 3]) + Fixture.frame(.ping, [5]), chunkSize: 1)
        #expect(fixture.recorder.messages == [.text("one"), .binary([1, 2, 3])])
        #expect(fixture.received() == [.pong([5])])
    }

    @Test @LoopActor func aPingIsAnsweredWithAPongCarryingItsPayload() async throws {
        let fixture = Fixture()
        fixture.send(Fixture.frame(.ping, Array("are you there".utf8)))
        #expect(fixture.received() == [.pong(Array("are you there".utf8))])
        // A pong from the client is accepted silently.
        fixture.send(Fixture.frame(.pong, [1]))
        #expect(fixture.received().isEmpty)
        #expect(fixture.recorder.messages.isEmpty)
        #expect(fixture.connection.isOpen)
    }

    @Test @LoopActor func bytesThatFollowedTheUpgradeRequestAreProcessedAtStart() async throws {
        let leftover = Fixture.frame(.text, Array("early".utf8)) + Fixture.frame(.ping, [4]) + Array(Fixture.frame(.text, Array("half".utf8)).prefix(4))
        let fixture = Fixture(leftover: leftover)
        #expect(fixture.recorder.messages == [.text("early")])
        #expect(fixture.received() == [.pong([4])])

        fixture.send(Array(Fixture.frame(.text, Array("half".utf8)).dropFirst(4)))
        #expect(fixture.recorder.messages == [.text("early"), .text("half")])
    }

    // MARK: Closing handshakes

    @Test @LoopActor func aPeerCloseIsEchoedWithItsCodeAndReportedOnce() async throws {
        let fixture = Fixture()
        fixture.send(Fixture.closeFrame(4001, reason: "done"))

        #expect(fixture.received() == [.close(code: 4001, reason: "")])
        #expect(fixture.recorder.closeCodes == [4001])
        #expect(fixture.transport.isClosed)
        #expect(!fixture.connection.isOpen)
        #expect(fixture.releases == 1)
        #expect(!fixture.connection.send(text: "too late"))
        fixture.connection.close(code: 1000)
        #expect(fixture.recorder.closeCodes == [4001])
        #expect(fixture.releases == 1)
    }

    @Test @LoopActor func anEmptyPeerCloseIsAnsweredEmptyAndReportedAs1005() async throws {
        let fixture = Fixture()
        fixture.send(Fixture.frame(.close, []))
        #expect(fixture.received() == [.close(code: nil, reason: "")])
        #expect(fixture.recorder.closeCodes == [1005])
        #expect(fixture.transport.isClosed)
    }

    @Test @LoopActor func aServerCloseEndsWhenThePeerAnswers() async throws {
        let fixture = Fixture()
        fixture.connection.close(code: 4000, reason: "session over")
        #expect(fixture.received() == [.close(code: 4000, reason: "session over")])
        #expect(!fixture.connection.isOpen)
        #expect(!fixture.connection.send(text: "after close"))
        #expect(!fixture.transport.isClosed)
        #expect(fixture.recorder.closeCodes.isEmpty)

        // A message still in flight from the peer is dropped; its close completes the handshake.
        fixture.sendText("crossing")
        fixture.send(Fixture.closeFrame(4000))
        #expect(fixture.recorder.messages.isEmpty)
        #expect(fixture.recorder.closeCodes == [4000])
        #expect(fixture.transport.isClosed)
        #expect(fixture.releases == 1)
        #expect(fixture.clock.pendingTimers == 0)
    }

    @Test @LoopActor func aServerCloseEndsAfterTheCloseTimeoutWhenThePeerNeverAnswers() async throws {
        let fixture = Fixture { $0.closeTimeout = .milliseconds(1_500) }
        fixture.connection.close(code: WebSocketCloseCode.normalClosure)
        #expect(fixture.received() == [.close(code: 1000, reason: "")])

        fixture.clock.advance(by: .milliseconds(1_499))
        #expect(!fixture.transport.isClosed)
        fixture.clock.advance(by: .milliseconds(1))
        #expect(fixture.transport.isClosed)
        #expect(fixture.recorder.closeCodes == [1000])
        #expect(fixture.releases == 1)
    }

    @Test @LoopActor func aPeerThatVanishesWithoutACloseFrameIsReportedAs1006() async throws {
        let fixture = Fixture()
        fixture.sendText("bye?")
        fixture.transport.peerClosesInput()
        #expect(fixture.transport.isClosed)
        #expect(fixture.recorder.messages == [.text("bye?")])
        #expect(fixture.recorder.closeCodes == [1006])
        #expect(fixture.received().isEmpty)
        #expect(fixture.releases == 1)
    }

    // MARK: Protocol failures

    @Test @LoopActor func anUnmaskedClientFrameClosesWith1002() async throws {
        let fixture = Fixture()
        fixture.send(WebSocketFrameEncoder.text("not masked"))
        #expect(fixture.received() == [.close(code: 1002, reason: "client frames must be masked")])
        #expect(fixture.recorder.messages.isEmpty)
        #expect(fixture.recorder.closeCodes == [1002])
        #expect(fixture.transport.isClosed)
    }

    @Test @LoopActor func aMessageOverTheLimitClosesWith1009() async throws {
        let fixture = Fixture { $0.limits = WebSocketLimits(maxMessageBytes: 10) }
        fixture.send(Fixture.frame(.text, Array("0123456789".utf8)))
        #expect(fixture.recorder.messages == [.text("0123456789")])

        // Fragments that add up past the limit fail as soon as the header announcing them arrives.
        fixture.send(Fixture.frame(.binary, Array(repeating: 1, count: 6), fin: false))
        fixture.send(Array(Fixture.frame(.continuation, Array(repeating: 2, count: 6)).prefix(2)))
        #expect(fixture.received() == [.close(code: 1009, reason: "message larger than the limit of 10 bytes")])
        #expect(fixture.recorder.closeCodes == [1009])
        #expect(fixture.recorder.messages.count == 1)
        #expect(fixture.transport.isClosed)
    }

    @Test @LoopActor func invalidUTF8TextClosesWith1007() async throws {
        let fixture = Fixture()
        fixture.send(Fixture.frame(.text, [0x68, 0xC3, 0x28]))
        #expect(fixture.received() == [.close(code: 1007, reason: "text message is not valid UTF-8")])
        #expect(fixture.recorder.messages.isEmpty)
        #expect(fixture.recorder.closeCodes == [1007])
        #expect(fixture.transport.isClosed)
    }

    // MARK: Idle timeout and slow consumers

    @Test @LoopActor func anIdleConnectionIsClosedWith1001() async throws {
        let fixture = Fixture {
            $0.idleTimeout = .milliseconds(30_000)
            $0.closeTimeout = .milliseconds(2_000)
        }
        fixture.clock.advance(by: .milliseconds(29_999))
        #expect(fixture.received().isEmpty)
        fixture.clock.advance(by: .milliseconds(1))
        #expect(fixture.received() == [.close(code: 1001, reason: "idle timeout")])
        #expect(!fixture.connection.isOpen)

        fixture.send(Fixture.closeFrame(1001))
        #expect(fixture.transport.isClosed)
        #expect(fixture.recorder.closeCodes == [1001])
    }

    @Test @LoopActor func activityPostponesTheIdleTimeout() async throws {
        let fixture = Fixture { $0.idleTimeout = .milliseconds(30_000) }
        fixture.clock.advance(by: .milliseconds(20_000))
        fixture.send(Fixture.frame(.pong, []))
        fixture.clock.advance(by: .milliseconds(20_000))
        fixture.sendText("still here")
        fixture.clock.advance(by: .milliseconds(29_999))
        #expect(fixture.connection.isOpen)
        #expect(fixture.received().isEmpty)

        fixture.clock.advance(by: .milliseconds(1))
        #expect(fixture.received() == [.close(code: 1001, reason: "idle timeout")])
    }

    @Test @LoopActor func withoutAnIdleTimeoutASilentConnectionStaysOpen() async throws {
        let fixture = Fixture()
        #expect(fixture.clock.pendingTimers == 0)
        fixture.clock.advance(by: .milliseconds(3_600_000))
        #expect(fixture.connection.isOpen)
        #expect(!fixture.transport.isClosed)
    }

    @Test @LoopActor func aSlowConsumerIsDisconnectedWhenItsQueuePassesTheLimit() async throws {
        let fixture = Fixture { $0.maxPendingWriteBytes = 1_000 }
        #expect(fixture.transport.limits.maxPendingWriteBytes == 1_000)
        fixture.transport.peerStopsReading()
        let message = String(repeating: "x", count: 300)  // 304 bytes a frame
        for _ in 0..<3 { #expect(fixture.connection.send(text: message)) }
        #expect(fixture.connection.pendingWriteBytes == 912)

        #expect(!fixture.connection.send(text: message))
        #expect(fixture.transport.isClosed)
        #expect(fixture.transport.closeError?.errno == ENOBUFS)
        #expect(fixture.recorder.closeCodes == [1006])
        #expect(fixture.releases == 1)
        #expect(!fixture.connection.send(text: "x"))
    }

    @Test @LoopActor func aConsumerThatCatchesUpKeepsItsConnection() async throws {
        let fixture = Fixture { $0.maxPendingWriteBytes = 1_000 }
        fixture.transport.peerStopsReading()
        #expect(fixture.connection.send(text: String(repeating: "a", count: 600)))
        fixture.transport.peerResumesReading()
        #expect(fixture.connection.pendingWriteBytes == 0)
        #expect(fixture.connection.send(text: String(repeating: "b", count: 600)))
        #expect(fixture.received() == [.message(.text(String(repeating: "a", count: 600))), .message(.text(String(repeating: "b", count: 600)))])
        #expect(fixture.connection.isOpen)
    }

    /// Echoes every text message (a peer that asks and must read the answers).
    @LoopActor
    final class Echo: WebSocketConnectionDelegate {
        var received: [String] = []
        func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
            guard case .text(let text) = message else { return }
            received.append(text)
            connection.send(text: text)
        }
        func webSocketDidClose(_ connection: WebSocketConnection, code: UInt16) {}
    }

    @Test @LoopActor func aPeerThatDoesNotReadItsAnswersIsNotReadEitherUntilTheQueueDrains() async throws {
        let fixture = Fixture { $0.maxPendingWriteBytes = 4_000 }
        let echo = Echo()
        fixture.connection.delegate = echo
        fixture.transport.peerStopsReading()
        // 102-byte answers: the queue reaches a quarter of the limit (1,000 bytes) after 10.
        let messages = (0..<40).map { ($0 < 10 ? "0" : "") + String($0) + String(repeating: "m", count: 98) }
        fixture.send(messages.flatMap { Fixture.frame(.text, Array($0.utf8)) })
        #expect(echo.received == Array(messages[0..<10]))
        #expect(fixture.connection.isInputHeld)
        #expect(fixture.connection.pendingWriteBytes == 1_020)
        // More input waits too (in the parser, and in the socket once reading is paused).
        fixture.sendText("late")
        #expect(echo.received.count == 10)
        #expect(fixture.connection.isOpen, "held, not disconnected as a slow consumer")

        fixture.transport.peerResumesReading()
        #expect(echo.received == messages + ["late"])
        #expect(!fixture.connection.isInputHeld)
        #expect(fixture.received() == (messages + ["late"]).map { .message(.text($0)) })
        #expect(fixture.connection.isOpen)
    }

    @Test @LoopActor func aPeerThatNeverReadsIsStillDisconnectedAtTheLimit() async throws {
        let fixture = Fixture { $0.maxPendingWriteBytes = 4_000 }
        let echo = Echo()
        fixture.connection.delegate = echo
        fixture.transport.peerStopsReading()
        fixture.send((0..<10).flatMap { _ in Fixture.frame(.text, Array(String(repeating: "q", count: 100).utf8)) })
        #expect(fixture.connection.isInputHeld)
        // What the server sends on its own (deliveries) still queues, up to the limit.
        let delivery = String(repeating: "d", count: 1_000)
        for _ in 0..<2 { #expect(fixture.connection.send(text: delivery)) }
        #expect(!fixture.connection.send(text: delivery))
        #expect(fixture.transport.isClosed)
        #expect(fixture.transport.closeError?.errno == ENOBUFS)
    }
}
