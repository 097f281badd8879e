import Glibc
import Shared

// An echo server built from the gateway's own WebSocket code, for the Autobahn conformance suite
// (bench/autobahn.sh). Any path upgrades; every text and binary message is sent back.
//   PORT (9001), HOST (127.0.0.1), WS_MAX_MESSAGE_BYTES (16 MiB: Autobahn's group 9 sends 16 MiB messages)

@LoopActor
final class EchoServer: HTTPUpgrader, WebSocketConnectionDelegate {
    private var connections: [ObjectIdentifier: WebSocketConnection] = [:]
    private let configuration: WebSocketConfiguration

    init(configuration: WebSocketConfiguration) {
        self.configuration = configuration
    }

    func decide(_ request: HTTPRequest, context: HTTPRequestContext) -> HTTPUpgradeDecision {
        guard request.headers["Upgrade"] != nil else { return .notAnUpgrade }
        switch WebSocketHandshake.response(to: request) {
        case .failure(let error):
            return .reject(error.response)
        case .success(let response):
            return .accept(response) { [unowned self] tcp, leftover, release in
                let connection = WebSocketConnection(transport: tcp, configuration: self.configuration, release: release)
                self.connections[ObjectIdentifier(connection)] = connection
                connection.delegate = self
                connection.start(leftover: leftover)
            }
        }
    }

    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        switch message {
        case .text(let text): connection.send(text: text)
        case .binary(let bytes): connection.sendFrame(WebSocketFrameEncoder.frame(.binary, payload: bytes))
        }
    }

    func webSocketDidClose(_ connection: WebSocketConnection, code: UInt16) {
        connections[ObjectIdentifier(connection)] = nil
    }
}

let environment = SettingsReader.processEnvironment()
let port = UInt16(environment["PORT"] ?? "") ?? 9001
let host = environment["HOST"] ?? "127.0.0.1"
let maxMessage = Int(environment["WS_MAX_MESSAGE_BYTES"] ?? "") ?? (16 << 20)
let logger = Logger(service: "websocket-echo", minimumLevel: .info)
signal(SIGPIPE, SIG_IGN)

Task.onLoop {
    var webSocket = WebSocketConfiguration()
    webSocket.limits.maxMessageBytes = maxMessage
    webSocket.limits.maxFrameBytes = maxMessage
    webSocket.maxPendingWriteBytes = 2 * maxMessage + (1 << 20)
    webSocket.idleTimeout = .seconds(60)
    let echo = EchoServer(configuration: webSocket)
    var http = HTTPServerConfiguration()
    http.host = host
    http.port = port
    let router = APIRouter(authenticator: nil, logger: logger)
    router.addImmediate(.GET, "/health") { _ in .json(.ok, ["status": "ok"]) }
    let server = HTTPServer(configuration: http, responder: router, logger: Logger(service: "websocket-echo", minimumLevel: .warn))
    server.upgrader = echo
    do {
        try server.start()
        logger.info("websocket echo listening", ["host": .string(host), "port": .int(Int64(server.localPort))])
        EchoProcess.retained = [echo, server, router]
    } catch {
        logger.error("cannot listen", ["error": .string(String(describing: error))])
        exit(1)
    }
}
EventLoop.shared.run()

@LoopActor
enum EchoProcess {
    static var retained: [AnyObject] = []
}
