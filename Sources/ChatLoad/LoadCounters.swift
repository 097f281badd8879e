import Glibc
import Shared

/// Everything a run counts. The connections update it; the reporter prints it.
struct LoadCounters {
    /// Connections whose socket was created (or attempted).
    var started = 0
    /// Started and not yet authenticated, refused or failed.
    var inFlight = 0
    /// Connections that got the Socket.IO CONNECT answer (ever).
    var connected = 0
    /// Authenticated connections open right now.
    var open = 0
    /// CONNECT_ERROR answers, by the error's `data.code`.
    var refusedByCode: [String: Int] = [:]
    /// Failures before authentication, by errno name or reason (`http_503`, `handshake_timeout`, ...).
    var failedByReason: [String: Int] = [:]
    /// Authenticated connections lost before we closed them, by reason.
    var droppedByReason: [String: Int] = [:]
    /// Connections we closed at the end whose close handshake completed (or whose peer then hung up).
    var closedGracefully = 0
    /// Engine.IO pings answered with a pong.
    var pingsAnswered = 0
    /// Socket.IO packets received after authentication (events, acks).
    var packetsReceived = 0
    /// Time from `socket()` to the CONNECT answer, microseconds, one entry per authenticated connection.
    var connectLatencies: [UInt32] = []
    /// Events received with a latency field (`--latency-field`), and their latencies.
    var eventsMeasured = 0
    var eventLatencies = LatencyHistogram()
    /// The messages benchmark: sent, refused by code, and what was acknowledged (stored) and
    /// delivered to receivers' sockets, with latencies from each message's intended send time.
    var messagesSent = 0
    var messageErrorsByCode: [String: Int] = [:]
    var messages = MessageTally()
    var messageErrors: Int { messageErrorsByCode.values.reduce(0, +) }
    /// Ack latency from the moment the frame was written (not the intended time): what the
    /// server took, without the generator's own timer slack (up to a millisecond or two).
    var ackFromSendLatencies = LatencyHistogram()
    /// The current `--interval` (nil without one), and the errors by code when it began.
    var interval: MessageTally?
    var errorsAtIntervalStart: [String: Int] = [:]
    /// The `retryAfterMs` refusals carried (`overloaded`): how many, the least and the most.
    var retryAfterCount = 0
    var retryAfterMinMilliseconds = Int64.max
    var retryAfterMaxMilliseconds = Int64.min

    mutating func recordRetryAfter(milliseconds: Int64) {
        retryAfterCount += 1
        retryAfterMinMilliseconds = min(retryAfterMinMilliseconds, milliseconds)
        retryAfterMaxMilliseconds = max(retryAfterMaxMilliseconds, milliseconds)
    }

    mutating func messageAcknowledged(latencyNanoseconds: UInt64, fromSendNanoseconds: UInt64) {
        messages.acknowledged(latencyNanoseconds: latencyNanoseconds)
        interval?.acknowledged(latencyNanoseconds: latencyNanoseconds)
        ackFromSendLatencies.record(nanoseconds: fromSendNanoseconds)
    }

    mutating func messageDelivered(latencyNanoseconds: UInt64) {
        messages.delivered(latencyNanoseconds: latencyNanoseconds)
        interval?.delivered(latencyNanoseconds: latencyNanoseconds)
    }

    /// The errors since the current interval began, by code.
    var intervalErrorsByCode: [String: Int] {
        messageErrorsByCode.reduce(into: [:]) { result, item in
            let count = item.value - errorsAtIntervalStart[item.key, default: 0]
            if count > 0 { result[item.key] = count }
        }
    }

    /// Begins an interval: counts and latencies from zero.
    mutating func startInterval() {
        if interval == nil { interval = MessageTally() } else { interval?.reset() }
        errorsAtIntervalStart = messageErrorsByCode
    }

    var refused: Int { refusedByCode.values.reduce(0, +) }
    var failed: Int { failedByReason.values.reduce(0, +) }
    var dropped: Int { droppedByReason.values.reduce(0, +) }

    mutating func recordConnected(latencyNanoseconds: UInt64) {
        connected += 1
        open += 1
        inFlight -= 1
        connectLatencies.append(UInt32(clamping: latencyNanoseconds / 1000))
    }

