import Shared

/// The Engine.IO transport a `SocketSession` writes to: a WebSocket, or HTTP long-polling
/// (`PollingLink`) until the client upgrades. Packets are Engine.IO packet texts; `sendSharedFrame`
/// takes a WebSocket text frame encoded once for many sockets (a published event).
@LoopActor
protocol EngineLink: AnyObject {
    /// Sends one Engine.IO packet (`4...`, `2`, `0{...}`).
    func sendPacket(_ text: String)
    /// Sends the payload of an unmasked WebSocket text frame (one Engine.IO packet).
    func sendSharedFrame(_ frame: [UInt8])
    /// Ends the transport: a WebSocket closes with `code` and `reason`; long-polling gives the
    /// client's next poll the close packet.
    func closeLink(code: UInt16, reason: String)
    /// Server shutdown: the client should reconnect, through the load balancer, to another gateway.
    func goAway()
}

extension WebSocketConnection: EngineLink {
    func sendPacket(_ text: String) { send(text: text) }

    func sendSharedFrame(_ frame: [UInt8]) { sendFrame(frame) }

    func closeLink(code: UInt16, reason: String) { close(code: code, reason: reason) }

    /// WebSocket close 1001 ("going away"), which stock clients treat as a lost transport and
    /// answer by reconnecting. An Engine.IO close packet is deliberately not sent first:
    /// python-engineio reads it as a server disconnect and then does not reconnect at all.
    func goAway() { close(code: WebSocketCloseCode.goingAway, reason: "server shutting down") }
}
