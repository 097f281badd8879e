import CLinux
import Glibc
import Synchronization

/// What a registration wants to hear about.
package struct IOInterest: OptionSet, Sendable {
    package let rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue }
    package static let read = IOInterest(rawValue: 1)
    package static let write = IOInterest(rawValue: 2)
}

/// What epoll reported for one file descriptor.
package struct IOEvents: Sendable {
    package var readable: Bool
    package var writable: Bool
    /// Peer hung up or the descriptor is in error; a read will tell which.
    package var hangup: Bool
}

/// Something the loop calls when its file descriptor is ready.
@LoopActor
package protocol IOHandler: AnyObject {
    func handleIO(_ events: IOEvents)
}

/// A file descriptor registered with the loop. The id makes a recycled fd number distinguishable
/// from an earlier registration of the same number.
package struct IORegistration: Sendable, Equatable {
    package let fd: CInt
    fileprivate let id: UInt32
}

/// A scheduled timer, for cancellation.
package struct TimerHandle: Sendable, Equatable {
    /// The id in the owning clock's `TimerQueue`.
    package let id: UInt64
    package init(id: UInt64) { self.id = id }
}

/// The process's event loop: epoll, a timer heap, and a cross-thread queue woken by an eventfd.
///
/// It is also the `SerialExecutor` of `LoopActor`, so Swift tasks isolated to `LoopActor` run here,
/// and a `TaskExecutor`: tasks started with `Task.onLoop` are resumed here, not on Swift's pool.
/// `@unchecked Sendable`: the cross-thread inbox is behind a `Mutex`, the thread id is atomic, and every
/// other field is only touched on the loop thread (`reactor` is `@LoopActor`, checked by the compiler).
package final class EventLoop: SerialExecutor, TaskExecutor, @unchecked Sendable {
    /// The one loop of this process (design: one loop per process, scale with processes).
    package static let shared = EventLoop()

    private struct Inbox {
        var jobs: [UnownedJob] = []
        var tasks: [@Sendable @LoopActor () -> Void] = []
        var wakePending = false
        var isEmpty: Bool { jobs.isEmpty && tasks.isEmpty }
    }

    private let epollFD: CInt
    private let wakeFD: CInt
    private let inbox = Mutex(Inbox())
    private let thread = Atomic<UInt>(0)
    private let stopRequested = Atomic<Bool>(false)
    fileprivate let reactor = Reactor()

    private static let wakeToken: UInt64 = .max

    private init() {
        epollFD = epoll_create1(CInt(EPOLL_CLOEXEC))
        wakeFD = eventfd(0, CInt(EFD_CLOEXEC | EFD_NONBLOCK))
        precondition(epollFD >= 0 && wakeFD >= 0, "cannot create epoll/eventfd: \(SystemError("epoll_create1"))")
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = Self.wakeToken
        precondition(epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event) == 0, "cannot register eventfd")
    }

    /// Whether the caller runs on the loop thread.
    package var inLoopThread: Bool {
        let owner = thread.load(ordering: .acquiring)
        return owner != 0 && owner == UInt(pthread_self())
    }

    // MARK: SerialExecutor

    package func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        post { $0.jobs.append(unowned) }
    }

    package func checkIsolated() {
        precondition(inLoopThread, "expected to run on the event loop thread")
    }

    // MARK: Cross-thread

    /// Runs `body` on the loop thread soon. Safe from any thread.
    package func execute(_ body: @escaping @Sendable @LoopActor () -> Void) {
        post { $0.tasks.append(body) }
    }

    private func post(_ add: (inout Inbox) -> Void) {
        let onLoop = inLoopThread
        let mustWake = inbox.withLock { box -> Bool in
            add(&box)
            if onLoop || box.wakePending { return false }
            box.wakePending = true
            return true
        }
        if mustWake {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
        }
    }

    // MARK: Running

    /// Runs the loop on the calling thread until `stop()`.
    package func run() {
        thread.store(UInt(pthread_self()), ordering: .releasing)
        defer { thread.store(0, ordering: .releasing) }
        let capacity = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }

        while !stopRequested.load(ordering: .acquiring) {
            let timeout = LoopActor.assumeIsolated { computeTimeout() }
            let count = epoll_wait(epollFD, events, CInt(capacity), timeout)
            if count < 0 {
                if errno == EINTR { continue }
                preconditionFailure("epoll_wait failed: \(SystemError("epoll_wait"))")
            }
            for index in 0..<Int(count) {
                let event = events[index]
                if event.data.u64 == Self.wakeToken {
                    var value: UInt64 = 0
                    _ = read(wakeFD, &value, 8)
                    continue
                }
                let mask = event.events
                let ioEvents = IOEvents(
                    readable: mask & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue) != 0,
                    writable: mask & EPOLLOUT.rawValue != 0,
                    hangup: mask & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
                )
                let data = event.data.u64
                LoopActor.assumeIsolated {
                    reactor.dispatch(fd: CInt(truncatingIfNeeded: UInt32(truncatingIfNeeded: data)),
                                     id: UInt32(truncatingIfNeeded: data >> 32), events: ioEvents)
                }
            }
            drainInbox()
            LoopActor.assumeIsolated { reactor.fireTimers(now: MonotonicClock.now()) }
        }
        drainInbox()
    }

    @LoopActor
    private func computeTimeout() -> CInt {
        if !inbox.withLock({ $0.isEmpty }) { return 0 }
        guard let deadline = reactor.timers.nextDeadline() else { return -1 }
        let now = MonotonicClock.now()
        if deadline <= now { return 0 }
        // Rounded up so a timer never fires early and the loop never spins on a sub-millisecond
        // remainder; a saturated (never) deadline just waits the cap.
        return CInt(min(MonotonicClock.milliseconds(until: deadline, from: now), 60_000))
    }

    /// Runs what the inbox holds, and what that work posted in turn (a resumed task hopping to
    /// `LoopActor`, the next statement of a transaction), up to `maxInboxPasses` snapshots, so a
    /// chain of hops costs no `epoll_wait` per hop while work that keeps posting more cannot
    /// starve I/O.
    private func drainInbox() {
        for _ in 0..<Self.maxInboxPasses {
            guard drainInboxOnce() else { return }
        }
    }

    private static let maxInboxPasses = 16

    /// Runs one snapshot of the inbox; false when it was empty.
    private func drainInboxOnce() -> Bool {
        let batch = inbox.withLock { box -> Inbox in
            let taken = box
            box.jobs.removeAll(keepingCapacity: true)
            box.tasks.removeAll(keepingCapacity: true)
            box.wakePending = false
            return taken
        }
        if !batch.tasks.isEmpty {
            LoopActor.assumeIsolated {
                for task in batch.tasks { task() }
            }
        }
        let executor = asUnownedSerialExecutor()
        for job in batch.jobs { job.runSynchronously(on: executor) }
        return !batch.isEmpty
    }

    /// Asks the loop to return from `run()` after the current round. Safe from any thread.
    package func stop() {
        stopRequested.store(true, ordering: .releasing)
        execute {}
    }

    /// Starts the loop on a new thread (tests and tools; executables run it on the main thread).
    /// Returns once the thread is running; calling it again is a no-op.
    package func startInBackground() {
        let alreadyRunning = EventLoop.backgroundStarted.withLock { started -> Bool in
            defer { started = true }
            return started
        }
        if alreadyRunning { return }
        NativeThread.spawn(name: "event-loop") { EventLoop.shared.run() }
        while thread.load(ordering: .acquiring) == 0 { sched_yield() }
    }

    private static let backgroundStarted = Mutex(false)
}

