// libFuzzer target for what long-polling and connection state recovery read from clients (issue 15):
// - `EngineIOPayload.decode` of a POST body: never crashes; what it accepts re-encodes to the same
//   bytes;
// - `RecoveryOffset(encoded:)` of a client's offset: never crashes; what it accepts re-encodes to
//   text that parses to an equal offset, within the size limits;
// - `RecoveryPID.Signer.verify` of a client's pid: never crashes, and never accepts text it did
//   not sign (only the one signed pid of the run verifies);
// - one `PollingMachine` driven by the input as a program (polls, packets, flushes, closes, the
//   upgrade steps, abandon): packets come out at most once and in the order they went in, the
//   queue stays within its bound (plus the close packet), and nothing but a close packet follows
//   the close.
// Built by fuzz/run-polling-fuzz.sh with -sanitize=fuzzer,address.
import Shared

private let signer = RecoveryPID.Signer(secret: Array("fuzz secret for recovery pids, 32+ bytes".utf8))
private let signed = signer.sign(RecoveryPID(userID: 42, epochMilliseconds: 1_700_000_000_000, nonce: "nonce"))

private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

private func checkPayload(_ bytes: [UInt8]) {
    switch Result(catching: { () throws(EngineIOPayload.DecodeError) in try EngineIOPayload.decode(bytes, maxPackets: 64) }) {
    case .failure(let error):
        _ = error.message
    case .success(let packets):
        check(!packets.isEmpty && packets.count <= 64, "decode gave \(packets.count) packets")
        check(EngineIOPayload.encode(packets.map { Array($0.utf8) }) == bytes, "payload does not re-encode to its bytes")
    }
}

private func checkRecoveryText(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    if let offset = RecoveryOffset(encoded: text) {
        check(offset.conversations.count <= RecoveryOffset.maxConversations, "too many conversations accepted")
        let again = offset.encoded
        check(RecoveryOffset(encoded: again) == offset, "offset \(text.debugDescription) re-encodes to \(again.debugDescription)")
    }
    if let pid = signer.verify(text) {
        check(text == signed, "an unsigned pid verified: \(text.debugDescription)")
        check(pid.userID == 42, "the signed pid lost its user")
    }
}

/// Reads the input as a program of machine steps.
private struct Program {
    var bytes: ArraySlice<UInt8>
    mutating func next() -> UInt8? { bytes.popFirst() }
}

private func runMachine(_ bytes: [UInt8]) {
    var program = Program(bytes: bytes[...])
    let limit = Int(program.next() ?? 64) + 8
    var machine = PollingMachine(configuration: PollingMachine.Configuration(maxQueuedBytes: limit, maxPacketsPerPost: 8))
    var sent = 0
    var delivered: [Int] = []
    var closes = 0
    func collect(_ body: [UInt8]) {
        for packet in String(decoding: body, as: UTF8.self).split(separator: "\u{1E}", omittingEmptySubsequences: false) {
            switch packet {
            case "1": closes += 1
            case "6": break
            default:
                check(closes == 0, "a packet after the close packet")
                guard packet.hasPrefix("4m"), let number = Int(packet.dropFirst(2)) else { fatalError("unknown packet \(packet)") }
                delivered.append(number)
            }
        }
    }
    while let step = program.next() {
        switch step % 10 {
        case 0, 1:
            switch machine.poll() {
            case .answer(let body): collect(body)
            case .overlap(let body): collect(body)
            case .hold, .gone: break
            }
        case 2, 3:
            sent += 1
            // A full queue ends the session, as `PollingLink` ends it.
            if machine.enqueue(Array("4m\(sent)".utf8)) == .overflow { _ = machine.abandon() }
        case 4: if let body = machine.flushHeld() { collect(body) }
        case 5: if let body = machine.close() { collect(body) }
        case 6: if let body = machine.upgradeProbed() { collect(body) }
        case 7: machine.upgradeAbandoned()
        case 8: if let (queued, held) = machine.upgraded() { queued.forEach(collect); if let held { collect(held) } }
        default: _ = machine.abandon()
        }
        check(machine.pendingBytes <= limit + 2, "queue over its bound: \(machine.pendingBytes) > \(limit)")
        check(delivered == delivered.sorted() && Set(delivered).count == delivered.count, "packets out of order or twice: \(delivered)")
        check(closes <= 1, "more than one close")
    }
    _ = machine.post(bytes)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    checkPayload(bytes)
    checkRecoveryText(bytes)
    runMachine(bytes)
    return 0
}
