import Shared

// The gateway's own error codes: accounts, socket upgrades and the socket protocol. Socket-only
// codes carry a status too (the one REST would use), though sockets never send it.
extension ErrorCode {
    // Accounts.

    /// Sign-up with a username someone has.
    static let usernameTaken = ErrorCode("username_taken", .conflict, "field 'username': this username is already taken")
    /// Sign-up with an email that has an account.
    static let emailTaken = ErrorCode("email_taken", .conflict, "field 'email': an account with this email already exists")
    /// Unknown account or wrong password (the same answer for both).
    static let invalidCredentials = ErrorCode("invalid_credentials", .unauthorized, "email/username or password is incorrect")
    /// A refresh token that is not one of ours.
    static let refreshTokenInvalid = ErrorCode("refresh_token_invalid", .unauthorized, "the refresh token is not valid; log in again")
    /// The session ended (logout or reuse).
    static let refreshTokenRevoked = ErrorCode("refresh_token_revoked", .unauthorized, "this session has ended; log in again")
    /// A rotated refresh token presented again: the session is revoked.
    static let refreshTokenReused = ErrorCode("refresh_token_reused", .unauthorized, "this refresh token was already used; the session has been revoked for safety")
    /// The refresh token's lifetime passed.
    static let refreshTokenExpired = ErrorCode("refresh_token_expired", .unauthorized, "the refresh token has expired; log in again")

    // Socket upgrades.

    /// Engine.IO with a transport other than websocket.
    static let transportUnsupported = ErrorCode("transport_unsupported", .badRequest, "use transport=websocket")
    /// An Engine.IO version other than 4.
    static let protocolUnsupported = ErrorCode("protocol_unsupported", .badRequest, "only Engine.IO v4 is supported (EIO=4; Socket.IO v3/v4 clients)")
    /// The gateway is draining.
    static let shuttingDown = ErrorCode("shutting_down", .serviceUnavailable, "this gateway is shutting down; reconnect")
    /// A browser origin not in `ALLOWED_ORIGINS`.
    static let originNotAllowed = ErrorCode("origin_not_allowed", .forbidden, "this origin is not allowed (ALLOWED_ORIGINS)")
    /// A socket asked for a dialect this gateway does not serve (issue 16).
    static let dialectUnsupported = ErrorCode("dialect_unsupported", .badRequest,
                                              "unknown or disabled dialect: use native, seed001, seed002, seed003 or seed004 (DIALECTS)")
    /// More than `MAX_CONNECTIONS_PER_IP` sockets from one address.
    static let tooManyConnections = ErrorCode("too_many_connections", .tooManyRequests, "too many sockets from this address")

    // The socket protocol.

    /// An event name the protocol does not have.
    static let unknownEvent = ErrorCode("unknown_event", .notFound, "unknown event")
    /// An event before a successful CONNECT.
    static let notConnected = ErrorCode("not_connected", .badRequest, "send CONNECT first")
    /// A binary frame or a BINARY_EVENT / BINARY_ACK packet.
    static let binaryNotSupported = ErrorCode("binary_not_supported", .unsupportedMediaType, "binary packets are not supported; send JSON text")
    /// A namespace other than `/`.
    static let invalidNamespace = ErrorCode("invalid_namespace", .notFound, "only the namespace / exists")
    /// `authenticate` with another user's token.
    static let tokenUserMismatch = ErrorCode("token_user_mismatch", .forbidden, "the token belongs to another user")
    /// More than 16 server→client acks outstanding.
    static let tooManyPendingAcks = ErrorCode("too_many_pending_acks", .tooManyRequests, "wait for earlier acks")
    /// The client did not acknowledge a server event in time.
    static let ackTimeout = ErrorCode("ack_timeout", .requestTimeout, "the client did not acknowledge in time")
    /// The socket kept sending after its events were refused: it is closed.
    static let eventFlood = ErrorCode("event_flood", .tooManyRequests, "this socket kept sending events past its limit and is closed")
    /// Typing to more users at once than allowed.
    static let tooManyTypingTargets = ErrorCode("too_many_typing_targets", .tooManyRequests, "typing to too many users at once")
}
