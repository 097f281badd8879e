import Testing
@testable import Shared

/// The pub/sub connection against a real Redis (`TEST_REDIS_URL`).
@Suite(.serialized) struct RedisSubscriberTests {
    init() { EventLoop.shared.startInBackground() }

    /// Collects what a subscriber delivers and when it says it resubscribed.
    @LoopActor final class Inbox {
        var messages: [(channel: String, payload: [UInt8])] = []
        var resubscribed = 0
        var disconnects: [RedisError] = []

        func payloads(on channel: String) -> [[UInt8]] {
            messages.filter { $0.channel == channel }.map(\.payload)
        }
    }

    @LoopActor
    private func makeSubscriber(
        _ configuration: RedisConfiguration? = nil, waitForConnection: Bool = true
    ) async throws -> (RedisSubscriber, Inbox) {
        let inbox = Inbox()
        let subscriber = RedisSubscriber(configuration: try configuration ?? RedisTestSupport.configuration()) { channel, payload in
            inbox.messages.append((channel, payload))
        }
        subscriber.onResubscribed = { inbox.resubscribed += 1 }
        subscriber.onDisconnected = { inbox.disconnects.append($0) }
        subscriber.start()
        if waitForConnection {
            guard await subscriber.waitUntilConnected(timeout: .milliseconds(3_000)) else {
                subscriber.close()
                throw RedisTestSupport.SetupFailure(description: "subscriber cannot connect: \(subscriber.lastFailureReason ?? "?")")
            }
        }
        return (subscriber, inbox)
    }

    @LoopActor
    private func subscriberCount(_ channel: String, _ client: RedisClient) async throws -> Int64? {
        try await client.send(["PUBSUB", "NUMSUB", channel]).array?.last?.int
    }

    @Test @LoopActor func publishedMessagesArriveBinarySafeAndInOrder() async throws {
        let (subscriber, inbox) = try await makeSubscriber()
        defer { subscriber.close() }
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let channel = RedisTestSupport.uniqueKey("chan")
        try await subscriber.subscribe(channel)
        #expect(subscriber.channels == [channel])
        // Confirmed on return: a publish right now reaches us.
        #expect(try await subscriberCount(channel, client) == 1)
        let binary = (0...255).map { UInt8($0) }
        #expect(try await client.send([Array("PUBLISH".utf8), Array(channel.utf8), binary]) == .integer(1))
        let replies = try await client.pipeline((0..<500).map { ["PUBLISH", channel, "m\($0)"] })
        #expect(replies.allSatisfy { $0 == .integer(1) })
        #expect(await RedisTestSupport.eventually { inbox.messages.count == 501 })
        #expect(inbox.payloads(on: channel).first == binary)
        #expect(inbox.payloads(on: channel).dropFirst().map { String(decoding: $0, as: UTF8.self) } == (0..<500).map { "m\($0)" })
        // Subscribing again to a confirmed channel returns at once.
        try await subscriber.subscribe(channel)
        #expect(inbox.resubscribed == 0)
    }

    @Test @LoopActor func unsubscribeStopsDelivery() async throws {
        let (subscriber, inbox) = try await makeSubscriber()
        defer { subscriber.close() }
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let kept = RedisTestSupport.uniqueKey("kept")
        let dropped = RedisTestSupport.uniqueKey("dropped")
        try await subscriber.subscribe([kept, dropped])
        await subscriber.unsubscribe(dropped)
        #expect(subscriber.channels == [kept])
        #expect(try await subscriberCount(dropped, client) == 0)
        #expect(try await subscriberCount(kept, client) == 1)
        #expect(try await client.send(["PUBLISH", dropped, "x"]) == .integer(0))
        #expect(try await client.send(["PUBLISH", kept, "y"]) == .integer(1))
        #expect(await RedisTestSupport.eventually { inbox.messages.count == 1 })
        #expect(inbox.messages.first?.channel == kept)
        // Unsubscribing what is not subscribed is harmless.
        await subscriber.unsubscribe(dropped)
        await subscriber.unsubscribe("never-subscribed")
        #expect(try await client.send(["PUBLISH", kept, "z"]) == .integer(1))
        #expect(await RedisTestSupport.eventually { inbox.messages.count == 2 })
    }

    @Test @LoopActor func interleavedSubscribeAndUnsubscribeEndInTheLastRequestedState() async throws {
        let (subscriber, _) = try await makeSubscriber()
        defer { subscriber.close() }
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let channel = RedisTestSupport.uniqueKey("flip")
        let first = Task { @LoopActor in try await subscriber.subscribe(channel) }
        let second = Task { @LoopActor in await subscriber.unsubscribe(channel) }
        let third = Task { @LoopActor in try await subscriber.subscribe(channel) }
        try await first.value
        await second.value
        try await third.value
        #expect(try await subscriberCount(channel, client) == 1)
        #expect(subscriber.channels == [channel])
        await subscriber.unsubscribe(channel)
        #expect(try await subscriberCount(channel, client) == 0)
    }

