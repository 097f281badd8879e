import CHiredis

/// One RESP2 reply, copied out of hiredis (a `redisReply` is freed as soon as its callback returns).
package enum RedisValue: Sendable, Equatable, Hashable {
    /// A nil bulk string or nil array (`$-1`, `*-1`).
    case null
    /// `:` integer reply.
    case integer(Int64)
    /// `+` status reply, e.g. `OK`, `PONG`.
    case simpleString(String)
    /// `$` bulk string: arbitrary bytes.
    case bulk([UInt8])
    /// `-` error reply (only returned as a value inside pipelines; `send` throws it).
    case error(String)
    /// `*` array reply.
    indirect case array([RedisValue])

    /// Copies a hiredis reply (recursively for arrays). Unknown types become `.error` so a future
    /// hiredis reply type surfaces instead of being mistaken for data.
    package init(reply: UnsafePointer<redisReply>) {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(node.integer))
        case REDIS_REPLY_NIL:
            self = .null
        case REDIS_REPLY_STATUS:
            self = .simpleString(Self.text(node))
        case REDIS_REPLY_ERROR:
            self = .error(Self.text(node))
        case REDIS_REPLY_STRING:
            self = .bulk(Self.bytes(node))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(node.elements)
            if let children = node.element {
                for index in 0..<node.elements {
                    if let child = children[index] {
                        elements.append(RedisValue(reply: child))
                    } else {
                        elements.append(.null)
                    }
                }
            }
            self = .array(elements)
        default:
            self = .error("unsupported reply type \(node.type)")
        }
    }

    private static func bytes(_ node: redisReply) -> [UInt8] {
        guard let str = node.str, node.len > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: str, count: node.len))
    }

    private static func text(_ node: redisReply) -> String {
        guard let str = node.str, node.len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: node.len), as: UTF8.self)
    }

    // MARK: Accessors

    /// The text of a status reply, or a bulk string that is valid UTF-8.
    package var string: String? {
        switch self {
        case .simpleString(let text): return text
        case .bulk(let bytes): return String(validating: bytes, as: UTF8.self)
        default: return nil
        }
    }

    /// An integer reply, or a status/bulk string holding a decimal integer (`GET` of a counter).
    package var int: Int64? {
        switch self {
        case .integer(let value): return value
        case .simpleString(let text): return Int64(text)
        case .bulk(let bytes): return String(validating: bytes, as: UTF8.self).flatMap { Int64($0) }
        default: return nil
        }
    }

    /// The elements of an array reply.
    package var array: [RedisValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The bytes of a bulk string (or the UTF-8 of a status reply).
    package var bytes: [UInt8]? {
        switch self {
        case .bulk(let bytes): return bytes
        case .simpleString(let text): return Array(text.utf8)
        default: return nil
        }
    }

    /// Whether this is the nil reply.
    package var isNull: Bool { self == .null }

    /// The message of an error reply.
    package var errorMessage: String? {
        if case .error(let text) = self { return text }
        return nil
    }
}
