import Shared

/// What a `SocketSession` needs from the gateway around it: its settings and clock, the
/// asynchronous checks of a CONNECT, event dispatch, and the bookkeeping of admitted and closed
/// sockets. `RealtimeHub` is the host in production; the socket fuzz harness hosts sessions with a
/// stand-in whose answers come from the fuzzer's input.
@LoopActor
protocol SocketSessionHost: AnyObject {
    var configuration: RealtimeConfiguration { get }
    /// What every session's protocol machine is configured with.
    var sessionConfiguration: SocketSessionMachine.SharedConfiguration { get }
    /// Time and timers of the sessions.
    var clock: any LoopClock { get }
    /// Connection state recovery (issue 15); nil when it is off.
    var recovery: SessionRecovery? { get }
    /// The checks of a CONNECT whose token verified (subscription, revocation, the account): nil
    /// when admitted, the refusal otherwise. An admitted-then-refused session is released with
    /// `release(_:userID:)`.
    func admit(_ session: SocketSession, principal: Principal) async -> APIError?
    /// Throws the refusal of a token presented by `authenticate`.
    func checkNotRevoked(_ principal: Principal) async throws
    /// A gateway event of a connected socket.
    func dispatch(_ request: SocketSessionMachine.EventRequest, from session: SocketSession)
    /// A dialect request with no native event (issue 16).
    func dispatchDialect(_ request: SocketSessionMachine.DialectRequest, from session: SocketSession)
    /// The user's socket acknowledged the delivery of room message `messageID`.
    func deliveryAcknowledged(_ messageID: Int64, userID: Int64)
    /// The socket was admitted and told so: it counts as the user's from now on.
    func sessionConnected(_ session: SocketSession, userID: Int64)
    /// What `admit` set up for a session that did not end up connected.
    func release(_ session: SocketSession, userID: Int64)
    /// The socket closed; `userID` when it had been connected.
    func sessionClosed(_ session: SocketSession, userID: Int64?)
}
