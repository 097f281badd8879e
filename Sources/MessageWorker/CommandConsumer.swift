import Shared

/// One entry of the command stream.
struct StreamEntry: Sendable, Equatable {
    let id: String
    let fields: [(String, [UInt8])]

    static func == (lhs: StreamEntry, rhs: StreamEntry) -> Bool {
        lhs.id == rhs.id && lhs.fields.elementsEqual(rhs.fields) { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    /// Parses an `XREADGROUP` reply: `[[stream, [[id, [field, value, ...]], ...]]]`, or null on timeout.
    static func parse(readReply reply: RedisValue) -> [StreamEntry] {
        guard case .array(let streams) = reply else { return [] }
        var entries: [StreamEntry] = []
        for stream in streams {
            guard case .array(let pair) = stream, pair.count == 2, case .array(let items) = pair[1] else { continue }
            for item in items {
                guard case .array(let parts) = item, parts.count == 2, let id = parts[0].string else { continue }
                var fields: [(String, [UInt8])] = []
                if case .array(let flat) = parts[1] {
                    var index = 0
                    while index + 1 < flat.count {
                        if let name = flat[index].string, let value = flat[index + 1].bytes { fields.append((name, value)) }
                        index += 2
                    }
                }
                entries.append(StreamEntry(id: id, fields: fields))
            }
        }
        return entries
    }
}

/// Reads the command stream as one consumer of the workers' group and acknowledges what it handled.
///
/// Skeleton of the message path: it creates the group, first re-reads its own pending entries (left
/// by a crash of this consumer name), then blocks for new ones. Processing arrives with the messages
/// issue; today every entry is logged and acknowledged.
@LoopActor
final class CommandConsumer {
    private let reader: RedisClient
    private let commands: RedisClient
    private let configuration: WorkerConfiguration
    private let logger: Logger
    private var running = false
    private(set) var processed = 0

    /// `reader` is a connection of its own: a blocking XREADGROUP would hold up other commands.
    init(reader: RedisClient, commands: RedisClient, configuration: WorkerConfiguration, logger: Logger) {
        self.reader = reader
        self.commands = commands
        self.configuration = configuration
        self.logger = logger
    }

    func start() {
        guard !running else { return }
        running = true
        Task { @LoopActor in await self.run() }
    }

    func stop() { running = false }

    private func run() async {
        var groupReady = false
        var readPendingFirst = true
        var backoff: Int64 = 100
        // The clients connect in the background; waiting here avoids a spurious failure at start-up.
        _ = await reader.waitUntilConnected(timeoutMilliseconds: 5_000)
        _ = await commands.waitUntilConnected(timeoutMilliseconds: 5_000)
        while running {
            do {
                if !groupReady {
                    try await ensureGroup()
                    groupReady = true
                }
                // "0" re-reads entries delivered to this consumer but never acknowledged; ">" asks for new ones.
                let start = readPendingFirst ? "0" : ">"
                let reply = try await reader.send([
                    "XREADGROUP", "GROUP", configuration.group, configuration.workerID,
                    "COUNT", String(configuration.batchSize), "BLOCK", String(configuration.blockMilliseconds),
                    "STREAMS", configuration.stream, start,
                ])
                let entries = StreamEntry.parse(readReply: reply)
                if readPendingFirst && entries.isEmpty { readPendingFirst = false }
                if !entries.isEmpty { try await handle(entries) }
                backoff = 100
            } catch {
                if case .server(let message) = error as? RedisError, message.hasPrefix("NOGROUP") { groupReady = false }
                if !running { break }
                logger.warn("command stream read failed", ["error": .string(String(describing: error)), "retryInMs": .int(backoff)])
                await EventLoop.shared.sleep(milliseconds: backoff)
                backoff = min(backoff * 2, 5_000)
            }
        }
    }

    private func ensureGroup() async throws {
        do {
            _ = try await commands.send(["XGROUP", "CREATE", configuration.stream, configuration.group, "0", "MKSTREAM"])
            logger.info("consumer group created", ["stream": .string(configuration.stream), "group": .string(configuration.group)])
        } catch {
            // Another worker created it first: that is the normal case in a cluster.
            guard case .server(let message) = error, message.hasPrefix("BUSYGROUP") else { throw error }
        }
    }

    private func handle(_ entries: [StreamEntry]) async throws {
        for entry in entries {
            logger.debug("command received", ["id": .string(entry.id), "fields": .int(Int64(entry.fields.count))])
        }
        _ = try await commands.send(["XACK", configuration.stream, configuration.group] + entries.map(\.id))
        processed += entries.count
    }
}