    mutating func recordRefused(code: String) {
        refusedByCode[code, default: 0] += 1
        inFlight -= 1
    }

    mutating func recordFailed(reason: String) {
        failedByReason[reason, default: 0] += 1
        inFlight -= 1
    }

    mutating func recordDropped(reason: String) {
        droppedByReason[reason, default: 0] += 1
        open -= 1
    }

    mutating func recordClosedByUs(gracefully: Bool) {
        open -= 1
        if gracefully { closedGracefully += 1 }
    }

    /// The latency at quantile `q` (0...1), in milliseconds, from a sorted copy.
    static func quantileMilliseconds(_ sorted: [UInt32], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let index = min(sorted.count - 1, Int((Double(sorted.count) * q).rounded(.up)) - 1)
        return Double(sorted[max(0, index)]) / 1000
    }
}

/// Messages acknowledged and delivered, and their latencies: over the run, or over one interval.
struct MessageTally {
    private(set) var acknowledged = 0
    private(set) var delivered = 0
    private(set) var ackLatencies = LatencyHistogram()
    private(set) var deliveryLatencies = LatencyHistogram()

    mutating func acknowledged(latencyNanoseconds: UInt64) {
        acknowledged += 1
        ackLatencies.record(nanoseconds: latencyNanoseconds)
    }

    mutating func delivered(latencyNanoseconds: UInt64) {
        delivered += 1
        deliveryLatencies.record(nanoseconds: latencyNanoseconds)
    }

    mutating func reset() {
        acknowledged = 0
        delivered = 0
        ackLatencies.reset()
        deliveryLatencies.reset()
    }
}

/// Latencies in 10 µs buckets up to 10 s (and one bucket beyond): quantiles without keeping
/// every sample, whatever the number of events.
struct LatencyHistogram {
    private static let bucketMicroseconds: UInt64 = 10
    private static let buckets = 1_000_000
    private var counts = [UInt32](repeating: 0, count: LatencyHistogram.buckets + 1)
    private(set) var total = 0
    private(set) var maxMicroseconds: UInt64 = 0

    mutating func record(nanoseconds: UInt64) {
        let micros = nanoseconds / 1000
        maxMicroseconds = max(maxMicroseconds, micros)
        let index = min(Int(clamping: micros / Self.bucketMicroseconds), Self.buckets)
        counts[index] &+= 1
        total += 1
    }

    mutating func reset() {
        guard total > 0 else { return }
        for index in counts.indices { counts[index] = 0 }
        total = 0
        maxMicroseconds = 0
    }

    /// The latency at quantile `q` (0...1) in milliseconds (the bucket's upper edge).
    func quantileMilliseconds(_ q: Double) -> Double {
        guard total > 0 else { return 0 }
        let rank = max(1, Int((Double(total) * q).rounded(.up)))
        var seen = 0
        for (index, count) in counts.enumerated() where count > 0 {
            seen += Int(count)
            if seen >= rank { return Double(UInt64(index + 1) * Self.bucketMicroseconds) / 1000 }
        }
        return Double(maxMicroseconds) / 1000
    }
}

/// Names for the errno values a load test meets, so reports say `EADDRNOTAVAIL`, not `99`.
enum ErrnoName {
    static func name(_ code: CInt) -> String {
        switch code {
        case EADDRNOTAVAIL: "EADDRNOTAVAIL"
        case EADDRINUSE: "EADDRINUSE"
        case ECONNREFUSED: "ECONNREFUSED"
        case ECONNRESET: "ECONNRESET"
        case ECONNABORTED: "ECONNABORTED"
        case ETIMEDOUT: "ETIMEDOUT"
        case EMFILE: "EMFILE"
        case ENFILE: "ENFILE"
        case ENOBUFS: "ENOBUFS"
        case ENOMEM: "ENOMEM"
        case EPIPE: "EPIPE"
        case EHOSTUNREACH: "EHOSTUNREACH"
        case ENETUNREACH: "ENETUNREACH"
        case EACCES: "EACCES"
        case EPERM: "EPERM"
        case EINVAL: "EINVAL"
        case EAGAIN: "EAGAIN"
        default: "errno_\(code)"
        }
    }
}

