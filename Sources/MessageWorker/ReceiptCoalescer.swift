import Shared

/// Read and delivery receipts in rooms (`memberRead`, `memberDelivered`, issue 13): at most one per
/// member per room per `window`. The first goes out at once; later ones within the window are held,
/// the newest replacing the older, and published when the window ends. Other events pass through.
///
/// Receipts are ephemeral: the pointers themselves are durable (sync, the receipts endpoint), so a
/// held receipt lost with its worker costs nothing but liveness.
@LoopActor
final class ReceiptCoalescer {
    private struct Key: Hashable {
        let room: Int64
        let member: Int64
        let event: String
    }

    private let window: Duration
    private let clock: any LoopClock
    private var lastSent: [Key: UInt64] = [:]
    private var held: [Key: RoomEvent] = [:]
    private var timer: TimerHandle?
    /// Publishes receipts whose window ended (outside any batch).
    var publish: @LoopActor ([RoomEvent]) -> Void = { _ in }

    init(window: Duration = .seconds(1), clock: any LoopClock = SystemClock.shared) {
        self.window = window
        self.clock = clock
    }

    /// Receipts held right now (tests and diagnostics).
    var heldCount: Int { held.count }

    /// `events` without the receipts that must wait for their member's window.
    func admit(_ events: [RoomEvent]) -> [RoomEvent] {
        let now = clock.now()
        var passed: [RoomEvent] = []
        for event in events {
            guard event.event == .memberRead || event.event == .memberDelivered, let member = event.except else {
                passed.append(event)
                continue
            }
            let key = Key(room: event.roomID, member: member, event: event.event.name)
            if held[key] != nil {
                held[key] = event
            } else if let last = lastSent[key], now < last.addingSaturated(window.nanosecondsSaturated) {
                held[key] = event
                schedule()
            } else {
                lastSent[key] = now
                passed.append(event)
            }
        }
        return passed
    }

    private func schedule() {
        guard timer == nil else { return }
        timer = clock.schedule(after: window / 4) { [weak self] in
            self?.timer = nil
            self?.flush()
        }
    }

    private func flush() {
        let now = clock.now()
        let span = window.nanosecondsSaturated
        var due: [RoomEvent] = []
        for (key, event) in held where now >= (lastSent[key] ?? 0).addingSaturated(span) {
            due.append(event)
            held[key] = nil
            lastSent[key] = now
        }
        // Members quiet for two windows are forgotten: the map holds recent readers only.
        lastSent = lastSent.filter { held[$0.key] != nil || now < $0.value.addingSaturated(span * 2) }
        if !due.isEmpty { publish(due) }
        if !held.isEmpty { schedule() }
    }
}
