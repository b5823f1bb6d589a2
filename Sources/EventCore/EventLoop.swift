#if canImport(Glibc)
import Glibc
#endif
import CChorusSystem
import Synchronization

/// One thread around `epoll`: it waits for file descriptors to become ready,
/// runs their handlers, fires timers from a ``TimerWheel`` and runs closures
/// submitted from other threads.
///
/// All protocol state of a node is confined to its loop; many nodes or many
/// Raft groups may share one loop. Methods marked *loop-only* must be called
/// on the loop's thread (from a handler, a timer, or a closure passed to
/// ``execute(_:)``); ``execute(_:)``, ``submit(_:)``, ``isInLoop`` and
/// ``shutdown()`` may be called from any thread. A loop-only method called
/// on another thread traps with a message naming it, in release builds too
/// (so does anything built on one: a node's or a transport's initializer,
/// ``LoopBound``).
///
/// ```swift
/// let loop = try EventLoop()
/// try loop.start()
/// loop.execute { print("on the loop") }
/// loop.shutdown()   // runs pending work, stops the thread, closes its descriptors
/// ```
public final class EventLoop: Scheduler, @unchecked Sendable {
    // Thread-safety invariant for `@unchecked Sendable`: the stored properties
    // below marked loop-confined are read and written only by the thread
    // running `runLoop()` (enforced by `preconditionInLoop()` on every
    // loop-only entry point; `init` and `deinit` have the object to
    // themselves). At most one thread ever runs `runLoop()`: `start()`,
    // `run()` and the idle case of `shutdown()` each leave `.idle` under the
    // lock before calling it. Everything shared is in `shared` (a Mutex), in
    // an atomic, in the `Latch`, or an immutable `let`. The wake-up eventfd
    // is written only under the `shared` lock while the state is not
    // `.stopped`, and closed only after the state became `.stopped`, so no
    // write can reach a closed (or reused) descriptor.

    private struct Shared {
        var tasks: [@Sendable () -> Void] = []
        var state: State = .idle
        var wakePending = false
        /// The thread `start()` created, until someone joins or detaches it.
        var thread: pthread_t?
    }

    private enum State {
        /// Not started: `execute` queues work, nothing runs it yet.
        case idle
        /// A thread runs `runLoop()`.
        case running
        /// `shutdown()` was called: work queued before the loop notices
        /// still runs, in its last iteration.
        case stopping
        /// The loop is in its last iteration, or ended: no work is accepted.
        case stopped
    }

    private struct Registration {
        var interest: IOEvents
        var handler: (IOEvents) -> Void
    }

    private let clock: SystemClock
    /// How long the loop polls for readiness before it sleeps, after an
    /// iteration that handled I/O (``init(timerResolution:pollBeforeSleeping:)``).
    private let pollNanoseconds: UInt64
    private let epollFD: Int32
    private let wakeFD: Int32
    private let shared = Mutex(Shared())
    private let loopThreadID = Atomic<UInt>(0)
    private let descriptorsClosed = Mutex(false)
    /// Opened when `runLoop()` has finished: what `shutdown()` waits for.
    private let stopped = Latch()

    /// A timer's closure. Wrapped, because a bare function type kept in
    /// generic storage (the wheel's slab) is converted through a thunk whose
    /// context is allocated on every schedule; a struct is stored as is.
    private struct TimerAction {
        let body: () -> Void
    }

