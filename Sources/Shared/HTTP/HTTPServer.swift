import Glibc
import JSON
import Runtime
import Security
import Support

/// Settings of the HTTP server; every size and wait is bounded.
package struct HTTPServerConfiguration: Sendable {
    package var host = "0.0.0.0"
    package var port: UInt16 = 3000
    package var parserLimits = HTTPParserLimits()
    /// A request (head and body) must arrive whole within this time of its first byte.
    package var requestReadTimeout = Duration.seconds(10)
    /// A keep-alive connection with no request in progress is closed after this.
    package var idleTimeout = Duration.seconds(60)
    /// Connections beyond this are answered 503 and closed.
    package var maxConnections = 10_000
    package var connectionLimits = TCPConnectionLimits()
    /// When set, every connection must start with a PROXY protocol header (v1 or v2, from an L4
    /// load balancer), whose source address then stands for the TCP peer.
    package var proxyProtocol: ProxyProtocolPolicy?

    package init() {}
}

/// Who may send PROXY protocol headers (`PROXY_PROTOCOL=on`).
package struct ProxyProtocolPolicy: Sendable, Equatable {
    /// TCP peers allowed to connect (the load balancers); empty: any peer (the port is reachable
    /// from the load balancers only).
    package var trustedPeers: TrustedProxies

    package init(trustedPeers: TrustedProxies) {
        self.trustedPeers = trustedPeers
    }
}

/// What the server knows about a request besides its bytes.
package struct HTTPRequestContext: Sendable {
    /// The peer's IP address (the load balancer's, behind one).
    package let peerAddress: String
    /// Unique within this process; echoed as `X-Request-ID`.
    package let requestID: String
    /// Monotonic nanoseconds when the request was complete.
    package let receivedAt: UInt64
}

/// The application behind the server. It must call `completion` exactly once.
@LoopActor
package protocol HTTPResponder: AnyObject {
    func respond(to request: HTTPRequest, context: HTTPRequestContext, completion: @escaping @LoopActor (HTTPResponse) -> Void)
}

/// What to do with a request that asks to switch protocols.
package enum HTTPUpgradeDecision {
    /// Not an upgrade this server handles: route it as a normal request.
    case notAnUpgrade
    /// Refuse with this response (the connection is then closed).
    case reject(HTTPResponse)
    /// Write `response` (a 101), then hand the connection and any bytes that followed the request
    /// to `takeOver`. Call `release` when that connection closes, so the server's connection cap
    /// keeps counting it.
    case accept(HTTPResponse, takeOver: @LoopActor (_ connection: any Transport, _ leftover: [UInt8], _ release: @escaping @LoopActor () -> Void) -> Void)
}

/// Decides protocol upgrades (WebSocket) before a request reaches the responder.
@LoopActor
package protocol HTTPUpgrader: AnyObject {
    /// Called for every request; cheap for non-upgrade requests.
    func decide(_ request: HTTPRequest, context: HTTPRequestContext) -> HTTPUpgradeDecision
}

