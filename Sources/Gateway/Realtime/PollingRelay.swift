import Shared

/// Long-polling without sticky sessions (issue 15): every Engine.IO session id starts with the
/// route of the gateway that owns the session (`<route>.<random>`), and a gateway that receives a
/// `GET` or `POST` for a session it does not own relays it through Redis (the owner's channel
/// `chat:relay:{route}`) and
/// answers with the owner's answer. A relayed poll is held at the owner as a local one is, so the
/// deadline is the same: at most a ping interval, plus the ping timeout as margin. A `PUBLISH` that
/// reaches no gateway means the owner is gone: the session is unknown, at once.
///
/// Wire form, JSON on the channels: a request `{"op", "id", "from", "sid", ...}` and its answer
/// `{"op": "answer", "id", ...}` on the requester's channel. Ops: `get` and `post` (`body`;
/// answered `status`, `type`, `body`), and the hand-over of a session whose WebSocket upgrade
/// reached another gateway: `probe`, then `transfer` (see `RemoteUpgrade`).
@LoopActor
final class PollingRelay {
    /// Starts every session id this gateway issues, before a `.`: `GATEWAY_ROUTE`, or random. A load
    /// balancer may route on it to save the relay hop (deploy/haproxy-route.cfg, nginx-route.conf).
    let route: String
    /// The owner side: serves request `op` about session `sid` (the whole message at hand) and
    /// answers it once.
    var serve: (@LoopActor (_ op: String, _ sid: String, _ message: JSONObject,
                            _ answer: @escaping @LoopActor (JSONObject) -> Void) -> Void)?
    private let redis: RedisClient
    private let clock: any LoopClock
    private let logger: Logger
    private let deadline: Duration
    private var pending: [String: (completion: @LoopActor (JSONObject?) -> Void, timer: TimerHandle)] = [:]
    private var nextRequest: UInt64 = 0


    init(route: String?, redis: RedisClient, deadline: Duration, clock: any LoopClock, logger: Logger) {
        self.route = route ?? SecureRandom.token(byteCount: 6)
        self.redis = redis
        self.deadline = deadline
        self.clock = clock
        self.logger = logger
    }

    var channel: String { ChatChannels.relay(route) }

    /// A fresh session id owned by this gateway.
    func newSessionID() -> String { route + "." + SecureRandom.token(byteCount: 15) }

    /// The route of the gateway owning `sid`; nil when `sid` cannot be a session id.
    nonisolated static func owner(of sid: String) -> String? {
        let utf8 = sid.utf8
        guard utf8.count <= RealtimeConfiguration.maxRouteLength + 1 + 64, let dot = utf8.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        let route = utf8[..<dot]
        guard !route.isEmpty, route.count <= RealtimeConfiguration.maxRouteLength, route.allSatisfy(RealtimeConfiguration.isURLSafe),
              utf8[utf8.index(after: dot)...].allSatisfy(RealtimeConfiguration.isURLSafe) else { return nil }
        return String(route)
    }

    /// Requests relayed so far and waiting (metrics, tests).
    var pendingCount: Int { pending.count }

    // MARK: Requester

    /// Relays a request for `sid` to the gateway with route `owner`; `completion` gets its answer, or
    /// "Session ID unknown" when no gateway owns it or it does not answer in time.
    func relay(_ method: HTTPMethod, sid: String, owner: String, body: [UInt8],
               completion: @escaping @LoopActor (PollingAnswer) -> Void) {
        var fields: JSONObject = [:]
        if method == .POST { fields["body"] = .string(String(decoding: body, as: UTF8.self)) }
        request(method == .POST ? "post" : "get", sid: sid, owner: owner, fields: fields, deadline: deadline) { answer in
            guard let answer else { return completion(.engineError(.unknownSession)) }
            let status = answer["status"]?.int64Value.flatMap { Int(exactly: $0) } ?? 502
            completion(PollingAnswer(status: HTTPStatus(code: status, reasonPhrase: Self.reason(status)),
                                     contentType: answer["type"]?.stringValue ?? "text/plain; charset=UTF-8",
                                     body: Array((answer["body"]?.stringValue ?? "").utf8)))
        }
    }

    /// Sends request `op` about session `sid` to the gateway with route `owner`; `completion` gets
    /// the owner's answer, or nil when no gateway owns the route, Redis is down, or no answer came
    /// within `deadline`.
    func request(_ op: String, sid: String, owner: String, fields: JSONObject = [:], deadline: Duration,
                 completion: @escaping @LoopActor (JSONObject?) -> Void) {
        nextRequest &+= 1
        let id = String(nextRequest)
        let timer = clock.schedule(after: deadline) { [weak self] in
            guard let self, let entry = self.pending.removeValue(forKey: id) else { return }
            GatewayMetrics.pollingRelays.increment("timeout")
            entry.completion(nil)
        }
        pending[id] = (completion, timer)
        var message = fields
        message["op"] = .string(op)
        message["id"] = .string(id)
        message["from"] = .string(route)
        message["sid"] = .string(sid)
        let payload = JSONValue.object(message).serialized()
        Task.onLoop {
            let receivers = (try? await self.redis.send(.publish(ChatChannels.relay(owner), payload: payload)))?.int
            guard receivers == 0 || receivers == nil else { return GatewayMetrics.pollingRelays.increment("relayed") }
            // Nobody listens on the owner's channel (the gateway is gone), or Redis is down.
            guard let entry = self.pending.removeValue(forKey: id) else { return }
            self.clock.cancel(entry.timer)
            GatewayMetrics.pollingRelays.increment(receivers == nil ? ErrorCode.redisUnavailable.name : "owner_gone")
            entry.completion(nil)
        }
    }

    // MARK: Channel

    /// A message on this gateway's relay channel: a request to serve, or an answer to deliver.
    func receive(_ payload: [UInt8]) {
        guard case .object(let message)? = try? JSONParser.parse(payload), case .string(let op)? = message["op"],
              case .string(let id)? = message["id"] else {
            return logger.warn("dropped a malformed relay message", ["bytes": .int(Int64(payload.count))])
        }
        if op == "answer" {
            guard let entry = pending.removeValue(forKey: id) else { return }
            clock.cancel(entry.timer)
            return entry.completion(message)
        }
        guard case .string(let from)? = message["from"], RealtimeConfiguration.isValidRoute(from),
              case .string(let sid)? = message["sid"], let serve else {
            return logger.warn("dropped a malformed relay request", ["bytes": .int(Int64(payload.count))])
        }
        serve(op, sid, message) { [redis] answer in
            var reply = answer
            reply["op"] = "answer"
            reply["id"] = .string(id)
            let payload = JSONValue.object(reply).serialized()
            Task.onLoop { _ = try? await redis.send(.publish(ChatChannels.relay(from), payload: payload)) }
        }
    }

    /// The answer of a relayed polling request.
    static func answer(_ polling: PollingAnswer) -> JSONObject {
        ["status": .int(Int64(polling.status.code)), "type": .string(polling.contentType),
         "body": .string(String(decoding: polling.body, as: UTF8.self))]
    }

    private static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 503: "Service Unavailable"
        default: "Error"
        }
    }

    /// Answers every relayed request still waiting (shutdown).
    func close() {
        let waiting = pending
        pending = [:]
        for entry in waiting.values {
            clock.cancel(entry.timer)
            entry.completion(nil)
        }
    }
}