    // Loop-confined.
    /// Exempt from dynamic exclusivity checks, which cost a third of a
    /// schedule + cancel: every access is a short call into the wheel on the
    /// loop thread, and the wheel never calls out (due timers are moved to
    /// `expired` before any of them runs), so accesses cannot overlap.
    @exclusivity(unchecked) private var timers: TimerWheel<TimerAction>
    private var expired: [(handle: TimerHandle, payload: TimerAction)] = []
    /// While due timers run: handles cancelled by them, whose timers (already
    /// taken from the wheel in the same batch) must not run.
    private var cancelledWhileFiring: [TimerHandle] = []
    private var isFiringTimers = false
    private var registrations: [Int32: Registration] = [:]
    private var iterationEndHandlers: [(hook: LoopHook, body: () -> Void)] = []
    /// Work deferred to the end of the iteration (``atEndOfTurn(_:)``).
    private var endOfTurn: [() -> Void] = []
    private var endOfTurnRunning: [() -> Void] = []
    /// Work deferred to the next iteration (``onNextTurn(_:)``).
    private var nextTurn: [() -> Void] = []
    private var nextTurnRunning: [() -> Void] = []
    /// By hook: hooks grow, so their order is the order of registration.
    /// Keyed, so that many components (a Raft group each) add and remove
    /// theirs in O(1), and shutdown runs them in O(n log n), not O(n²).
    private var shutdownHandlers: [UInt64: () -> Void] = [:]
    private var nextHook: UInt64 = 0
    /// How many times the loop has blocked in `epoll_wait` (a wait with a
    /// timeout other than zero). Loop-confined; tests read it from the loop
    /// to tell a wake-up that needed no sleep from one that slept.
    package private(set) var blockingWaits = 0

    private static let wakeToken = UInt64.max

    /// Creates a loop (not yet running: call ``start()`` or ``run()``).
    ///
    /// - Parameter timerResolution: the tick of the loop's timer wheel
    ///   (default 1 ms); timers never fire early, and at most one tick
    ///   plus a millisecond late (a deadline is rounded up to a tick, and
    ///   `epoll_wait`'s sleep until that tick up to a whole millisecond).
    /// - Parameter pollBeforeSleeping: after an iteration that handled I/O,
    ///   how long the loop keeps polling `epoll` without blocking before it
    ///   sleeps (default 30 µs; zero or less never polls). A loop that is
    ///   woken for every datagram of a steady stream spends more on waking
    ///   up than on the datagrams: on a 2-core VM, sleeping between
    ///   datagrams cost a third of a loopback stream's throughput, because
    ///   every datagram to a sleeping receiver makes the sender pay for a
    ///   cross-CPU wake-up (see Benchmarks' Loopback64B). Polling briefly
    ///   keeps the loop awake through a burst; the cost is bounded by this
    ///   duration per iteration with I/O, nothing for an idle loop. The same
    ///   trade as Linux's `busy_poll` sockets.
    /// - Throws: ``SystemError`` if the epoll or eventfd descriptor cannot
    ///   be created (the process is out of descriptors).
    public init(
        timerResolution: Duration = .milliseconds(1), pollBeforeSleeping: Duration = .microseconds(30)
    ) throws(SystemError) {
        clock = SystemClock()
        pollNanoseconds = pollBeforeSleeping > .zero ? UInt64(pollBeforeSleeping.nanoseconds) : 0
        let epoll = CChorus_epoll_create1(CChorus_EPOLL_CLOEXEC)
        guard epoll >= 0 else { throw SystemError(call: "epoll_create1", errno: errno) }
        let wake = CChorus_eventfd(0, CChorus_EFD_CLOEXEC | CChorus_EFD_NONBLOCK)
        guard wake >= 0 else {
            let code = errno
            close(epoll)
            throw SystemError(call: "eventfd", errno: code)
        }
        guard CChorus_epoll_ctl(epoll, CChorus_EPOLL_CTL_ADD, wake, CChorus_EPOLLIN, Self.wakeToken) == 0 else {
            let code = errno
            close(wake)
            close(epoll)
            throw SystemError(call: "epoll_ctl", errno: code)
        }
        epollFD = epoll
        wakeFD = wake
        timers = TimerWheel(start: clock.now, resolution: timerResolution)
    }

    deinit {
        // A loop that never ran still owns its descriptors.
        closeDescriptorsOnce()
    }

    // MARK: Threads

    /// Whether the calling thread is this loop's thread.
    public var isInLoop: Bool {
        let id = loopThreadID.load(ordering: .acquiring)
        return id != 0 && id == UInt(pthread_self())
    }

