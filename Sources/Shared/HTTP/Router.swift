// Path router: a trie of path segments, static segments before `:parameter` segments, with
// backtracking so `/a/me/x` still reaches `/a/:id/x` when no static route continues.

/// Path parameters captured by a route such as `/api/users/:id`, percent-decoded.
package struct RouteParameters: Sendable, Equatable, Sequence {
    /// One captured parameter.
    package typealias Element = (name: String, value: String)

    private var pairs: [Element]

    /// Parameters in pattern order.
    package init(_ pairs: [(String, String)] = []) {
        self.pairs = pairs.map { (name: $0.0, value: $0.1) }
    }

    /// The value captured for `name`, or nil when the route has no such parameter.
    package subscript(_ name: String) -> String? {
        pairs.first { $0.name == name }?.value
    }

    /// Number of captured parameters.
    package var count: Int { pairs.count }

    /// True when the route has no parameters.
    package var isEmpty: Bool { pairs.isEmpty }

    /// Iterates parameters in pattern order.
    package func makeIterator() -> IndexingIterator<[Element]> {
        pairs.makeIterator()
    }

    /// Same names and values in the same order.
    package static func == (lhs: RouteParameters, rhs: RouteParameters) -> Bool {
        lhs.pairs.elementsEqual(rhs.pairs) { $0.name == $1.name && $0.value == $1.value }
    }
}

/// The outcome of routing one request.
package enum RouteMatch<Handler> {
    /// A route matches path and method.
    case found(Handler, parameters: RouteParameters)
    /// Routes match the path but not the method: answer 405 with `Allow: <allowed>`.
    /// Sorted by name; includes `HEAD` wherever `GET` is routed.
    case methodNotAllowed(allowed: [HTTPMethod])
    /// No route matches the path: answer 404.
    case notFound
}

extension RouteMatch: Sendable where Handler: Sendable {}

/// Maps `(method, path)` to handlers. Patterns are `/`-separated segments; a segment `:name`
/// captures one path segment as parameter `name`.
///
/// Rules: a static segment wins over a parameter at the same position; a trailing slash is ignored
/// (`/x/` matches `/x`); empty segments (`/a//b`) match nothing; `HEAD` is served by the `GET`
/// handler unless one is registered for `HEAD`.
///
/// A generic shell over `RouteTrie`, which does the work with handler indices, so the matching code
/// is compiled once, here. The shell is inlinable: a router of another module's handler type is
/// specialized in that module instead of resolving generic metadata on every request.
package struct Router<Handler> {
    package var trie: RouteTrie
    package var handlers: [Handler]

    /// An empty router.
    @inlinable
    package init() {
        trie = RouteTrie()
        handlers = []
    }

    /// Registers `handler` for `method` and `pattern` (e.g. `/api/users/:id`). Registering the same
    /// method and pattern again replaces the handler.
    @inlinable
    package mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: Handler) {
        if let replaced = trie.add(method, pattern, handlers.count) {
            handlers[replaced] = handler
        } else {
            handlers.append(handler)
        }
    }

    /// Routes a request path (still percent-encoded, without the query).
    @inlinable
    package func match(_ method: HTTPMethod, path: String) -> RouteMatch<Handler> {
        switch trie.match(method, path: path) {
        case .found(let index, let parameters): .found(handlers[index], parameters: parameters)
        case .methodNotAllowed(let allowed): .methodNotAllowed(allowed: allowed)
        case .notFound: .notFound
        }
    }
}

extension Router: Sendable where Handler: Sendable {}

