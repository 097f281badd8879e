import Shared

/// The API a client was written for (issue 16): the native one (seed 000's, verbatim), or the one
/// a seed backend in ../shared/seeds documents. A dialect is a translation at the gateway edge:
/// socket events in and out (`DialectEvents`) and REST paths (`DialectRoutes`); the worker and the
/// database know nothing of it. docs/DIALECTS.md lists every path and event and each difference.
enum Dialect: String, Sendable, CaseIterable {
    case native
    /// Seed 001: `auth:login` after connecting, `message:private` / `message:new`, `user:online` ids.
    case seed001
    /// Seed 002: `private_message` both ways, `typing {isTyping}`, `get_chat_history`, `online_users`.
    case seed002
    /// Seed 003: conversations by id, `send_message {conversationId}`, `new_message`, `{success, data}` REST.
    case seed003
    /// Seed 004: rooms, `send_message {roomId}`, `receive_message`, `welcome`, `user_status`.
    case seed004
}

/// Which dialects a gateway serves, and which one a socket speaks unless it says otherwise.
struct DialectConfiguration: Sendable {
    /// Dialects served (REST paths and sockets); `native` always is.
    var enabled: Set<Dialect>
    /// A socket's dialect when its CONNECT (auth `dialect`) and handshake query (`dialect=`) name none.
    var socketDefault: Dialect

    static let settings: [Setting] = [
        Setting("SOCKET_DIALECT", "native", "the socket API a client speaks unless it names one (auth or query `dialect`): native, seed001, seed002, seed003, seed004"),
        Setting("DIALECTS", "on", "the seed dialects served (REST paths and sockets): on, off, or a list such as seed002,seed004"),
    ]

    init(enabled: Set<Dialect> = Set(Dialect.allCases), socketDefault: Dialect = .native) {
        self.enabled = enabled
        self.socketDefault = socketDefault
    }

    init(reader: SettingsReader) throws(ConfigurationError) {
        let list = try reader.string("DIALECTS").lowercased()
        switch list {
        case "on", "true", "1", "all": enabled = Set(Dialect.allCases)
        case "off", "false", "0", "none": enabled = [.native]
        default:
            var chosen: Set<Dialect> = [.native]
            for name in list.split(separator: ",").map({ String($0.trimmingSpaces()) }) where !name.isEmpty {
                guard let dialect = Dialect(rawValue: name) else {
                    throw ConfigurationError("DIALECTS", "unknown dialect '\(name)': use on, off, or a list of seed001, seed002, seed003, seed004")
                }
                chosen.insert(dialect)
            }
            enabled = chosen
        }
        guard let fallback = Dialect(rawValue: try reader.string("SOCKET_DIALECT").lowercased()) else {
            throw ConfigurationError("SOCKET_DIALECT", "must be native, seed001, seed002, seed003 or seed004")
        }
        guard enabled.contains(fallback) else {
            throw ConfigurationError("SOCKET_DIALECT", "'\(fallback.rawValue)' is switched off by DIALECTS")
        }
        socketDefault = fallback
    }

    /// The dialect a socket asked for (`auth.dialect` or the query's `dialect`), if served; nil for
    /// an unknown or switched-off name.
    func dialect(named name: String?) -> Dialect? {
        guard let name else { return socketDefault }
        guard let dialect = Dialect(rawValue: name.lowercased()), enabled.contains(dialect) else { return nil }
        return dialect
    }
}