/// An HTTP/1.1 server on the loop: keep-alive, pipelining, 100-continue, slowloris and idle
/// timeouts, a connection cap, graceful shutdown, one JSON log line per request.
@LoopActor
package final class HTTPServer {
    private let configuration: HTTPServerConfiguration
    private let responder: any HTTPResponder
    private let logger: Logger
    /// Time and timers (the loop's, or a manual clock in tests); its connections use it too.
    fileprivate let clock: any LoopClock
    private var listener: TCPListener?
    private var connections: [ObjectIdentifier: HTTPServerConnection] = [:]
    /// Connections handed over to another protocol; they still count against the cap.
    private var upgradedCount = 0
    /// Decides WebSocket upgrades; nil means no request is ever upgraded.
    package weak var upgrader: (any HTTPUpgrader)?
    private var nextRequestNumber: UInt64 = 0
    private let requestIDPrefix = Hex.encode(SecureRandom.bytes(4))
    private var cachedDate: (second: Int64, text: String) = (0, "")
    private var shutdownWaiters: [@LoopActor () -> Void] = []

    package init(configuration: HTTPServerConfiguration, responder: any HTTPResponder, logger: Logger,
                 clock: any LoopClock = SystemClock.shared) {
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
        self.clock = clock
    }

    /// Binds and starts accepting.
    package func start() throws(SystemError) {
        listener = try TCPListener(host: configuration.host, port: configuration.port) { [unowned self] fd, peer in
            self.accept(fd: fd, peer: peer)
        }
    }

    /// The bound port (useful with port 0).
    package var localPort: UInt16 { listener?.localAddress.port ?? 0 }

    /// The connection cap in force.
    package var maxConnections: Int { configuration.maxConnections }

    /// Open connections, HTTP and upgraded.
    package var connectionCount: Int { connections.count + upgradedCount }

    private func accept(fd: CInt, peer: SocketAddress) {
        guard connectionCount < configuration.maxConnections else {
            // Over the cap: a short, honest answer instead of a silent reset.
            let response = HTTPResponse.error(.serverBusy)
            let bytes = response.serialize(keepAlive: false, date: currentDate())
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL)) }
            close(fd)
            logger.warn("connection refused: cap reached", ["peer": .string(peer.host), "cap": .int(Int64(configuration.maxConnections))])
            return
        }
        if let policy = configuration.proxyProtocol, !policy.trustedPeers.isEmpty, !policy.trustedPeers.contains(peer.host) {
            // Only the load balancers may say who the client is.
            close(fd)
            logger.warn("connection refused: not a trusted load balancer (PROXY_PROTOCOL=on)", ["peer": .string(peer.host)])
            return
        }
        let tcp: TCPConnection
        do {
            tcp = try TCPConnection(fd: fd, peer: peer, limits: configuration.connectionLimits)
        } catch {
            logger.warn("cannot register connection", ["error": .string(error.description)])
            return
        }
        serve(tcp)
    }

    /// Serves a connection that did not come from the listener (an `InMemoryConnection` in tests),
    /// under the same connection cap.
    package func accept(_ transport: any Transport) {
        guard connectionCount < configuration.maxConnections else {
            transport.write(HTTPResponse.error(.serverBusy).serialize(keepAlive: false, date: currentDate()))
            transport.closeAfterFlush()
            return
        }
        serve(transport)
    }

    private func serve(_ transport: any Transport) {
        let connection = HTTPServerConnection(server: self, tcp: transport)
        connections[ObjectIdentifier(connection)] = connection
        connection.start()
    }

    fileprivate var parserLimits: HTTPParserLimits { configuration.parserLimits }
    fileprivate var expectsProxyHeader: Bool { configuration.proxyProtocol != nil }
    fileprivate var requestReadTimeout: UInt64 { configuration.requestReadTimeout.nanosecondsSaturated }
    fileprivate var idleTimeout: UInt64 { configuration.idleTimeout.nanosecondsSaturated }

    fileprivate func makeContext(peer: String) -> HTTPRequestContext {
        nextRequestNumber &+= 1
        return HTTPRequestContext(peerAddress: peer, requestID: "\(requestIDPrefix)-\(nextRequestNumber)", receivedAt: clock.now())
    }

    fileprivate func dispatch(_ request: HTTPRequest, context: HTTPRequestContext, completion: @escaping @LoopActor (HTTPResponse) -> Void) {
        responder.respond(to: request, context: context, completion: completion)
    }

    fileprivate func upgradeDecision(for request: HTTPRequest, context: HTTPRequestContext) -> HTTPUpgradeDecision {
        upgrader?.decide(request, context: context) ?? .notAnUpgrade
    }

    /// The connection now belongs to another protocol: stop tracking it as HTTP, keep counting it.
    fileprivate func connectionUpgraded(_ connection: HTTPServerConnection) -> @LoopActor () -> Void {
        connections[ObjectIdentifier(connection)] = nil
        upgradedCount += 1
        var released = false
        return { [weak self] in
            guard !released else { return }
            released = true
            self?.upgradedCount -= 1
        }
    }

    /// The `Date` header value, formatted at most once per second.
    fileprivate func currentDate() -> String {
        let now = clock.wallSeconds()
        if now != cachedDate.second { cachedDate = (now, HTTPDate.format(secondsSinceEpoch: Int(now))) }
        return cachedDate.text
    }

    fileprivate func logRequest(_ request: HTTPRequest, response: HTTPResponse, context: HTTPRequestContext) {
        HTTPMetrics.record(status: response.status.code)
        guard logger.enabled(.info) else { return }
        let micros = (clock.now() &- context.receivedAt) / 1_000
        logger.info("request", [
            "method": .string(request.method.rawValue),
            "path": .string(request.path),
            "status": .int(Int64(response.status.code)),
            "durationMs": .double(Double(micros) / 1000),
            "bytes": .int(Int64(response.body.count)),
            "peer": .string(context.peerAddress),
            "requestId": .string(context.requestID),
        ])
    }

    fileprivate func logProxyHeaderFailure(_ error: ProxyHeaderError, peer: String) {
        HTTPMetrics.record(status: ErrorCode.proxyHeaderInvalid.status.code)
        logger.warn("connection refused: no valid PROXY protocol header", ["error": .string(error.description), "peer": .string(peer)])
    }

    fileprivate func logParseFailure(_ error: HTTPParseError, peer: String) {
        HTTPMetrics.record(status: error.status.code)
        logger.info("request rejected", ["status": .int(Int64(error.status.code)), "code": .string(error.code.name), "peer": .string(peer)])
    }

    fileprivate func connectionClosed(_ connection: HTTPServerConnection) {
        connections[ObjectIdentifier(connection)] = nil
        if connections.isEmpty && !shutdownWaiters.isEmpty {
            let waiters = shutdownWaiters
            shutdownWaiters = []
            for waiter in waiters { waiter() }
        }
    }

    /// Stops accepting, closes idle connections, lets requests in flight finish (their responses
    /// say `Connection: close`), and calls `completion` when all are closed or after `grace`.
    package func shutdown(grace: Duration, completion: @escaping @LoopActor () -> Void) {
        listener?.close()
        listener = nil
        var finished = false
        let finish: @LoopActor () -> Void = {
            guard !finished else { return }
            finished = true
            completion()
        }
        if connections.isEmpty { finish(); return }
        shutdownWaiters.append(finish)
        for connection in Array(connections.values) { connection.shutdown() }
        clock.schedule(after: grace) { [weak self] in
            guard let self else { return finish() }
            for connection in Array(self.connections.values) { connection.forceClose() }
            finish()
        }
    }
}