/// The routing work of `Router`, without its handler type: routes map to handler indices, so the
/// matching code is compiled once, in this module, whatever module `Router` is specialized in.
package struct RouteTrie: Sendable {
    /// A handler registered at a node, with the names of its pattern's parameters in path order.
    fileprivate struct Route: Sendable {
        var method: HTTPMethod
        var handler: Int
        var parameterNames: [String]
    }

    /// One trie node; children are indices into `nodes` so the router is a plain value.
    fileprivate struct Node: Sendable {
        /// Static children by segment text. Few per node, so a linear scan beats hashing and lets
        /// a request segment be compared without building a String.
        var staticChildren: [(segment: String, node: Int)] = []
        var parameterChild: Int?
        /// Routes ending here; a handful at most, so an array beats a dictionary.
        var routes: [Route] = []
    }

    private var nodes: [Node] = [Node()]

    /// An empty router.
    package init() {}

    /// Registers handler index `handler` for `method` and `pattern`; returns the index it replaces
    /// when the same method and pattern were registered before. Patterns must start with `/` and
    /// have no empty segments or empty parameter names: those are programming errors.
    @discardableResult
    package mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: Int) -> Int? {
        precondition(pattern.utf8.first == UInt8(ascii: "/"), "route pattern '\(pattern)' must start with '/'")
        var current = 0
        var parameterNames: [String] = []
        for segment in Self.rawSegments(of: pattern) ?? [] {
            precondition(!segment.isEmpty, "route pattern '\(pattern)' has an empty segment")
            if segment.first == ":" {
                let name = String(segment.dropFirst())
                precondition(!name.isEmpty, "route pattern '\(pattern)' has a parameter without a name")
                parameterNames.append(name)
                if let child = nodes[current].parameterChild {
                    current = child
                } else {
                    nodes.append(Node())
                    nodes[current].parameterChild = nodes.count - 1
                    current = nodes.count - 1
                }
            } else {
                let text = String(segment)
                if let child = nodes[current].staticChildren.first(where: { $0.segment == text }) {
                    current = child.node
                } else {
                    nodes.append(Node())
                    nodes[current].staticChildren.append((segment: text, node: nodes.count - 1))
                    current = nodes.count - 1
                }
            }
        }
        if let index = nodes[current].routes.firstIndex(where: { $0.method == method }) {
            // The route keeps its handler index: the caller replaces the handler stored there.
            let replaced = nodes[current].routes[index].handler
            nodes[current].routes[index] = Route(method: method, handler: replaced, parameterNames: parameterNames)
            return replaced
        }
        nodes[current].routes.append(Route(method: method, handler: handler, parameterNames: parameterNames))
        return nil
    }

    /// Routes a request path (still percent-encoded, without the query).
    package func match(_ method: HTTPMethod, path: String) -> RouteMatch<Int> {
        guard var segments = Self.rawSegments(of: path) else { return .notFound }
        for index in segments.indices {
            let segment = segments[index]
            if segment.isEmpty { return .notFound }
            // Decode once, and only segments that need it.
            if segment.utf8.contains(UInt8(ascii: "%")) {
                segments[index] = Substring(PercentDecoding.decode(segment.utf8, plusAsSpace: false))
            }
        }

        var captured: [Int] = []
        var pathMatched: [Int] = []
        if let route = search(method, segments, from: 0, node: 0, captured: &captured, pathMatched: &pathMatched) {
            var pairs: [(String, String)] = []
            pairs.reserveCapacity(captured.count)
            for (name, position) in zip(route.parameterNames, captured) {
                pairs.append((name, String(segments[position])))
            }
            return .found(route.handler, parameters: RouteParameters(pairs))
        }
        if pathMatched.isEmpty { return .notFound }
        var allowed = Set<HTTPMethod>()
        for node in pathMatched {
            for route in nodes[node].routes { allowed.insert(route.method) }
        }
        if allowed.contains(.GET) { allowed.insert(.HEAD) }
        return .methodNotAllowed(allowed: allowed.sorted())
    }

    /// Depth-first search, static children first. Returns the first route that accepts `method`,
    /// with the positions of the segments its parameters captured; records every node that matched
    /// the path, for the 405 `Allow` list.
    private func search(
        _ method: HTTPMethod,
        _ segments: [Substring],
        from position: Int,
        node: Int,
        captured: inout [Int],
        pathMatched: inout [Int]
    ) -> Route? {
        if position == segments.count {
            let routes = nodes[node].routes
            guard !routes.isEmpty else { return nil }
            if let route = routes.first(where: { $0.method == method }) {
                return route
            }
            if method == .HEAD, let route = routes.first(where: { $0.method == .GET }) {
                return route
            }
            pathMatched.append(node)
            return nil
        }
        let segment = segments[position]
        for child in nodes[node].staticChildren where child.segment == segment {
            if let found = search(method, segments, from: position + 1, node: child.node,
                captured: &captured, pathMatched: &pathMatched)
            {
                return found
            }
        }
        if let child = nodes[node].parameterChild {
            captured.append(position)
            if let found = search(method, segments, from: position + 1, node: child,
                captured: &captured, pathMatched: &pathMatched)
            {
                return found
            }
            captured.removeLast()
        }
        return nil
    }

    /// Segments after the leading `/`, without the empty one a trailing slash makes (`/` alone has
    /// none, `//` has one empty segment); nil when the path does not start with `/`.
    private static func rawSegments(of path: String) -> [Substring]? {
        let utf8 = path.utf8
        guard utf8.first == UInt8(ascii: "/") else { return nil }
        var segments: [Substring] = []
        var start = utf8.index(after: utf8.startIndex)
        if start == utf8.endIndex { return [] }
        var index = start
        while index != utf8.endIndex {
            if utf8[index] == UInt8(ascii: "/") {
                // Splitting at an ASCII byte always lands on a character boundary.
                segments.append(Substring(utf8[start..<index]))
                start = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        if start != utf8.endIndex || segments.isEmpty {
            segments.append(Substring(utf8[start..<utf8.endIndex]))
        }
        return segments
    }
}

