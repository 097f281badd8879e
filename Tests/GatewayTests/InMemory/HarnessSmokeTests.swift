import Testing
@testable import Gateway
@testable import Shared

/// The in-memory gateway itself: a request, a socket, a command and its ack, a timer on the manual clock.
@Suite struct HarnessSmokeTests {
    init() { EventLoop.shared.startInBackground() }

    @Test @LoopActor func healthAnswersOverAnInMemoryConnection() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let response = try await gateway.request(.GET, "/health")
        #expect(response.status == 200)
        #expect(response.header("X-Request-ID") != nil)
        #expect(response.json?["status"]?.stringValue == "ok")
    }

    @Test @LoopActor func aSocketConnectsSendsAndGetsItsAck() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let alice = try await gateway.account("alice")
        let bob = try await gateway.account("bob")
        let socket = try await gateway.connectedSocket(alice)
        socket.emit("sendMessage", [["receiverId": .int(bob.id), "content": "hello", "clientMsgId": "c-1"]], ack: 7)
        let command = try await gateway.nextCommand()
        #expect(command.envelope.userID == alice.id)
        #expect(command.envelope.reply?.ack == 7)
        try await gateway.reply(to: command.envelope, .ok(["id": 99]))
        let ack = try await socket.ack(7)
        #expect(ack == [["id": 99]])
    }

    @Test @LoopActor func theHeartbeatRunsOnTheManualClock() async throws {
        let gateway = try await GatewayHarness()
        defer { gateway.close() }
        let socket = try await gateway.connectedSocket(try await gateway.account())
        socket.answersPings = false
        gateway.clock.advance(by: .milliseconds(25_100))
        _ = socket.drainInbox()
        #expect(socket.pingsSeen == 1)
        gateway.clock.advance(by: .milliseconds(20_500))
        #expect(try await socket.closed() == 1001)
        #expect(socket.closeReason == "ping timeout")
    }
}