/// One client connection: feeds the parser, runs the state machine, performs its actions.
@LoopActor
private final class HTTPServerConnection: TransportDelegate {
    private unowned let server: HTTPServer
    private let tcp: any Transport
    private let clock: any LoopClock
    private var parser: HTTPRequestParser
    private var machine: HTTPConnectionStateMachine
    private var timer: TimerHandle?
    /// The deadline `timer` is armed for, so re-reading the same deadline costs nothing.
    private var armedDeadline: UInt64 = 0
    /// While a PROXY protocol header is expected: its bytes so far (nil once read, or never expected).
    private var proxyHeaderBytes: [UInt8]?
    /// The client: the TCP peer, or the source a PROXY protocol header named.
    private var peerHost: String

    init(server: HTTPServer, tcp: any Transport) {
        self.server = server
        self.tcp = tcp
        peerHost = tcp.peer.host
        proxyHeaderBytes = server.expectsProxyHeader ? [] : nil
        clock = server.clock
        parser = HTTPRequestParser(limits: server.parserLimits)
        machine = HTTPConnectionStateMachine(requestReadTimeout: server.requestReadTimeout, idleTimeout: server.idleTimeout)
    }

    func start() {
        tcp.delegate = self
        perform(machine.opened(now: clock.now()))
    }

    // MARK: TransportDelegate

    func connection(_ connection: any Transport, didRead bytes: UnsafeRawBufferPointer) {
        if proxyHeaderBytes != nil { return readProxyHeader(bytes) }
        parser.append(bytes)
        parseAvailable()
    }

    /// The PROXY protocol header comes before any HTTP byte; the request read timeout armed at
    /// `opened` bounds the wait for it, `ProxyProtocol.maximumLength` its size.
    private func readProxyHeader(_ bytes: UnsafeRawBufferPointer) {
        guard var buffer = proxyHeaderBytes else { return }
        proxyHeaderBytes = nil  // no copy on append
        buffer.append(contentsOf: bytes)
        switch buffer.withUnsafeBytes({ ProxyProtocol.parse($0) }) {
        case .needMoreBytes:
            proxyHeaderBytes = buffer
        case .header(let header, let length):
            if let source = header.source { peerHost = source.address.description }
            guard length < buffer.count else { return }
            buffer[length...].withUnsafeBytes { parser.append($0) }
            parseAvailable()
        case .invalid(let error):
            server.logProxyHeaderFailure(error, peer: peerHost)
            // The peer may be a client speaking HTTP to the wrong port: say what is expected.
            tcp.write(HTTPResponse.error(.proxyHeaderInvalid).serialize(keepAlive: false, date: server.currentDate()))
            perform(machine.parseFailed())
        }
    }

