import CLibPQ
import Glibc
import Runtime

/// One PostgreSQL connection driven by libpq's non-blocking API on the event loop.
///
/// Connects with `PQconnectStartParams` + `PQconnectPoll`, then runs one statement at a time with
/// `PQsendQueryParams` / `PQsendQuery`, `PQflush` and `PQconsumeInput` / `PQgetResult`, waiting for
/// socket readiness through `EventLoop` and never blocking the loop. What each libpq outcome means
/// is decided by `PostgresConnectionStateMachine`; this class only performs its actions.
///
/// Application code normally goes through `PostgresPool`. Call `close()` when done: while connected,
/// the loop's registration keeps the object alive.
///
/// Caveat: libpq resolves host names with blocking `getaddrinfo` inside `PQconnectStartParams` /
/// `PQconnectPoll`. Numeric addresses, `localhost` and container DNS answer in microseconds; a slow
/// resolver would stall the loop during connects (not during queries).
@LoopActor
package final class PostgresConnection: IOHandler {
    /// How the connection was configured.
    package let configuration: PostgresConnectionConfiguration

    private var handle: OpaquePointer?
    private var registration: IORegistration?
    private var machine: PostgresConnectionStateMachine
    private var timer: TimerHandle?
    private var connectWaiter: CheckedContinuation<Result<Void, PostgresError>, Never>?
    private var queryWaiter: CheckedContinuation<Result<PostgresRows, PostgresError>, Never>?
    /// Results of the statement in flight: the last row set, and the first error.
    private var lastRows: PostgresRows?
    private var outcome: PostgresConnectionStateMachine.Outcome = .success

    /// The last notice or warning the server sent (they are not printed to stderr).
    package private(set) var lastNotice: String?
    /// Number of notices received.
    package private(set) var noticeCount = 0

    private static let maxNoticeLength = 1_000
    /// The extended protocol counts parameters in 16 bits.
    private static let maxParameters = 65_535

    private init(configuration: PostgresConnectionConfiguration) {
        self.configuration = configuration
        machine = PostgresConnectionStateMachine(connectTimeout: configuration.connectTimeout)
    }

    isolated deinit {
        // Reached only when the loop holds no registration (those retain us), i.e. after `close()`
        // or a failure, when `handle` is already nil; this frees a handle the owner forgot.
        // Isolated: libpq handles are only touched on the loop thread.
        if let handle {
            PQsetNoticeProcessor(handle, postgresIgnoreNotice, nil)
            PQfinish(handle)
        }
    }

    /// Opens a connection, failing with `.unavailable` if it cannot within the connect timeout.
    package static func connect(_ configuration: PostgresConnectionConfiguration) async throws(PostgresError) -> PostgresConnection {
        let connection = PostgresConnection(configuration: configuration)
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, PostgresError>, Never>) in
            connection.connectWaiter = continuation
            connection.startConnecting()
        }
        try result.get()
        return connection
    }

    // MARK: State

    /// Where the connection is in its life.
    package var state: PostgresConnectionStateMachine.State { machine.state }

    /// Connected, and no statement in flight.
    package var isIdle: Bool {
        guard machine.isIdle, let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// Idle and outside any transaction block: safe to hand to another user.
    package var isReusable: Bool {
        guard isIdle, let handle else { return false }
        return PQtransactionStatus(handle) == PQTRANS_IDLE
    }

    /// Whether a transaction block is open (`BEGIN` without `COMMIT`/`ROLLBACK`).
    package var isInTransaction: Bool {
        guard let handle else { return false }
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// The server process id of this session (for `pg_stat_activity`, `pg_terminate_backend`).
    package var backendPID: Int32? { handle.map { PQbackendPID($0) } }

    /// The server version as an integer, e.g. 150004 for 15.4.
    package var serverVersion: Int? { handle.map { Int(PQserverVersion($0)) } }

    // MARK: Statements

    /// Runs one statement with `$1...` parameters (extended protocol, text format) and returns its rows.
    ///
    /// Throws `.server` for errors PostgreSQL reports (the connection stays usable), `.unavailable`
    /// if the connection was found broken before sending (nothing ran), `.connectionLost` if it broke
    /// mid-statement, `.timeout` after `timeout` (default: the configured query timeout;
    /// the connection is then closed). Task cancellation does not interrupt a statement; the timeout
    /// bounds it.
    @discardableResult
    package func query(_ sql: String, _ parameters: [PostgresValue?] = [],
                       timeout: Duration? = nil) async throws(PostgresError) -> PostgresRows {
        if containsNUL(sql) { throw .misuse("SQL text contains a NUL character") }
        if parameters.count > Self.maxParameters {
            throw .misuse("\(parameters.count) parameters; the protocol allows at most \(Self.maxParameters) per statement")
        }
        for (index, parameter) in parameters.enumerated() {
            if let problem = parameter?.encodingProblem { throw .invalidParameter(index: index, reason: problem) }
        }
        return try await run(.parameters(sql, parameters), timeout: timeout)
    }

    /// Runs a statement built with its parameters in place (see `PostgresQuery`); otherwise as
    /// `query(_:_:timeout:)`.
    @discardableResult
    package func query(_ query: PostgresQuery, timeout: Duration? = nil) async throws(PostgresError) -> PostgresRows {
        try await self.query(query.sql, query.parameters, timeout: timeout)
    }

    /// Runs a script of one or more `;`-separated statements without parameters (simple protocol),
    /// e.g. a migration. Without explicit `BEGIN`/`COMMIT` the whole script is one transaction.
    /// Returns the rows of the last statement.
    @discardableResult
    package func execute(script: String, timeout: Duration? = nil) async throws(PostgresError) -> PostgresRows {
        if containsNUL(script) { throw .misuse("SQL script contains a NUL character") }
        return try await run(.script(script), timeout: timeout)
    }

    /// Runs `body` inside `BEGIN` ... `COMMIT`; on any error thrown by `body` the transaction is
    /// rolled back (a connection whose `ROLLBACK` fails is closed) and the error rethrown.
    ///
    /// Untyped `throws`: `body` may throw its own errors to abort the transaction; errors from the
    /// database are `PostgresError`.
    @discardableResult
    package func transaction<T>(_ body: @LoopActor (PostgresConnection) async throws -> T) async throws -> T {
        try await query("BEGIN")
        return try await completeTransaction(body)
    }

    /// The part of `transaction` after `BEGIN` succeeded (the pool retries `BEGIN` itself).
    func completeTransaction<T>(_ body: @LoopActor (PostgresConnection) async throws -> T) async throws -> T {
        let value: T
        do {
            value = try await body(self)
        } catch {
            await rollback()
            throw error
        }
        let commit = try await query("COMMIT")
        // COMMIT of a transaction in which a statement failed (and the error was swallowed by `body`)
        // succeeds with the tag ROLLBACK: report it, or the caller would believe its writes landed.
        if commit.commandTag == "ROLLBACK" {
            throw PostgresError.server(PostgresServerError(
                sqlState: PostgresSQLState.inFailedSQLTransaction,
                message: "transaction rolled back at COMMIT because a statement in it had failed"))
        }
        return value
    }

    /// Rolls back the open transaction; if that is impossible the connection is closed, which makes
    /// the server roll back.
    func rollback() async {
        guard isIdle, isInTransaction else {
            if !isReusable { close() }
            return
        }
        do {
            try await query("ROLLBACK")
        } catch {
            close()
        }
    }

    /// Closes the connection. A statement in flight fails with `.connectionLost`. Idempotent.
    package func close() {
        perform(machine.close())
    }

    // MARK: IOHandler

    package func handleIO(_ events: IOEvents) {
        perform(machine.socketReady(events))
    }

    // MARK: Connecting

    private func startConnecting() {
        let pairs = configuration.connectionKeywords
        // PQconnectStartParams stops at the first NULL keyword.
        let started = withCStrings(pairs.map(\.keyword), terminated: true) { keywords in
            withCStrings(pairs.map(\.value), terminated: true) { values in
                PQconnectStartParams(keywords, values, 1)
            }
        }
        guard let started else {
            perform(machine.connectStartFailed("libpq could not allocate a connection"))
            return
        }
        handle = started
        PQsetNoticeProcessor(started, postgresRecordNotice, Unmanaged.passUnretained(self).toOpaque())
        if PQstatus(started) == CONNECTION_BAD {
            perform(machine.connectStartFailed(errorMessage()))
            return
        }
        let timeout = configuration.connectTimeout
        timer = EventLoop.shared.schedule(after: timeout) { [weak self] in self?.timerFired() }
        perform(machine.connectStarted())
    }

    // MARK: Sending

    private enum Request {
        case parameters(String, [PostgresValue?])
        case script(String)
    }

    private func run(_ request: Request, timeout: Duration?) async throws(PostgresError) -> PostgresRows {
        switch machine.queryRequested() {
        case .send:
            break
        case .reject(let error):
            throw error
        default:
            throw .misuse("unexpected connection state \(machine.state)")
        }
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<PostgresRows, PostgresError>, Never>) in
            queryWaiter = continuation
            lastRows = nil
            outcome = .success
            guard let handle else {
                perform(machine.sendFailed("connection has no libpq handle"))
                return
            }
            // An idle connection may have been closed by the server since the loop last looked
            // (restart, pg_terminate_backend): find out now, while the statement is unsent.
            if let dead = deadReason(handle) {
                perform(machine.sendFailed(dead))
                return
            }
            guard send(request, on: handle) else {
                perform(machine.sendFailed(errorMessage()))
                return
            }
            let timeout = timeout ?? configuration.queryTimeout
            timer = EventLoop.shared.schedule(after: timeout) { [weak self] in self?.timerFired() }
            perform(.flush)
        }
        return try result.get()
    }

    private func send(_ request: Request, on handle: OpaquePointer) -> Bool {
        switch request {
        case .script(let script):
            return PQsendQuery(handle, script) == 1
        case .parameters(let sql, let parameters):
            let texts = parameters.map { $0?.textEncoding }
            let types: [Oid] = parameters.map { Oid($0?.typeOID ?? 0) }
            // libpq copies the values into its output buffer, so they only need to live for the call.
            return withCStrings(texts, terminated: false) { values in
                PQsendQueryParams(handle, sql, Int32(parameters.count), types, values, nil, nil, 0) == 1
            }
        }
    }

    /// Why an idle connection is dead, or nil if it looks alive. Peeks at the socket without blocking:
    /// EOF means the server closed it; pending bytes on an idle connection are usually its goodbye
    /// (`FATAL: terminating connection...`), which libpq reads and then reports as a broken connection.
    private func deadReason(_ handle: OpaquePointer) -> String? {
        for _ in 0..<4 {
            guard PQstatus(handle) == CONNECTION_OK else { return errorMessage() }
            let fd = PQsocket(handle)
            guard fd >= 0 else { return "connection has no socket" }
            var byte: UInt8 = 0
            let peeked = recv(fd, &byte, 1, CInt(MSG_PEEK | MSG_DONTWAIT))
            if peeked < 0 {
                let code = errno
                if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return nil }
                return "\(SystemError("recv", errno: code))"
            }
            if peeked == 0 { return goodbye("server closed the connection") }
            if PQconsumeInput(handle) == 0 { return goodbye(errorMessage()) }
        }
        return nil
    }

    private func goodbye(_ message: String) -> String {
        if let notice = lastNotice, notice.hasPrefix("FATAL") { return "\(message) (\(notice))" }
        return message
    }

    // MARK: Actions

    private func perform(_ action: PostgresConnectionStateMachine.Action) {
        switch action {
        case .none:
            break
        case .watch(let interest):
            watch(interest)
        case .pollConnect:
            pollConnect()
        case .finishConnect:
            cancelTimer()
            resumeConnect(.success(()))
        case .failConnect(let error):
            cancelTimer()
            teardown()
            resumeConnect(.failure(error))
        case .send:
            // Handled by `run` itself.
            break
        case .reject(let error):
            resumeQuery(.failure(error))
        case .flush:
            flush()
        case .consumeInputAndFlush:
            guard let handle else { return }
            if PQconsumeInput(handle) == 0 {
                perform(machine.inputFailed(lostMessage()))
                return
            }
            flush()
        case .readResults:
            guard let handle else { return }
            if PQconsumeInput(handle) == 0 {
                perform(machine.inputFailed(lostMessage()))
                return
            }
            drainResults()
        case .checkIdleConnection:
            let reason = handle.map { deadReason($0) } ?? "connection has no libpq handle"
            perform(machine.idleChecked(deadReason: reason))
        case .succeedQuery:
            cancelTimer()
            resumeQuery(.success(lastRows ?? .empty()))
        case .failQuery(let error, let closeConnection):
            cancelTimer()
            if closeConnection { teardown() }
            resumeQuery(.failure(error))
        case .closeConnection:
            cancelTimer()
            teardown()
        }
    }

    private func watch(_ interest: IOInterest) {
        if case .connecting = machine.state {
            // libpq may have moved to another socket (next host or address): register afresh.
            if !watchSocket(interest, reregister: true) {
                perform(machine.connectPolled(.failed("cannot watch the connection's socket")))
            }
        } else if let registration {
            EventLoop.shared.modify(registration, interest: interest)
        }
    }

    /// Registers the current `PQsocket` (deregistering any earlier one first: libpq may already have
    /// closed it, and the new socket may even reuse its number).
    private func watchSocket(_ interest: IOInterest, reregister: Bool) -> Bool {
        guard let handle else { return false }
        let fd = PQsocket(handle)
        if !reregister, let registration, registration.fd == fd {
            EventLoop.shared.modify(registration, interest: interest)
            return true
        }
        if let registration {
            EventLoop.shared.deregister(registration)
            self.registration = nil
        }
        guard fd >= 0 else { return false }
        do {
            registration = try EventLoop.shared.register(fd: fd, interest: interest, handler: self)
            return true
        } catch {
            return false
        }
    }

    private func pollConnect() {
        guard let handle else { return }
        let status = PQconnectPoll(handle)
        let poll: PostgresConnectionStateMachine.ConnectPoll
        switch status {
        case PGRES_POLLING_READING:
            poll = .reading
        case PGRES_POLLING_WRITING:
            poll = .writing
        case PGRES_POLLING_OK:
            if PQsetnonblocking(handle, 1) != 0 {
                poll = .failed("cannot make the connection non-blocking: \(errorMessage())")
            } else if !watchSocket(.read, reregister: true) {
                poll = .failed("cannot watch the connection's socket")
            } else {
                poll = .ok
            }
        default:
            poll = .failed(errorMessage())
        }
        perform(machine.connectPolled(poll))
    }

    private func flush() {
        guard let handle else { return }
        let flushed: PostgresConnectionStateMachine.Flush
        switch PQflush(handle) {
        case 0: flushed = .complete
        case 1: flushed = .pending
        default: flushed = .failed(errorMessage())
        }
        perform(machine.flushed(flushed))
        // Input read while we were still sending sits in libpq's buffer, invisible to epoll.
        if flushed == .complete, machine.state == .awaitingResults { drainResults() }
    }

    /// Takes every result libpq can give without blocking; reports the end at the NULL result.
    private func drainResults() {
        guard let handle else { return }
        while machine.state == .awaitingResults, PQisBusy(handle) == 0 {
            guard let result = PQgetResult(handle) else {
                let broken = PQstatus(handle) == CONNECTION_BAD ? lostMessage() : nil
                perform(machine.resultsFinished(outcome, brokenConnection: broken))
                return
            }
            let keepGoing = absorb(result)
            PQclear(result)
            if !keepGoing {
                perform(machine.resultsFinished(outcome, brokenConnection: nil))
                return
            }
        }
    }

    /// Records one result; returns false when reading must stop (a COPY state would never end).
    private func absorb(_ result: OpaquePointer) -> Bool {
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY, PGRES_SINGLE_TUPLE:
            lastRows = makeRows(result)
            return true
        case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR:
            if outcome == .success {
                if let serverError = makeServerError(result) {
                    outcome = .serverError(serverError)
                } else {
                    // No SQLSTATE: libpq made this error itself (broken or garbled connection).
                    outcome = .protocolViolation(resultMessage(result))
                }
            }
            return true
        case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
            outcome = .protocolViolation("COPY is not supported by this client")
            return false
        default:
            outcome = .protocolViolation("unexpected result status \(String(cString: PQresStatus(PQresultStatus(result))))")
            return false
        }
    }

    private func makeRows(_ result: OpaquePointer) -> PostgresRows {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var columns: [String] = []
        var types: [UInt32] = []
        columns.reserveCapacity(columnCount)
        for column in 0..<columnCount {
            columns.append(PQfname(result, Int32(column)).map { String(cString: $0) } ?? "?column?")
            types.append(UInt32(PQftype(result, Int32(column))))
        }
        var cells: [String?] = []
        cells.reserveCapacity(rowCount * columnCount)
        for row in 0..<Int32(rowCount) {
            for column in 0..<Int32(columnCount) {
                if PQgetisnull(result, row, column) == 1 {
                    cells.append(nil)
                } else if let value = PQgetvalue(result, row, column) {
                    let length = Int(PQgetlength(result, row, column))
                    cells.append(String(decoding: UnsafeRawBufferPointer(start: value, count: length), as: UTF8.self))
                } else {
                    cells.append(nil)
                }
            }
        }
        let affected = PQcmdTuples(result).map { Int(String(cString: $0)) ?? 0 } ?? 0
        let tag = PQcmdStatus(result).map { String(cString: $0) } ?? ""
        return PostgresRows(columns: columns, columnTypes: types, cells: cells, affectedRows: affected, commandTag: tag)
    }

    private func makeServerError(_ result: OpaquePointer) -> PostgresServerError? {
        func field(_ code: Character) -> String? {
            guard let ascii = code.asciiValue, let value = PQresultErrorField(result, Int32(ascii)) else { return nil }
            return String(cString: value)
        }
        guard let sqlState = field("C") else { return nil }  // PG_DIAG_SQLSTATE
        return PostgresServerError(
            sqlState: sqlState,
            severity: field("V") ?? field("S") ?? "ERROR",  // PG_DIAG_SEVERITY_NONLOCALIZED, PG_DIAG_SEVERITY
            message: field("M") ?? resultMessage(result),  // PG_DIAG_MESSAGE_PRIMARY
            detail: field("D"),  // PG_DIAG_MESSAGE_DETAIL
            hint: field("H"),  // PG_DIAG_MESSAGE_HINT
            constraint: field("n"),  // PG_DIAG_CONSTRAINT_NAME
            schema: field("s"),  // PG_DIAG_SCHEMA_NAME
            table: field("t"),  // PG_DIAG_TABLE_NAME
            column: field("c"))  // PG_DIAG_COLUMN_NAME
    }

    // MARK: Helpers

    private func timerFired() {
        timer = nil
        perform(machine.timedOut())
    }

    private func cancelTimer() {
        if let timer { EventLoop.shared.cancel(timer) }
        timer = nil
    }

    /// Stops watching the socket (before libpq closes it) and frees the libpq handle.
    private func teardown() {
        if let registration { EventLoop.shared.deregister(registration) }
        registration = nil
        if let handle { PQfinish(handle) }
        handle = nil
    }

    private func resumeConnect(_ result: Result<Void, PostgresError>) {
        let waiter = connectWaiter
        connectWaiter = nil
        waiter?.resume(returning: result)
    }

    private func resumeQuery(_ result: Result<PostgresRows, PostgresError>) {
        let waiter = queryWaiter
        queryWaiter = nil
        lastRows = nil
        waiter?.resume(returning: result)
    }

    /// libpq's current error message, on one line.
    private func errorMessage() -> String {
        guard let handle, let text = PQerrorMessage(handle) else { return "unknown libpq error" }
        let message = Self.oneLine(String(cString: text))
        return message.isEmpty ? "unknown libpq error" : message
    }

    /// The best description of a connection that broke mid-statement.
    private func lostMessage() -> String {
        if case .serverError(let error) = outcome { return goodbye("\(error.severity): \(error.message)") }
        return goodbye(errorMessage())
    }

    private func resultMessage(_ result: OpaquePointer) -> String {
        PQresultErrorMessage(result).map { Self.oneLine(String(cString: $0)) } ?? "unknown error"
    }

    fileprivate func recordNotice(_ text: String) {
        noticeCount += 1
        lastNotice = String(Self.oneLine(text).prefix(Self.maxNoticeLength))
    }

    /// Collapses libpq's multi-line messages (trailing newline, tab-indented hints) into one line.
    static func oneLine(_ text: String) -> String {
        var parts: [Substring] = []
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if !trimmed.isEmpty { parts.append(trimmed) }
        }
        return parts.joined(separator: " ")
    }
}

