import Testing
@testable import Shared
@testable import Runtime

/// Transitions of the libpq connection state machine, driven without a server.
@Suite struct PostgresConnectionStateMachineTests {
    private static let readable = IOEvents(readable: true, writable: false, hangup: false)
    private static let writable = IOEvents(readable: false, writable: true, hangup: false)
    private static let hangup = IOEvents(readable: false, writable: false, hangup: true)

    private func connected() -> PostgresConnectionStateMachine {
        var machine = PostgresConnectionStateMachine(connectTimeout: .milliseconds(5_000))
        _ = machine.connectStarted()
        _ = machine.connectPolled(.ok)
        return machine
    }

    private func awaitingResults() -> PostgresConnectionStateMachine {
        var machine = connected()
        _ = machine.queryRequested()
        _ = machine.flushed(.complete)
        return machine
    }

    @Test func connectStartsByWaitingForWritable() {
        var machine = PostgresConnectionStateMachine(connectTimeout: .milliseconds(5_000))
        #expect(machine.connectStarted() == .watch(.write))
        #expect(machine.state == .connecting(waitingFor: .write))
        // Readable is not what libpq asked for.
        #expect(machine.socketReady(Self.readable) == .none)
        #expect(machine.socketReady(Self.writable) == .pollConnect)
    }

    @Test func connectFollowsWhatPollAsksFor() {
        var machine = PostgresConnectionStateMachine(connectTimeout: .milliseconds(5_000))
        _ = machine.connectStarted()
        #expect(machine.connectPolled(.reading) == .watch(.read))
        #expect(machine.state == .connecting(waitingFor: .read))
        #expect(machine.socketReady(Self.writable) == .none)
        #expect(machine.socketReady(Self.readable) == .pollConnect)
        #expect(machine.connectPolled(.writing) == .watch(.write))
        #expect(machine.connectPolled(.ok) == .finishConnect)
        #expect(machine.state == .idle)
        #expect(machine.isIdle)
    }

    @Test func hangupWhileConnectingLetsLibpqReportTheError() {
        var machine = PostgresConnectionStateMachine(connectTimeout: .milliseconds(5_000))
        _ = machine.connectStarted()
        _ = machine.connectPolled(.reading)
        #expect(machine.socketReady(Self.hangup) == .pollConnect)
        #expect(machine.connectPolled(.failed("Connection refused")) == .failConnect(.unavailable("Connection refused")))
        #expect(machine.state == .failed(.unavailable("Connection refused")))
    }

    @Test func connectStartFailureIsUnavailable() {
        var machine = PostgresConnectionStateMachine(connectTimeout: .milliseconds(5_000))
        #expect(machine.connectStartFailed("invalid URI") == .failConnect(.unavailable("invalid URI")))
        #expect(machine.queryRequested() == .reject(.unavailable("connection is no longer usable: \(PostgresError.unavailable("invalid URI"))")))
    }

    @Test func connectTimeoutFailsTheConnectWithTheLimitInTheMessage() {
        var machine = PostgresConnectionStateMachine(connectTimeout: .milliseconds(250))
        _ = machine.connectStarted()
        #expect(machine.timedOut() == .failConnect(.unavailable("could not connect within 250 ms")))
        // A late readiness event or poll result changes nothing.
        #expect(machine.socketReady(Self.writable) == .none)
        #expect(machine.connectPolled(.ok) == .none)
    }

    @Test func queryHappyPath() {
        var machine = connected()
        #expect(machine.queryRequested() == .send)
        #expect(machine.state == .sending)
        #expect(machine.isBusy)
        #expect(machine.flushed(.pending) == .watch([.read, .write]))
        #expect(machine.socketReady(Self.writable) == .flush)
        #expect(machine.socketReady(Self.readable) == .consumeInputAndFlush)
        #expect(machine.flushed(.complete) == .watch(.read))
        #expect(machine.state == .awaitingResults)
        #expect(machine.socketReady(Self.readable) == .readResults)
        #expect(machine.socketReady(Self.writable) == .none)
        #expect(machine.resultsFinished(.success, brokenConnection: nil) == .succeedQuery)
        #expect(machine.state == .idle)
    }

    @Test func secondQueryOnABusyConnectionIsRejectedWithoutDisturbingTheFirst() {
        var machine = awaitingResults()
        guard case .reject(.misuse) = machine.queryRequested() else {
            Issue.record("expected a misuse rejection")
            return
        }
        #expect(machine.state == .awaitingResults)
    }

