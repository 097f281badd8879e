import Glibc
import JSON
import Runtime

/// Severity of a log line, ordered.
package enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case debug, info, warn, error

    /// Parses `debug`, `info`, `warn`/`warning`, `error` (any case).
    package init?(name: String) {
        switch name.lowercased() {
        case "debug", "trace": self = .debug
        case "info": self = .info
        case "warn", "warning": self = .warn
        case "error": self = .error
        default: return nil
        }
    }

    package var name: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .warn: "warn"
        case .error: "error"
        }
    }

    package static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Writes one JSON object per line to standard output: `{"ts","level","service","msg",...fields}`.
///
/// One `write(2)` per line keeps lines from different threads whole on a pipe.
package struct Logger: Sendable {
    /// The process role, e.g. `gateway`.
    package let service: String
    /// Lines below this level are dropped before any formatting work.
    package let minimumLevel: LogLevel
    /// Fields added to every line (e.g. the instance id).
    package let context: JSONObject

    package init(service: String, minimumLevel: LogLevel, context: JSONObject = [:]) {
        self.service = service
        self.minimumLevel = minimumLevel
        self.context = context
    }

    /// A logger with extra fields on every line.
    package func with(_ fields: JSONObject) -> Logger {
        var merged = context
        for (key, value) in fields { merged[key] = value }
        return Logger(service: service, minimumLevel: minimumLevel, context: merged)
    }

    /// Whether a line at `level` would be written.
    @inline(__always)
    package func enabled(_ level: LogLevel) -> Bool { level >= minimumLevel }

    package func debug(_ message: String, _ fields: JSONObject = [:]) { log(.debug, message, fields) }
    package func info(_ message: String, _ fields: JSONObject = [:]) { log(.info, message, fields) }
    package func warn(_ message: String, _ fields: JSONObject = [:]) { log(.warn, message, fields) }
    package func error(_ message: String, _ fields: JSONObject = [:]) { log(.error, message, fields) }

    /// Formats and writes one line if `level` is enabled.
    package func log(_ level: LogLevel, _ message: String, _ fields: JSONObject = [:]) {
        guard enabled(level) else { return }
        var line = JSONObject()
        line["ts"] = .string(ISO8601.format(millisecondsSinceEpoch: WallClock.milliseconds()))
        line["level"] = .string(level.name)
        line["service"] = .string(service)
        line["msg"] = .string(message)
        for (key, value) in context { line[key] = value }
        for (key, value) in fields { line[key] = value }
        var bytes = JSONValue.object(line).serialized()
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(STDOUT_FILENO, base + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }
}