    @Test @LoopActor func thousandsOfChannelsInOneCall() async throws {
        let (subscriber, inbox) = try await makeSubscriber()
        defer { subscriber.close() }
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let prefix = RedisTestSupport.uniqueKey("many")
        let channels = (0..<1_200).map { "\(prefix):\($0)" }
        try await subscriber.subscribe(channels)
        #expect(try await subscriberCount(channels[0], client) == 1)
        #expect(try await subscriberCount(channels[1_199], client) == 1)
        #expect(try await client.send(["PUBLISH", channels[700], "hello"]) == .integer(1))
        #expect(await RedisTestSupport.eventually { inbox.messages.count == 1 })
        await subscriber.unsubscribe(channels)
        #expect(try await subscriberCount(channels[1_199], client) == 0)
    }

    @Test @LoopActor func killedSubscriptionReconnectsResubscribesAndFlowsAgain() async throws {
        var configuration = try RedisTestSupport.configuration()
        configuration.clientName = "sub-\(UInt32.random(in: 0...UInt32.max))"
        configuration.backoff = RedisBackoff(minimum: .milliseconds(20), maximum: .milliseconds(100))
        let (subscriber, inbox) = try await makeSubscriber(configuration)
        defer { subscriber.close() }
        let admin = try await RedisTestSupport.connectedClient()
        defer { admin.close() }
        let first = RedisTestSupport.uniqueKey("a")
        let second = RedisTestSupport.uniqueKey("b")
        try await subscriber.subscribe([first, second])

        try await RedisTestSupport.kill(clientNamed: configuration.clientName ?? "", using: admin)
        #expect(await RedisTestSupport.eventually { inbox.resubscribed == 1 })
        #expect(inbox.disconnects == [.connectionLost])
        #expect(subscriber.isConnected)
        #expect(try await subscriberCount(first, admin) == 1)
        #expect(try await subscriberCount(second, admin) == 1)
        #expect(try await admin.send(["PUBLISH", second, "after"]) == .integer(1))
        #expect(await RedisTestSupport.eventually { inbox.messages.count == 1 })
        #expect(inbox.messages.first?.channel == second)
        #expect(inbox.messages.first?.payload == Array("after".utf8))
    }

    @Test @LoopActor func wishesMadeWhileDisconnectedAreSubscribedOnConnect() async throws {
        let base = try RedisTestSupport.configuration()
        let port = try RedisTestSupport.freePort()
        var configuration = RedisConfiguration(host: "127.0.0.1", port: Int(port), database: base.database,
                                               username: base.username, password: base.password)
        configuration.backoff = RedisBackoff(minimum: .milliseconds(20), maximum: .milliseconds(100))
        let (subscriber, inbox) = try await makeSubscriber(configuration, waitForConnection: false)
        defer { subscriber.close() }
        let channel = RedisTestSupport.uniqueKey("wish")
        await #expect(throws: RedisError.unavailable) { try await subscriber.subscribe(channel) }
        #expect(subscriber.channels == [channel])
        #expect(!subscriber.isConnected)

        let forwarder = try await RedisTestSupport.forwarder(port: port, to: base)
        defer { forwarder.stop() }
        #expect(await RedisTestSupport.eventually { inbox.resubscribed == 1 })
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        #expect(try await client.send(["PUBLISH", channel, "hi"]) == .integer(1))
        #expect(await RedisTestSupport.eventually { inbox.messages.count == 1 })

        // The forwarder cuts the connection: reported, and restored once it listens again.
        forwarder.stop()
        #expect(await RedisTestSupport.eventually { inbox.disconnects.count == 1 })
        #expect(await subscriber.waitUntilConnected(timeout: .milliseconds(200)) == false)
        let again = try await RedisTestSupport.forwarder(port: port, to: base)
        defer { again.stop() }
        #expect(await RedisTestSupport.eventually { inbox.resubscribed == 2 })
        #expect(try await client.send(["PUBLISH", channel, "back"]) == .integer(1))
        #expect(await RedisTestSupport.eventually { inbox.messages.count == 2 })
    }

    @Test @LoopActor func closeStopsEverything() async throws {
        let (subscriber, inbox) = try await makeSubscriber()
        let client = try await RedisTestSupport.connectedClient()
        defer { client.close() }
        let channel = RedisTestSupport.uniqueKey("closed")
        try await subscriber.subscribe(channel)
        subscriber.close()
        #expect(!subscriber.isConnected)
        #expect(await RedisTestSupport.eventually { (try? await subscriberCount(channel, client)) == 0 } )
        #expect(inbox.disconnects.isEmpty)
        await #expect(throws: RedisError.unavailable) { try await subscriber.subscribe("other") }
    }
}