    /// Starts the loop on a new thread. Calling it again, or after
    /// ``shutdown()``, does nothing.
    ///
    /// - Throws: ``SystemError`` for `pthread_create` if the thread cannot
    ///   be created (the process is out of threads or memory); the loop
    ///   stays idle, and ``shutdown()`` runs the work submitted to it.
    public func start() throws(SystemError) {
        let failure = shared.withLock { shared -> Int32 in
            guard case .idle = shared.state else { return 0 }
            // Created under the lock, so that a concurrent `shutdown()` sees
            // either an idle loop or a running one with its thread recorded.
            // The new thread takes this lock first thing, after we release it.
            let box = Unmanaged.passRetained(self).toOpaque()
            var thread = pthread_t()
            let result = pthread_create(&thread, nil, { argument in
                guard let argument else { return nil }
                let loop = Unmanaged<EventLoop>.fromOpaque(argument).takeRetainedValue()
                loop.runLoop()
                return nil
            }, box)
            guard result == 0 else {
                Unmanaged<EventLoop>.fromOpaque(box).release()
                return result
            }
            shared.state = .running
            shared.thread = thread
            return 0
        }
        guard failure == 0 else { throw SystemError(call: "pthread_create", errno: failure) }
    }

    /// Runs the loop on the calling thread until ``shutdown()``.
    public func run() {
        let shouldRun = shared.withLock { shared -> Bool in
            guard case .idle = shared.state else { return false }
            shared.state = .running
            return true
        }
        if shouldRun { runLoop() }
    }

    /// Stops the loop: tasks already submitted still run, in a last
    /// iteration (with its I/O, timers due and iteration-end handlers, so
    /// what they send is flushed), then the shutdown handlers, then the
    /// thread ends and the loop's descriptors are closed. From that last
    /// iteration on, ``execute(_:)`` refuses work (``submit(_:)`` throws
    /// ``EventLoopError/shutDown``), and work deferred with
    /// ``onNextTurn(_:)`` in it never runs, nor do timers not yet due.
    ///
    /// Idempotent and callable from any thread. Called on the loop's thread
    /// it returns at once and the loop stops after the current iteration;
    /// called on any other thread it returns once the loop has stopped. A
    /// loop that was never started runs the tasks already submitted to it on
    /// the calling thread (as ``run()`` would), so no ``submit(_:)`` waits
    /// forever.
    public func shutdown() {
        enum Action {
            case runHere
            case join(pthread_t)
            case wait
        }
        let action = shared.withLock { shared -> Action in
            switch shared.state {
            case .idle:
                shared.state = .stopping
                return .runHere
            case .running:
                shared.state = .stopping
                signalWakeDescriptor(&shared)
            case .stopping, .stopped:
                break
            }
            // The loop thread never joins itself; it detaches at its end if
            // no other thread took the handle to join it.
            guard !isInLoop, let thread = shared.thread else { return .wait }
            shared.thread = nil
            return .join(thread)
        }
        switch action {
        case .runHere:
            runLoop()
        case .join(let thread):
            pthread_join(thread, nil)
        case .wait:
            if !isInLoop { stopped.wait() }
        }
    }

    /// Runs `body` on the loop thread, soon. Callable from any thread.
    ///
    /// - Returns: false if the loop has stopped and `body` will never run.
    @discardableResult
    public func execute(_ body: @escaping @Sendable () -> Void) -> Bool {
        shared.withLock { shared -> Bool in
            switch shared.state {
            case .stopped:
                return false
            case .idle, .running, .stopping:
                shared.tasks.append(body)
                // On the loop's own thread no wake-up is needed: the loop
                // looks for tasks before it next waits (and then does not
                // block), which saves a write and a read of the eventfd.
                if !isInLoop { signalWakeDescriptor(&shared) }
                return true
            }
        }
    }