    @Test func queriesBeforeConnectingOrAfterCloseAreRejected() {
        var fresh = PostgresConnectionStateMachine(connectTimeout: .milliseconds(5_000))
        guard case .reject(.misuse) = fresh.queryRequested() else {
            Issue.record("expected misuse before connecting")
            return
        }
        var machine = connected()
        #expect(machine.close() == .closeConnection)
        #expect(machine.queryRequested() == .reject(.unavailable("connection is closed")))
        #expect(machine.close() == .none)
    }

    @Test func serverErrorKeepsTheConnection() {
        var machine = awaitingResults()
        let error = PostgresServerError(sqlState: "23505", message: "duplicate key", constraint: "users_username_key")
        #expect(machine.resultsFinished(.serverError(error), brokenConnection: nil)
            == .failQuery(.server(error), closeConnection: false))
        #expect(machine.isIdle)
    }

    @Test func brokenConnectionAfterResultsMeansOutcomeUnknown() {
        var machine = awaitingResults()
        // Even a success result is not trusted when the connection died before ReadyForQuery.
        #expect(machine.resultsFinished(.success, brokenConnection: "server closed the connection")
            == .failQuery(.connectionLost("server closed the connection"), closeConnection: true))
        #expect(machine.state == .failed(.connectionLost("server closed the connection")))
    }

    @Test func inputFailureMidQueryIsConnectionLost() {
        var sending = connected()
        _ = sending.queryRequested()
        #expect(sending.inputFailed("EOF") == .failQuery(.connectionLost("EOF"), closeConnection: true))
        var reading = awaitingResults()
        #expect(reading.inputFailed("EOF") == .failQuery(.connectionLost("EOF"), closeConnection: true))
    }

    @Test func failuresBeforeTheStatementLeftAreUnavailable() {
        var stale = connected()
        _ = stale.queryRequested()
        #expect(stale.sendFailed("server closed the connection") == .failQuery(.unavailable("server closed the connection"), closeConnection: true))
        var unflushed = connected()
        _ = unflushed.queryRequested()
        #expect(unflushed.flushed(.failed("broken pipe")) == .failQuery(.unavailable("broken pipe"), closeConnection: true))
    }

    @Test func protocolViolationClosesTheConnection() {
        var machine = awaitingResults()
        #expect(machine.resultsFinished(.protocolViolation("COPY"), brokenConnection: nil)
            == .failQuery(.protocol("COPY"), closeConnection: true))
    }

    @Test func queryTimeoutClosesTheConnection() {
        var machine = awaitingResults()
        #expect(machine.timedOut() == .failQuery(.timeout, closeConnection: true))
        #expect(machine.state == .failed(.timeout))
        // Results arriving after the timeout are ignored.
        #expect(machine.resultsFinished(.success, brokenConnection: nil) == .none)
        #expect(machine.socketReady(Self.readable) == .none)
    }

    @Test func staleTimerOnIdleConnectionDoesNothing() {
        var machine = connected()
        #expect(machine.timedOut() == .none)
        #expect(machine.isIdle)
    }

    @Test func idleConnectionClosedByTheServerIsNoticed() {
        var machine = connected()
        #expect(machine.socketReady(Self.readable) == .checkIdleConnection)
        #expect(machine.idleChecked(deadReason: nil) == .none)
        #expect(machine.isIdle)
        #expect(machine.socketReady(Self.hangup) == .checkIdleConnection)
        #expect(machine.idleChecked(deadReason: "terminating connection") == .closeConnection)
        #expect(machine.state == .failed(.unavailable("terminating connection")))
    }

    @Test func closingMidQueryFailsTheQueryAsConnectionLost() {
        var machine = awaitingResults()
        guard case .failQuery(.connectionLost, closeConnection: true) = machine.close() else {
            Issue.record("expected connectionLost")
            return
        }
        #expect(machine.state == .closed)
    }

    @Test func closingWhileConnectingFailsTheConnect() {
        var machine = PostgresConnectionStateMachine(connectTimeout: .milliseconds(5_000))
        _ = machine.connectStarted()
        #expect(machine.close() == .failConnect(.unavailable("connection closed while connecting")))
    }
}