// MARK: - Loop-thread API

extension EventLoop {
    /// Registers `fd` for `interest`; the loop keeps `handler` alive until `deregister`.
    @LoopActor
    package func register(fd: CInt, interest: IOInterest, handler: any IOHandler) throws(SystemError) -> IORegistration {
        try reactor.register(epollFD: epollFD, fd: fd, interest: interest, handler: handler)
    }

    /// Changes what a registration listens for. A stale registration is ignored.
    @LoopActor
    package func modify(_ registration: IORegistration, interest: IOInterest) {
        reactor.modify(epollFD: epollFD, registration, interest: interest)
    }

    /// Removes a registration (before the fd is closed). A stale registration is ignored.
    @LoopActor
    package func deregister(_ registration: IORegistration) {
        reactor.deregister(epollFD: epollFD, registration)
    }

    /// Runs `body` on the loop after `delay` (at once when not positive). A delay beyond the
    /// clock's range saturates to a deadline that never comes, instead of wrapping into the past.
    @LoopActor
    @discardableResult
    package func schedule(after delay: Duration, _ body: @escaping @LoopActor () -> Void) -> TimerHandle {
        let deadline = MonotonicClock.deadline(after: delay, from: MonotonicClock.now())
        return TimerHandle(id: reactor.timers.schedule(at: deadline, body))
    }