// MARK: - C glue

/// Whether `text` contains U+0000 (memchr over the UTF-8 bytes; large parameters are common).
func containsNUL(_ text: String) -> Bool {
    var text = text
    return text.withUTF8 { bytes in
        guard let base = bytes.baseAddress else { return false }
        return memchr(base, 0, bytes.count) != nil
    }
}

/// Notice processor: keeps the text on the connection instead of printing it to stderr.
/// libpq calls it synchronously from our own libpq calls, on the loop thread, while the connection
/// is alive (`deinit` switches to `postgresIgnoreNotice` before `PQfinish`).
private func postgresRecordNotice(_ context: UnsafeMutableRawPointer?, _ message: UnsafePointer<CChar>?) {
    guard let context, let message else { return }
    let connection = Unmanaged<PostgresConnection>.fromOpaque(context).takeUnretainedValue()
    let text = String(cString: message)
    LoopActor.assumeIsolated { connection.recordNotice(text) }
}

/// Notice processor that drops everything.
private func postgresIgnoreNotice(_ context: UnsafeMutableRawPointer?, _ message: UnsafePointer<CChar>?) {}

/// Calls `body` with C strings for `strings` (`nil` stays NULL), all laid out in one buffer that
/// lives for the call; with `terminated`, a NULL pointer follows the last one.
private func withCStrings<R>(_ strings: [String?], terminated: Bool,
                             _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    var storage: [UInt8] = []
    var offsets: [Int?] = []
    offsets.reserveCapacity(strings.count)
    storage.reserveCapacity(strings.reduce(0) { $0 + ($1?.utf8.count ?? 0) + 1 })
    for string in strings {
        guard let string else {
            offsets.append(nil)
            continue
        }
        offsets.append(storage.count)
        storage.append(contentsOf: string.utf8)  // memcpy for native strings
        storage.append(0)
    }
    return storage.withUnsafeBytes { bytes in
        var pointers: [UnsafePointer<CChar>?] = offsets.map { offset in
            offset.flatMap { offset in bytes.baseAddress.map { ($0 + offset).assumingMemoryBound(to: CChar.self) } }
        }
        if terminated { pointers.append(nil) }
        if pointers.isEmpty { return body(nil) }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