/// Formats the per-second status line and the final summary.
enum LoadReport {
    /// `t=12s target=... started=... connecting=... connected=... open=... refused=... failed=... dropped=... pings=... packets=... rss=...`
    static func statusLine(elapsedSeconds: Double, target: Int, counters: LoadCounters, residentBytes: Int?) -> String {
        var line = "t=\(format(elapsedSeconds, decimals: 0))s target=\(target) started=\(counters.started)"
        line += " connecting=\(counters.inFlight) connected=\(counters.connected) open=\(counters.open)"
        line += " refused=\(counters.refused) failed=\(counters.failed) dropped=\(counters.dropped)"
        line += " pings=\(counters.pingsAnswered) packets=\(counters.packetsReceived)"
        if counters.messagesSent > 0 {
            line += " sent=\(counters.messagesSent) acked=\(counters.messages.acknowledged) delivered=\(counters.messages.delivered)"
            line += " ack-p99=\(format(counters.messages.ackLatencies.quantileMilliseconds(0.99), decimals: 2))ms"
            line += " delivery-p99=\(format(counters.messages.deliveryLatencies.quantileMilliseconds(0.99), decimals: 2))ms"
            line += breakdown("message-errors", counters.messageErrorsByCode)
        }
        if counters.eventsMeasured > 0 {
            line += " events=\(counters.eventsMeasured) p99=\(format(counters.eventLatencies.quantileMilliseconds(0.99), decimals: 2))ms"
        }
        if let residentBytes { line += " rss=\(format(Double(residentBytes) / 1_048_576, decimals: 1))MiB" }
        line += breakdown("refused", counters.refusedByCode)
        line += breakdown("failed", counters.failedByReason)
        line += breakdown("dropped", counters.droppedByReason)
        return line
    }

    /// The final JSON object (one line).
    static func summary(
        options: LoadOptions, counters: LoadCounters, rampSeconds: Double?, totalSeconds: Double,
        peakOpen: Int, baselineResidentBytes: Int?, residentBytes: Int?, peakResidentBytes: Int?, exitStatus: Int32
    ) -> String {
        let sorted = counters.connectLatencies.sorted()
        var object = JSONObject()
        object["summary"] = .string("chatload")
        object["target"] = .int(Int64(options.connections))
        object["started"] = .int(Int64(counters.started))
        object["connected"] = .int(Int64(counters.connected))
        object["peakOpen"] = .int(Int64(peakOpen))
        object["refused"] = .int(Int64(counters.refused))
        object["refusedByCode"] = counts(counters.refusedByCode)
        object["failed"] = .int(Int64(counters.failed))
        object["failedByReason"] = counts(counters.failedByReason)
        object["dropped"] = .int(Int64(counters.dropped))
        object["droppedByReason"] = counts(counters.droppedByReason)
        object["closedGracefully"] = .int(Int64(counters.closedGracefully))
        object["pingsAnswered"] = .int(Int64(counters.pingsAnswered))
        object["packetsReceived"] = .int(Int64(counters.packetsReceived))
        object["rampSeconds"] = rampSeconds.map { .double(rounded($0, 3)) } ?? .null
        object["connectRatePerSecond"] = rampSeconds.map { $0 > 0 ? .double(rounded(Double(counters.connected) / $0, 1)) : .null } ?? .null
        object["connectLatencyMs"] = sorted.isEmpty ? .null : .object([
            "p50": .double(rounded(LoadCounters.quantileMilliseconds(sorted, 0.5), 3)),
            "p99": .double(rounded(LoadCounters.quantileMilliseconds(sorted, 0.99), 3)),
            "max": .double(rounded(LoadCounters.quantileMilliseconds(sorted, 1), 3)),
        ])
        object["eventsMeasured"] = .int(Int64(counters.eventsMeasured))
        let events = counters.eventLatencies
        object["eventLatencyMs"] = events.total == 0 ? .null : .object([
            "p50": .double(rounded(events.quantileMilliseconds(0.5), 3)), "p90": .double(rounded(events.quantileMilliseconds(0.9), 3)),
            "p99": .double(rounded(events.quantileMilliseconds(0.99), 3)), "p999": .double(rounded(events.quantileMilliseconds(0.999), 3)),
            "max": .double(rounded(Double(events.maxMicroseconds) / 1000, 3)),
        ])
        if counters.messagesSent > 0 {
            object["messagesSent"] = .int(Int64(counters.messagesSent))
            object["messagesAcknowledged"] = .int(Int64(counters.messages.acknowledged))
            object["messageErrorsByCode"] = counts(counters.messageErrorsByCode)
            object["messagesDelivered"] = .int(Int64(counters.messages.delivered))
            object["retryAfterMs"] = counters.retryAfterCount == 0 ? .null : .object([
                "count": .int(Int64(counters.retryAfterCount)),
                "min": .int(counters.retryAfterMinMilliseconds), "max": .int(counters.retryAfterMaxMilliseconds),
            ])
            object["ackLatencyMs"] = histogram(counters.messages.ackLatencies)
            object["ackFromSendLatencyMs"] = histogram(counters.ackFromSendLatencies)
            object["deliveryLatencyMs"] = histogram(counters.messages.deliveryLatencies)
        }
        object["totalSeconds"] = .double(rounded(totalSeconds, 3))
        object["sourceAddresses"] = .int(Int64(options.sourceAddresses.count))
        object["loadBaselineRSSBytes"] = baselineResidentBytes.map { .int(Int64($0)) } ?? .null
        object["loadRSSBytes"] = residentBytes.map { .int(Int64($0)) } ?? .null
        object["loadPeakRSSBytes"] = peakResidentBytes.map { .int(Int64($0)) } ?? .null
        object["exitStatus"] = .int(Int64(exitStatus))
        return JSONValue.object(object).jsonString
    }

