import Glibc

/// One environment variable a process reads: its name, default and what it means (for `--help`).
package struct Setting: Sendable {
    package let name: String
    /// `nil` means "no default" (required, or optional with behaviour described in `help`).
    package let defaultValue: String?
    package let help: String

    package init(_ name: String, _ defaultValue: String?, _ help: String) {
        self.name = name
        self.defaultValue = defaultValue
        self.help = help
    }
}

/// A configuration value that cannot be used, with a message naming the variable.
package struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    package let variable: String
    package let reason: String

    package init(_ variable: String, _ reason: String) {
        self.variable = variable
        self.reason = reason
    }

    package var description: String { "\(variable): \(reason)" }
}

/// Reads typed settings from an environment snapshot, falling back to each setting's default.
package struct SettingsReader: Sendable {
    private let environment: [String: String]
    private let settings: [String: Setting]

    /// `environment` defaults to the process environment.
    package init(settings: [Setting], environment: [String: String] = SettingsReader.processEnvironment()) {
        self.environment = environment
        var table: [String: Setting] = [:]
        for setting in settings { table[setting.name] = setting }
        self.settings = table
    }

    /// The process environment as a dictionary.
    package static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }

    /// The raw value: the environment's when set and non-empty, else the default.
    package func raw(_ name: String) -> String? {
        precondition(settings[name] != nil, "setting \(name) is not declared")
        if let value = environment[name], !value.isEmpty { return value }
        return settings[name]?.defaultValue
    }

    /// Whether the variable was set explicitly.
    package func isSet(_ name: String) -> Bool {
        environment[name].map { !$0.isEmpty } ?? false
    }

    package func string(_ name: String) throws(ConfigurationError) -> String {
        guard let value = raw(name) else { throw ConfigurationError(name, "is required") }
        return value
    }

    package func optionalString(_ name: String) -> String? { raw(name) }

    /// An integer within `range`.
    package func int(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let text = try string(name)
        guard let value = Int(text) else { throw ConfigurationError(name, "must be an integer, got '\(text)'") }
        guard range.contains(value) else {
            throw ConfigurationError(name, "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        return value
    }

    /// A switch: `on`/`true`/`1` or `off`/`false`/`0`.
    package func flag(_ name: String) throws(ConfigurationError) -> Bool {
        let text = try string(name)
        switch text.lowercased() {
        case "on", "true", "1": return true
        case "off", "false", "0": return false
        default: throw ConfigurationError(name, "must be on or off, got '\(text)'")
        }
    }

    /// A `*_MS` setting: whole milliseconds within `range`, as the duration every timeout and
    /// interval is declared in.
    package func milliseconds(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Duration {
        .milliseconds(try int(name, in: range))
    }

    /// Renders the `--help` table: every variable, its default and meaning.
    package static func helpText(program: String, summary: String, settings: [Setting]) -> String {
        var lines = ["\(program) — \(summary)", "", "Usage: \(program) [--help] [--migrate-only]", "",
                     "  --help          print this text and exit",
                     "  --migrate-only  apply database migrations and exit", "",
                     "Environment variables (default in brackets):"]
        let width = (settings.map(\.name.count).max() ?? 0) + 2
        for setting in settings {
            let padding = String(repeating: " ", count: max(1, width - setting.name.count))
            // A help text that already ends with its own bracket (e.g. "[generated: ...]") says the default.
            let fallback = setting.defaultValue.map { "[\($0)]" } ?? (setting.help.hasSuffix("]") ? "" : "[none]")
            lines.append("  \(setting.name)\(padding)\(setting.help)" + (fallback.isEmpty ? "" : " \(fallback)"))
        }
        return lines.joined(separator: "\n")
    }
}
