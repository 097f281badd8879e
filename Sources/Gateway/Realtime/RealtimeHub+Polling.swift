import Shared

/// Engine.IO v4 HTTP long-polling (issue 15): the handshake `GET`, the session's `GET`s and
/// `POST`s, served here when this gateway owns the session and relayed to its owner otherwise.
extension RealtimeHub {
    /// A long-polling request (`/socket.io/?EIO=4&transport=polling[&sid=...]`); CORS is the front
    /// door's, the answer is the reference server's (its error codes included).
    func respondPolling(_ request: HTTPRequest, context: HTTPRequestContext, completion: @escaping @LoopActor (HTTPResponse) -> Void) {
        let answer: @LoopActor (PollingAnswer) -> Void = { completion($0.response) }
        // The reference server's order: the transport, then the protocol version.
        switch request.queryParameter("transport") {
        case "polling": break
        case "websocket": return answer(.engineError(.badRequest))  // a WebSocket request without the upgrade
        default: return answer(.engineError(.unknownTransport))
        }
        guard request.queryParameter("EIO") == "4" else { return answer(.engineError(.unsupportedProtocolVersion)) }
        guard configuration.origins.allows(request.headers["Origin"], host: request.headers["Host"]) else {
            return answer(.engineError(.forbidden, status: .forbidden))
        }
        guard let sid = request.queryParameter("sid") else {
            guard request.method == .GET else { return answer(.engineError(.badHandshakeMethod)) }
            return handshake(request, context: context, answer: answer)
        }
        guard request.method == .GET || request.method == .POST else { return answer(.engineError(.badRequest)) }
        if request.method == .POST && request.body.count > configuration.maxPayloadBytes {
            return completion(HTTPResponse(status: .contentTooLarge, headers: ["Content-Type": "text/plain; charset=UTF-8"]))
        }
        guard let relay, let owner = PollingRelay.owner(of: sid), owner != relay.route else {
            return serveLocalPolling(request.method, sid: sid, body: request.body, completion: answer)
        }
        relay.relay(request.method, sid: sid, owner: owner, body: request.body, completion: answer)
    }

    /// A request for a session of this gateway (local, or relayed from another gateway).
    func serveLocalPolling(_ method: HTTPMethod, sid: String, body: [UInt8], completion: @escaping @LoopActor (PollingAnswer) -> Void) {
        guard let link = pollingLinks[sid] else {
            // A session that upgraded lives on its WebSocket: a poll for it is a bad request.
            return completion(.engineError(session(engineID: sid)?.upgraded == true ? .badRequest : .unknownSession))
        }
        if method == .POST {
            completion(link.post(body))
        } else {
            link.poll(completion)
        }
    }

    /// A request relayed from another gateway about a session of this one.
    func serveRelayed(_ op: String, sid: String, message: JSONObject, answer: @escaping @LoopActor (JSONObject) -> Void) {
        switch op {
        case "get", "post":
            let body = Array((message["body"]?.stringValue ?? "").utf8)
            serveLocalPolling(op == "post" ? .POST : .GET, sid: sid, body: body) { answer(PollingRelay.answer($0)) }
        case "probe":
            answer(pollingLinks[sid]?.remoteProbe() ?? ["ok": false])
        case "transfer":
            answer(pollingLinks[sid]?.remoteTransfer() ?? ["ok": false])
        default:
            answer(["ok": false])
        }
    }

    /// `GET` without `sid`: a new session, answered with the open packet (upgrades: websocket).
    private func handshake(_ request: HTTPRequest, context: HTTPRequestContext, answer: @escaping @LoopActor (PollingAnswer) -> Void) {
        let client = trustedProxies.client(of: request, peer: context.peerAddress)
        if let refusal = refusal(for: request, peer: client, transport: "polling") {
            var response = refusal.response
            response.headers.replaceOrAdd(name: "Cache-Control", value: "no-store")
            return answer(PollingAnswer(status: response.status, contentType: "application/json; charset=utf-8", body: response.body))
        }
        countConnection(of: client)
        let engineID = newEngineID()
        let link = PollingLink(engineID: engineID, hub: self,
                               configuration: PollingMachine.Configuration(maxQueuedBytes: configuration.webSocket.maxPendingWriteBytes))
        let session = SocketSession(link: link, engineID: engineID, host: self, headerToken: BearerToken.parse(request.headers["Authorization"]),
                                    queryDialect: request.queryParameter("dialect"), clientAddress: client)
        link.session = session
        pollingLinks[engineID] = link
        GatewayMetrics.engineSessions.increment("polling")
        open(session, upgrades: ["websocket"])
        link.poll(answer)
    }

    /// A polling transport is done (upgraded, or closed and its close packet fetched).
    func pollingLinkFinished(_ link: PollingLink) {
        if pollingLinks[link.engineID] === link { pollingLinks[link.engineID] = nil }
        if link.state == .upgraded { GatewayMetrics.engineSessions.increment("upgrade") }
    }
}
