/// A JSON object whose keys keep their insertion order (the order they are serialized in).
///
/// Setting an existing key replaces its value in place; parsing input with a repeated key keeps the
/// last value, at the position of the first occurrence. Equality ignores order: two objects are
/// equal when they have the same keys with equal values, as JSON defines it.
package struct JSONObject: Sendable {
    /// The keys, in insertion order.
    package private(set) var keys: [String]
    /// The values, parallel to `keys`.
    package private(set) var values: [JSONValue]
    /// Key -> position, built only once the object is large: small objects (the common case) are
    /// searched linearly, which is faster than hashing, while big ones stay O(1) so input with many
    /// keys cannot make parsing quadratic.
    private var positions: [String: Int]?

    /// Above this many members lookups go through `positions`.
    private static let linearSearchLimit = 12

    /// An empty object.
    package init() {
        keys = []
        values = []
        positions = nil
    }

    /// An object with `members` in order; a repeated key keeps its last value.
    package init(_ members: some Sequence<(String, JSONValue)>) {
        self.init()
        for (key, value) in members {
            self[key] = value
        }
    }

    /// The number of members.
    package var count: Int { keys.count }

    /// True when the object has no members.
    package var isEmpty: Bool { keys.isEmpty }

    /// The value of `key`, or nil when absent. Setting nil removes the key; set `.null` to store a
    /// JSON null.
    package subscript(key: String) -> JSONValue? {
        get {
            guard let position = position(of: key) else { return nil }
            return values[position]
        }
        set {
            if let newValue {
                if let position = position(of: key) {
                    values[position] = newValue
                } else {
                    append(key, newValue)
                }
            } else {
                removeValue(forKey: key)
            }
        }
    }

    /// True when `key` is present (even with a null value).
    package func contains(_ key: String) -> Bool {
        position(of: key) != nil
    }

    /// Removes `key` and returns its value, if it was present.
    @discardableResult
    package mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let position = position(of: key) else { return nil }
        keys.remove(at: position)
        let removed = values.remove(at: position)
        rebuildPositions()
        return removed
    }

    private func position(of key: String) -> Int? {
        if let positions { return positions[key] }
        return keys.firstIndex(of: key)
    }

    private mutating func append(_ key: String, _ value: JSONValue) {
        keys.append(key)
        values.append(value)
        if positions != nil {
            positions?[key] = keys.count - 1
        } else if keys.count > Self.linearSearchLimit {
            rebuildPositions()
        }
    }

    private mutating func rebuildPositions() {
        guard keys.count > Self.linearSearchLimit else {
            positions = nil
            return
        }
        var map = [String: Int](minimumCapacity: keys.count)
        for (position, key) in keys.enumerated() {
            map[key] = position
        }
        positions = map
    }
}

extension JSONObject: Equatable {
    /// Same keys with equal values, in any order.
    package static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (key, value) in zip(lhs.keys, lhs.values) where rhs[key] != value {
            return false
        }
        return true
    }
}

extension JSONObject: Sequence {
    /// Iterates `(key, value)` pairs in insertion order.
    package struct Iterator: IteratorProtocol {
        private let object: JSONObject
        private var position = 0

        fileprivate init(_ object: JSONObject) {
            self.object = object
        }

        /// The next member, or nil after the last.
        package mutating func next() -> (key: String, value: JSONValue)? {
            guard position < object.keys.count else { return nil }
            defer { position += 1 }
            return (object.keys[position], object.values[position])
        }
    }

    /// An iterator over the members in insertion order.
    package func makeIterator() -> Iterator {
        Iterator(self)
    }

    /// The number of members (lets `Array(object)` allocate once).
    package var underestimatedCount: Int { count }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// An object with the members in the order written; a repeated key keeps its last value.
    package init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }
}