    /// Cancels a timer that has not fired yet.
    @LoopActor
    package func cancel(_ timer: TimerHandle) {
        reactor.timers.cancel(timer.id)
    }

    /// Number of live timers (for metrics and tests).
    @LoopActor
    package var timerCount: Int { reactor.timers.count }

    /// Suspends the calling task for `delay` using the loop's timers.
    @LoopActor
    package func sleep(for delay: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            schedule(after: delay) { continuation.resume() }
        }
    }
}

/// Loop-thread state: registrations and timers.
@LoopActor
private final class Reactor {
    private struct Registration {
        let id: UInt32
        var interest: IOInterest
        let handler: any IOHandler
    }

    private var registrations: [CInt: Registration] = [:]
    private var nextID: UInt32 = 1
    var timers = TimerQueue<@LoopActor () -> Void>()

    nonisolated init() {}

    private static func mask(_ interest: IOInterest) -> UInt32 {
        var mask = EPOLLRDHUP.rawValue
        if interest.contains(.read) { mask |= EPOLLIN.rawValue }
        if interest.contains(.write) { mask |= EPOLLOUT.rawValue }
        return mask
    }

    private static func userData(fd: CInt, id: UInt32) -> UInt64 {
        UInt64(id) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    func register(epollFD: CInt, fd: CInt, interest: IOInterest, handler: any IOHandler) throws(SystemError) -> IORegistration {
        let id = nextID
        nextID = nextID == UInt32.max - 1 ? 1 : nextID + 1
        var event = epoll_event()
        event.events = Self.mask(interest)
        event.data.u64 = Self.userData(fd: fd, id: id)
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else { throw SystemError("epoll_ctl(ADD)") }
        registrations[fd] = Registration(id: id, interest: interest, handler: handler)
        return IORegistration(fd: fd, id: id)
    }

    func modify(epollFD: CInt, _ registration: IORegistration, interest: IOInterest) {
        guard var entry = registrations[registration.fd], entry.id == registration.id else { return }
        guard entry.interest != interest else { return }
        entry.interest = interest
        registrations[registration.fd] = entry
        var event = epoll_event()
        event.events = Self.mask(interest)
        event.data.u64 = Self.userData(fd: registration.fd, id: registration.id)
        _ = epoll_ctl(epollFD, EPOLL_CTL_MOD, registration.fd, &event)
    }

    func deregister(epollFD: CInt, _ registration: IORegistration) {
        guard let entry = registrations[registration.fd], entry.id == registration.id else { return }
        registrations[registration.fd] = nil
        var event = epoll_event()
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, registration.fd, &event)
    }

    func dispatch(fd: CInt, id: UInt32, events: IOEvents) {
        guard let entry = registrations[fd], entry.id == id else { return }
        entry.handler.handleIO(events)
    }

    func fireTimers(now: UInt64) {
        while let body = timers.popExpired(now: now) { body() }
    }
}
