import Glibc
import Shared

/// The fan-out benchmark's reference (`--redis-url URL --channel C`): `connections` plain Redis
/// subscribers of one channel, each its own connection, as if every client subscribed to Redis
/// directly. The same publisher drives them as drives the gateways' room channel, and the same
/// latency field is measured, so Redis's own `PUBLISH` fan-out rate and latency to that many
/// subscribers sit next to the gateways' in one run.
@LoopActor
final class RedisSubscriberLoad {
    private let options: LoadOptions
    private let configuration: RedisConfiguration
    private var subscribers: [RedisSubscriber] = []
    private var subscribed = 0
    private var received = 0
    private var measured = 0
    private var latencies = LatencyHistogram()
    private let field: [UInt8]
    private let startedAt = MonotonicClock.now()
    private var reportTimer: TimerHandle?

    init(options: LoadOptions, url: String) throws(RedisError) {
        self.options = options
        configuration = try RedisConfiguration(url: url)
        field = Array("\"\(options.latencyField ?? "sentAt")\":".utf8)
    }

    func start() {
        for _ in 0..<options.connections {
            let subscriber = RedisSubscriber(configuration: configuration) { [unowned self] _, payload in self.receive(payload) }
            subscriber.start()
            subscribers.append(subscriber)
            Task.onLoop {
                guard await subscriber.waitUntilConnected(timeout: .seconds(60)) else { return self.emit("chatload: a subscriber could not connect") }
                do throws(RedisError) {
                    try await subscriber.subscribe(self.options.redisChannel)
                    self.subscribed += 1
                    if self.subscribed == self.options.connections {
                        let seconds = Double(MonotonicClock.now() &- self.startedAt) / 1e9
                        self.emit("ramp complete: connected=\(self.subscribed) refused=0 failed=0 in \(LoadReport.format(seconds, decimals: 2))s")
                    }
                } catch {
                    self.emit("chatload: subscribe failed: \(error.message)")
                }
            }
        }
        scheduleReport()
    }

    /// A published payload: its latency field, if any, is measured.
    private func receive(_ payload: [UInt8]) {
        received += 1
        guard let sentAt = Self.number(after: field, in: payload), sentAt > 0 else { return }
        measured += 1
        latencies.record(nanoseconds: MonotonicClock.now() &- sentAt)
    }

    /// The unsigned integer right after `key` in `payload` (a flat search: the payload is the
    /// publisher's own JSON).
    nonisolated static func number(after key: [UInt8], in payload: [UInt8]) -> UInt64? {
        guard key.count <= payload.count else { return nil }
        var index = 0
        while index + key.count <= payload.count {
            if payload[index] == key[0] && payload[index..<(index + key.count)].elementsEqual(key) {
                var value: UInt64 = 0
                var position = index + key.count
                var digits = 0
                while position < payload.count, payload[position] >= 48, payload[position] <= 57, digits < 19 {
                    value = value * 10 + UInt64(payload[position] - 48)
                    position += 1
                    digits += 1
                }
                return digits > 0 ? value : nil
            }
            index += 1
        }
        return nil
    }

    func finish() {
        if let reportTimer { EventLoop.shared.cancel(reportTimer) }
        for subscriber in subscribers { subscriber.close() }
        var object = JSONObject()
        object["summary"] = .string("redis-subscribers")
        object["target"] = .int(Int64(options.connections))
        object["connected"] = .int(Int64(subscribed))
        object["packetsReceived"] = .int(Int64(received))
        object["eventsMeasured"] = .int(Int64(measured))
        object["eventLatencyMs"] = latencies.total == 0 ? .null : .object([
            "p50": .double(latencies.quantileMilliseconds(0.5)), "p90": .double(latencies.quantileMilliseconds(0.9)),
            "p99": .double(latencies.quantileMilliseconds(0.99)), "p999": .double(latencies.quantileMilliseconds(0.999)),
            "max": .double(Double(latencies.maxMicroseconds) / 1000),
        ])
        emit(JSONValue.object(object).jsonString)
        EventLoop.shared.stop()
    }

    private func scheduleReport() {
        reportTimer = EventLoop.shared.schedule(after: .seconds(1)) { [weak self] in
            guard let self else { return }
            self.emit("t=\(Int((MonotonicClock.now() &- self.startedAt) / 1_000_000_000))s subscribed=\(self.subscribed) events=\(self.measured)")
            self.scheduleReport()
        }
    }

    private func emit(_ line: String) { LoadGenerator.writeLine(line) }
}