    func connectionDidReadEOF(_ connection: any Transport) {
        perform(machine.peerClosedInput())
    }

    func connectionDidDrain(_ connection: any Transport) {}

    func connectionDidClose(_ connection: any Transport, error: SystemError?) {
        if let timer { clock.cancel(timer) }
        timer = nil
        server.connectionClosed(self)
    }

    // MARK: Driving

    private func parseAvailable() {
        while true {
            switch machine.state {
            case .processing, .closed: return
            case .idle, .readingRequest: break
            }
            switch parser.next() {
            case .request(let request):
                let action = machine.receivedRequest(keepAlive: request.keepAlive)
                guard action == .dispatch else { return }
                dispatch(request)
                return
            case .needMoreData:
                perform(machine.awaitingMoreData(partial: parser.isMidRequest, now: clock.now()))
                return
            case .expectContinue:
                tcp.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
            case .failure(let error):
                server.logParseFailure(error, peer: peerHost)
                tcp.write(error.response.serialize(keepAlive: false, date: server.currentDate()))
                perform(machine.parseFailed())
                return
            }
        }
    }

    private func dispatch(_ request: HTTPRequest) {
        if let timer { clock.cancel(timer) }
        timer = nil
        tcp.pauseReading()
        let context = server.makeContext(peer: peerHost)
        switch server.upgradeDecision(for: request, context: context) {
        case .notAnUpgrade:
            break
        case .reject(let response):
            // A refused upgrade leaves the connection in an unknown protocol state: close it.
            complete(request, response: response, context: context, close: true)
            return
        case .accept(let response, let takeOver):
            tcp.write(response.serialize(keepAlive: true, date: server.currentDate()))
            server.logRequest(request, response: response, context: context)
            let leftover = parser.takeRemainingBytes()
            let release = server.connectionUpgraded(self)
            tcp.delegate = nil
            tcp.resumeReading()
            takeOver(tcp, leftover, release)
            return
        }
        server.dispatch(request, context: context) { [weak self] response in
            self?.complete(request, response: response, context: context)
        }
    }

    private func complete(_ request: HTTPRequest, response: HTTPResponse, context: HTTPRequestContext, close: Bool = false) {
        guard !tcp.isClosed else { return }
        var response = response
        response.headers.replaceOrAdd(name: "X-Request-ID", value: context.requestID)
        let (keepAlive, next) = machine.responseQueued(close: close)
        tcp.write(response.serialize(keepAlive: keepAlive, date: server.currentDate(),
                                     includeBody: request.method != .HEAD, requestVersion: request.version))
        server.logRequest(request, response: response, context: context)
        perform(next)
    }

    private func perform(_ action: HTTPConnectionStateMachine.Action) {
        switch action {
        case .none, .dispatch:
            break
        case .scheduleTimeout(let deadline):
            arm(deadline)
        case .resumeReading(let deadline):
            arm(deadline)
            tcp.resumeReading()
        case .parseNext:
            parseAvailable()
        case .timeoutRequest:
            let response = HTTPResponse.error(.requestTimeout)
            tcp.write(response.serialize(keepAlive: false, date: server.currentDate()))
            tcp.closeAfterFlush()
        case .closeAfterFlush:
            tcp.closeAfterFlush()
        case .close:
            tcp.closeNow()
        }
    }

    private func arm(_ deadline: UInt64) {
        if timer != nil && armedDeadline == deadline { return }
        armedDeadline = deadline
        if let timer { clock.cancel(timer) }
        timer = clock.schedule(after: MonotonicClock.duration(until: deadline, from: clock.now())) { [weak self] in
            guard let self else { return }
            self.timer = nil
            self.perform(self.machine.timerFired(now: self.clock.now()))
        }
    }

    func shutdown() { perform(machine.shutdownRequested()) }

    func forceClose() { tcp.closeNow() }
}
