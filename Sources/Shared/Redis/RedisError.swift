/// Why a Redis operation failed.
///
/// Callers answer HTTP 503 `redis_unavailable` for `.unavailable`. `.timeout` and `.connectionLost` mean
/// the command may or may not have run on the server (Redis cannot cancel a command): only retry
/// idempotent work.
package enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No usable connection right now (never connected, reconnecting, closed, or too many replies
    /// outstanding). The command was not sent.
    case unavailable
    /// The reply (or the connection's handshake) did not arrive in time; the connection was dropped.
    case timeout
    /// The connection broke while the command was outstanding.
    case connectionLost
    /// Redis answered with an error reply (the text after `-`, e.g. `WRONGTYPE Operation against...`).
    case server(String)
    /// The configured URL is not `redis://[[user]:password@]host[:port][/db]` (or its `redis+sentinel://` form); the text says what is wrong.
    case invalidURL(String)
    /// Redis sent something this client did not expect (a reply without a request, a malformed
    /// pub/sub frame).
    case protocolError(String)

    /// A stable machine-readable code, suitable for API error bodies and metrics.
    package var code: String {
        switch self {
        case .unavailable: return "redis_unavailable"
        case .timeout: return "redis_timeout"
        case .connectionLost: return "redis_connection_lost"
        case .server: return "redis_server_error"
        case .invalidURL: return "redis_invalid_url"
        case .protocolError: return "redis_protocol_error"
        }
    }

    /// A sentence an operator can act on.
    package var message: String {
        switch self {
        case .unavailable:
            return "Redis is unavailable: not connected (reconnecting in the background) or overloaded."
        case .timeout:
            return "Redis did not answer in time; the connection was reset and will be re-established."
        case .connectionLost:
            return "The connection to Redis was lost while the command was outstanding; it may or may not have run."
        case .server(let text):
            return "Redis returned an error: \(text)"
        case .invalidURL(let reason):
            return "Invalid Redis URL: \(reason). Expected redis://[[user]:password@]host[:port][/db] or redis+sentinel://[[user]:password@]host[:port],.../<primary>[/db]."
        case .protocolError(let text):
            return "Unexpected data from Redis: \(text)"
        }
    }

    /// `code: message`, for logs.
    package var description: String { "\(code): \(message)" }
}

/// The error prefix of a Redis error reply (`NOGROUP No such key ...` → `.noGroup`), typed so call
/// sites compare codes rather than message text. Open: any prefix Redis sends is a code; the ones
/// this product acts on are named.
package struct RedisErrorCode: Sendable, Hashable, CustomStringConvertible {
    /// The first word of the reply, as Redis spells it.
    package let prefix: String

    package init(_ prefix: String) {
        self.prefix = prefix
    }

    package var description: String { prefix }

    /// A consumer group (or its stream) does not exist: create it.
    package static let noGroup = RedisErrorCode("NOGROUP")
    /// `XGROUP CREATE` of a group that exists.
    package static let busyGroup = RedisErrorCode("BUSYGROUP")
    /// `EVALSHA` of a script the server has not cached (after a restart or `SCRIPT FLUSH`).
    package static let noScript = RedisErrorCode("NOSCRIPT")
    /// A command against a key of another type.
    package static let wrongType = RedisErrorCode("WRONGTYPE")
    /// A generic error (bad arguments, unknown command).
    package static let generic = RedisErrorCode("ERR")
}

extension RedisError {
    /// The code of an error reply (`.server`), parsed from its first word; nil for the other cases.
    package var serverCode: RedisErrorCode? {
        guard case .server(let text) = self, let word = text.split(separator: " ", maxSplits: 1).first, !word.isEmpty else {
            return nil
        }
        return RedisErrorCode(String(word))
    }
}