    /// `{"interval": {...}}`: one `--interval`'s acknowledged and delivered counts, latencies and errors.
    static func intervalLine(index: Int, seconds: Int, counters: LoadCounters) -> String {
        let tally = counters.interval ?? MessageTally()
        return JSONValue.object([
            "interval": .object([
                "index": .int(Int64(index)),
                "seconds": .int(Int64(seconds)),
                "acknowledged": .int(Int64(tally.acknowledged)),
                "delivered": .int(Int64(tally.delivered)),
                "ackLatencyMs": histogram(tally.ackLatencies),
                "deliveryLatencyMs": histogram(tally.deliveryLatencies),
                "errorsByCode": counts(counters.intervalErrorsByCode),
            ]),
        ]).jsonString
    }

    /// p50, p90, p99, p99.9 and max in milliseconds; null when empty.
    private static func histogram(_ latencies: LatencyHistogram) -> JSONValue {
        latencies.total == 0 ? .null : .object([
            "p50": .double(rounded(latencies.quantileMilliseconds(0.5), 3)), "p90": .double(rounded(latencies.quantileMilliseconds(0.9), 3)),
            "p99": .double(rounded(latencies.quantileMilliseconds(0.99), 3)), "p999": .double(rounded(latencies.quantileMilliseconds(0.999), 3)),
            "max": .double(rounded(Double(latencies.maxMicroseconds) / 1000, 3)),
        ])
    }

    private static func breakdown(_ label: String, _ counts: [String: Int]) -> String {
        guard !counts.isEmpty else { return "" }
        let items = counts.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }
        return " \(label){\(items.joined(separator: ","))}"
    }

    private static func counts(_ counts: [String: Int]) -> JSONValue {
        .object(JSONObject(counts.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.int(Int64($0.value))) }))
    }

    private static func rounded(_ value: Double, _ decimals: Int) -> Double {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        return (value * scale).rounded() / scale
    }

    static func format(_ value: Double, decimals: Int) -> String {
        let text = "\(rounded(value, decimals))"
        if decimals == 0, text.hasSuffix(".0") { return String(text.dropLast(2)) }
        return text
    }
}

/// The process's resident set size, from /proc/self/status (VmRSS / VmHWM).
enum ProcessMemory {
    /// Current RSS in bytes.
    static func residentBytes() -> Int? { statusField("VmRSS:") }
    /// Peak RSS in bytes.
    static func peakResidentBytes() -> Int? { statusField("VmHWM:") }

    private static func statusField(_ name: String) -> Int? {
        let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = String(decoding: bytes[..<count], as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let digits = line.dropFirst(name.count).filter { $0.isNumber }
            return Int(digits).map { $0 * 1024 }
        }
        return nil
    }
}