    /// Runs `body` on the loop thread and returns its result.
    ///
    /// - Throws: ``EventLoopError`` if the loop has stopped, or what `body`
    ///   throws.
    public func submit<Result: Sendable>(
        _ body: @escaping @Sendable () throws -> Result
    ) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = execute {
                continuation.resume(with: Swift.Result { try body() })
            }
            if !accepted { continuation.resume(throwing: EventLoopError.shutDown) }
        }
    }

    // MARK: Scheduler (loop-only)

    /// The current monotonic time.
    public var now: Instant { clock.now }

    /// Schedules `body` to run on the loop once `deadline` has passed.
    /// Loop-only.
    @discardableResult
    public func schedule(at deadline: Instant, _ body: @escaping () -> Void) -> TimerHandle {
        preconditionInLoop()
        return timers.schedule(TimerAction(body: body), at: deadline)
    }

    /// Runs `body` at the end of this loop iteration, after I/O, tasks and
    /// timers, before the iteration-end handlers (the transports' flush);
    /// work it defers in turn runs in the same iteration. Loop-only.
    public func atEndOfTurn(_ body: @escaping () -> Void) {
        preconditionInLoop()
        endOfTurn.append(body)
    }

    /// Runs `body` in the next loop iteration, right after its I/O events
    /// and before its tasks and timers; the loop polls for I/O without
    /// sleeping in between. Work it defers the same way runs an iteration
    /// later again. Deferred in the loop's last iteration (see
    /// ``shutdown()``), it never runs. Loop-only.
    public func onNextTurn(_ body: @escaping () -> Void) {
        preconditionInLoop()
        nextTurn.append(body)
    }

    /// Cancels a timer; a stale handle is ignored. A timer due in the same
    /// tick as the one running now does not fire once cancelled. Loop-only.
    public func cancel(_ handle: TimerHandle) {
        preconditionInLoop()
        if timers.cancel(handle) == nil && isFiringTimers {
            cancelledWhileFiring.append(handle)
        }
    }

    /// The number of timers pending. Loop-only.
    public var pendingTimerCount: Int {
        preconditionInLoop()
        return timers.count
    }

    // MARK: Descriptors (loop-only)

    /// Watches `descriptor` for `interest`, calling `handler` with the ready
    /// events. The caller keeps ownership of the descriptor. Loop-only.
    ///
    /// - Throws: ``SystemError`` from `epoll_ctl` (a bad or duplicate
    ///   descriptor).
    public func register(
        _ descriptor: Int32, interest: IOEvents, handler: @escaping (IOEvents) -> Void
    ) throws(SystemError) {
        preconditionInLoop()
        guard CChorus_epoll_ctl(epollFD, CChorus_EPOLL_CTL_ADD, descriptor, interest.rawValue, UInt64(UInt32(bitPattern: descriptor))) == 0
        else { throw SystemError(call: "epoll_ctl(ADD)", errno: errno) }
        registrations[descriptor] = Registration(interest: interest, handler: handler)
    }

    /// Changes the events a registered descriptor is watched for. Loop-only.
    ///
    /// - Throws: ``SystemError`` from `epoll_ctl`.
    public func setInterest(_ descriptor: Int32, _ interest: IOEvents) throws(SystemError) {
        preconditionInLoop()
        guard registrations[descriptor]?.interest != interest else { return }
        guard CChorus_epoll_ctl(epollFD, CChorus_EPOLL_CTL_MOD, descriptor, interest.rawValue, UInt64(UInt32(bitPattern: descriptor))) == 0
        else { throw SystemError(call: "epoll_ctl(MOD)", errno: errno) }
        registrations[descriptor]?.interest = interest
    }

    /// Stops watching `descriptor` (call before closing it). Loop-only.
    public func unregister(_ descriptor: Int32) {
        preconditionInLoop()
        guard registrations.removeValue(forKey: descriptor) != nil else { return }
        _ = CChorus_epoll_ctl(epollFD, CChorus_EPOLL_CTL_DEL, descriptor, 0, 0)
    }

    /// Adds a handler run at the end of every loop iteration, after I/O,
    /// tasks and timers: where transports flush batched sends. Loop-only.
    ///
    /// - Returns: a hook for ``removeHandler(_:)``.
    @discardableResult
    public func addIterationEndHandler(_ handler: @escaping () -> Void) -> LoopHook {
        preconditionInLoop()
        let hook = makeHook()
        iterationEndHandlers.append((hook, handler))
        return hook
    }

    /// Adds a handler run once, on the loop thread, when the loop shuts
    /// down: where transports close their sockets. Loop-only.
    ///
    /// - Returns: a hook for ``removeHandler(_:)``.
    @discardableResult
    public func addShutdownHandler(_ handler: @escaping () -> Void) -> LoopHook {
        preconditionInLoop()
        let hook = makeHook()
        shutdownHandlers[hook.rawValue] = handler
        return hook
    }

    /// The shutdown handlers registered and not yet run or removed: for
    /// tests that a component stopped before the loop removes its own.
    /// Loop-only.
    package var shutdownHandlerCount: Int {
        preconditionInLoop()
        return shutdownHandlers.count
    }

    /// Removes an iteration-end or shutdown handler (a closed transport
    /// removes its own); an unknown hook is ignored. Loop-only.
    public func removeHandler(_ hook: LoopHook) {
        preconditionInLoop()
        if shutdownHandlers.removeValue(forKey: hook.rawValue) == nil {
            iterationEndHandlers.removeAll { $0.hook == hook }
        }
    }

    private func makeHook() -> LoopHook {
        nextHook += 1
        return LoopHook(rawValue: nextHook)
    }

    // MARK: The loop

    /// Traps, with a message that a release build keeps (`precondition`'s
    /// is dropped under `-O`), unless called on the loop's thread.
    private func preconditionInLoop(_ function: StaticString = #function) {
        if !isInLoop { Self.calledOffLoop("EventLoop.\(function)") }
    }

    /// Traps for a loop-only API called on another thread, naming it and
    /// what to do instead. A `fatalError`, not a `precondition`, so that the
    /// message survives `-O` (a release build).
    @inline(never)
    package static func calledOffLoop(_ what: String) -> Never {
        fatalError(
            "\(what) must be called on the event loop's thread: create and use loop-bound objects (transports, "
                + "nodes, LoopBound) inside loop.submit { ... } or loop.execute { ... }, or in a handler or timer "
                + "the loop runs")
    }

    /// Makes the loop's `epoll_wait` return, unless a wake-up is already
    /// pending. Called with the `shared` lock held, in a state other than
    /// `.stopped`, so the eventfd is open (see the invariant above).
    private func signalWakeDescriptor(_ shared: inout Shared) {
        guard !shared.wakePending else { return }
        shared.wakePending = true
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    /// The loop itself, on the one thread that runs it (see the invariant).
    private func runLoop() {
        loopThreadID.store(UInt(pthread_self()), ordering: .releasing)
        let capacity = 64
        var events = [UInt32](repeating: 0, count: capacity)
        var tokens = [UInt64](repeating: 0, count: capacity)
        var tasks: [@Sendable () -> Void] = []
        var handledIO = false
        while true {
            // Deciding on the last iteration and refusing further work happen
            // under one lock, so no task can be accepted and then never run:
            // the last iteration runs every task accepted before it. Work
            // queued during it is refused, so a task that queues itself
            // again (or threads that keep submitting) cannot hold the loop
            // up for ever.
            let (isLast, busy) = shared.withLock { shared -> (Bool, Bool) in
                guard case .stopping = shared.state else { return (false, !shared.tasks.isEmpty) }
                shared.state = .stopped
                return (true, true)
            }
            var timeout = busy || !endOfTurn.isEmpty || !nextTurn.isEmpty ? 0 : timeoutMilliseconds()
            var count: Int32 = 0
            if handledIO && timeout != 0 {
                count = pollForReadiness(&events, &tokens, capacity)
                // The poll may have run up to the next timer's deadline.
                if count == 0 { timeout = timeoutMilliseconds() }
            }
            if count == 0 {
                if timeout != 0 { blockingWaits += 1 }
                count = CChorus_epoll_wait(epollFD, &events, &tokens, Int32(capacity), timeout)
            }
            handledIO = count > 0
            if count > 0 {
                for i in 0..<Int(count) {
                    if tokens[i] == Self.wakeToken {
                        var value: UInt64 = 0
                        _ = Glibc.read(wakeFD, &value, 8)
                        continue
                    }
                    // Looked up per event: an earlier handler may have unregistered it.
                    if let registration = registrations[Int32(truncatingIfNeeded: tokens[i])] {
                        registration.handler(IOEvents(rawValue: events[i]))
                    }
                }
            }
            if !nextTurn.isEmpty {
                swap(&nextTurn, &nextTurnRunning)
                for body in nextTurnRunning { body() }
                nextTurnRunning.removeAll(keepingCapacity: true)
            }
            shared.withLock { shared in
                swap(&tasks, &shared.tasks)
                shared.wakePending = false
            }
            for task in tasks { task() }
            tasks.removeAll(keepingCapacity: true)
            fireTimers()
            while !endOfTurn.isEmpty {
                swap(&endOfTurn, &endOfTurnRunning)
                for body in endOfTurnRunning { body() }
                endOfTurnRunning.removeAll(keepingCapacity: true)
            }
            for handler in iterationEndHandlers { handler.body() }
            if isLast { break }
        }
        // In the order they were added. A shutdown handler may remove
        // others (a transport closing itself), which then do not run, or
        // add some, which run after. Work deferred to a next turn in the
        // last iteration is dropped.
        while !shutdownHandlers.isEmpty {
            for hook in shutdownHandlers.keys.sorted() {
                shutdownHandlers.removeValue(forKey: hook)?()
            }
        }
        iterationEndHandlers.removeAll()
        endOfTurn.removeAll()
        nextTurn.removeAll()
        registrations.removeAll()
        timers = TimerWheel(start: clock.now, resolution: timers.resolution)
        closeDescriptorsOnce()
        loopThreadID.store(0, ordering: .releasing)
        shared.withLock { shared in
            // No other thread took the handle to join: nobody ever will.
            if let thread = shared.thread {
                pthread_detach(thread)
                shared.thread = nil
            }
        }
        stopped.open()
    }

    /// Polls `epoll` without blocking for up to ``pollNanoseconds`` (or
    /// until the next timer is due); returns the number of ready events.
    private func pollForReadiness(
        _ events: inout [UInt32], _ tokens: inout [UInt64], _ capacity: Int
    ) -> Int32 {
        guard pollNanoseconds > 0 else { return 0 }
        var until = clock.now.nanoseconds &+ pollNanoseconds
        if let next = timers.nextExpiry() { until = min(until, next.nanoseconds) }
        repeat {
            let count = CChorus_epoll_wait(epollFD, &events, &tokens, Int32(capacity), 0)
            if count != 0 { return count }
        } while clock.now.nanoseconds < until
        return 0
    }

    /// Runs the timers due now, one by one; a timer cancelled by an earlier
    /// one of the same batch is skipped.
    private func fireTimers() {
        guard !timers.isEmpty else { return }
        timers.expire(upTo: clock.now, into: &expired)
        guard !expired.isEmpty else { return }
        isFiringTimers = true
        for timer in expired {
            if !cancelledWhileFiring.isEmpty && cancelledWhileFiring.contains(timer.handle) { continue }
            timer.payload.body()
        }
        isFiringTimers = false
        cancelledWhileFiring.removeAll(keepingCapacity: true)
        expired.removeAll(keepingCapacity: true)
    }

    /// The `epoll_wait` timeout until the next timer, in whole milliseconds
    /// rounded up (so the loop never wakes before a deadline), or -1. So
    /// with a timer resolution finer than a millisecond, a timer the loop
    /// sleeps for can still fire up to a millisecond late.
    private func timeoutMilliseconds() -> Int32 {
        guard let next = timers.nextExpiry() else { return -1 }
        let current = clock.now
        guard next > current else { return 0 }
        let nanos = next.nanoseconds - current.nanoseconds
        let millis = nanos / 1_000_000 + (nanos % 1_000_000 == 0 ? 0 : 1)
        return Int32(clamping: millis)
    }

    private func closeDescriptorsOnce() {
        let alreadyClosed = descriptorsClosed.withLock { done -> Bool in
            defer { done = true }
            return done
        }
        guard !alreadyClosed else { return }
        close(wakeFD)
        close(epollFD)
    }
}

/// Identifies a handler added with ``EventLoop/addIterationEndHandler(_:)``
/// or ``EventLoop/addShutdownHandler(_:)``, for removing it.
public struct LoopHook: Hashable, Sendable {
    let rawValue: UInt64
}

/// Why an ``EventLoop`` could not do what was asked.
public enum EventLoopError: Error, Hashable, Sendable {
    /// The loop has shut down; the work was not run.
    case shutDown
}
