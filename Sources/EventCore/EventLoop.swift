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
/// ``shutdown()`` may be called from any thread.
///
/// ```swift
/// let loop = try EventLoop()
/// loop.start()
/// loop.execute { print("on the loop") }
/// loop.shutdown()   // runs pending work, stops the thread, closes its descriptors
/// ```
public final class EventLoop: Scheduler, @unchecked Sendable {
    // Thread-safety invariant for `@unchecked Sendable`: the stored properties
    // below marked loop-confined are read and written only on the loop thread
    // (enforced by `preconditionInLoop()` on every loop-only entry point, and
    // before `run()` starts only by the creating thread, which hands them over
    // through the thread start). Everything shared is in `shared` (a Mutex)
    // or is an immutable `let`.

    private struct Shared {
        var tasks: [@Sendable () -> Void] = []
        var state: State = .idle
        var wakePending = false
        var thread: pthread_t?
    }

    private enum State {
        case idle, running, stopping, stopped
    }

    private struct Registration {
        var interest: IOEvents
        var handler: (IOEvents) -> Void
    }

    private let clock: SystemClock
    private let epollFD: Int32
    private let wakeFD: Int32
    private let shared = Mutex(Shared())
    private let loopThreadID = Atomic<UInt>(0)
    private let finished = Mutex(false)

    // Loop-confined.
    private var timers: TimerWheel<() -> Void>
    private var expired: [() -> Void] = []
    private var registrations: [Int32: Registration] = [:]
    private var iterationEndHandlers: [(hook: LoopHook, body: () -> Void)] = []
    private var shutdownHandlers: [(hook: LoopHook, body: () -> Void)] = []
    private var nextHook: UInt64 = 0

    private static let wakeToken = UInt64.max

    /// Creates a loop (not yet running: call ``start()`` or ``run()``).
    ///
    /// - Parameter timerResolution: the tick of the loop's timer wheel;
    ///   timers fire at most this late (default 1 ms).
    /// - Throws: ``SystemError`` if the epoll or eventfd descriptor cannot
    ///   be created (the process is out of descriptors).
    public init(timerResolution: Duration = .milliseconds(1)) throws(SystemError) {
        clock = SystemClock()
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
    public func start() {
        let shouldStart = shared.withLock { shared -> Bool in
            guard case .idle = shared.state else { return false }
            shared.state = .running
            return true
        }
        guard shouldStart else { return }
        let box = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { argument in
            guard let argument else { return nil }
            let loop = Unmanaged<EventLoop>.fromOpaque(argument).takeRetainedValue()
            loop.runLoop()
            return nil
        }, box)
        if result != 0 {
            Unmanaged<EventLoop>.fromOpaque(box).release()
            shared.withLock { $0.state = .idle }
            return
        }
        shared.withLock { $0.thread = thread }
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

    /// Stops the loop: tasks already submitted still run, then the shutdown
    /// handlers, then the thread ends and the loop's descriptors are closed.
    /// Idempotent and callable from any thread; from another thread it waits
    /// for the loop thread to end.
    public func shutdown() {
        let (thread, wasIdle) = shared.withLock { shared -> (pthread_t?, Bool) in
            switch shared.state {
            case .idle:
                shared.state = .stopped
                return (nil, true)
            case .running:
                shared.state = .stopping
            case .stopping, .stopped:
                break
            }
            let thread = shared.thread
            shared.thread = nil
            return (thread, false)
        }
        if wasIdle {
            closeDescriptorsOnce()
            return
        }
        wake()
        if let thread, !isInLoop {
            pthread_join(thread, nil)
        }
    }

    /// Runs `body` on the loop thread, soon. Callable from any thread.
    ///
    /// - Returns: false if the loop has stopped and `body` will never run.
    @discardableResult
    public func execute(_ body: @escaping @Sendable () -> Void) -> Bool {
        let (accepted, needsWake) = shared.withLock { shared -> (Bool, Bool) in
            switch shared.state {
            case .stopped: return (false, false)
            case .idle, .running, .stopping:
                shared.tasks.append(body)
                let needsWake = !shared.wakePending
                shared.wakePending = true
                return (true, needsWake)
            }
        }
        if needsWake { wake() }
        return accepted
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
        return timers.schedule(body, at: deadline)
    }

    /// Cancels a timer; a stale handle is ignored. Loop-only.
    public func cancel(_ handle: TimerHandle) {
        preconditionInLoop()
        timers.cancel(handle)
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
        shutdownHandlers.append((hook, handler))
        return hook
    }

    /// Removes an iteration-end or shutdown handler (a closed transport
    /// removes its own); an unknown hook is ignored. Loop-only.
    public func removeHandler(_ hook: LoopHook) {
        preconditionInLoop()
        iterationEndHandlers.removeAll { $0.hook == hook }
        shutdownHandlers.removeAll { $0.hook == hook }
    }

    private func makeHook() -> LoopHook {
        nextHook += 1
        return LoopHook(rawValue: nextHook)
    }

    // MARK: The loop

    private func preconditionInLoop() {
        precondition(isInLoop, "EventLoop: this method must be called on the loop's thread")
    }

    private func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    private func runLoop() {
        loopThreadID.store(UInt(pthread_self()), ordering: .releasing)
        let capacity = 64
        var events = [UInt32](repeating: 0, count: capacity)
        var tokens = [UInt64](repeating: 0, count: capacity)
        var tasks: [@Sendable () -> Void] = []
        while true {
            let stopping = shared.withLock { shared -> Bool in
                if case .stopping = shared.state { return true }
                return false
            }
            let hasTasks = shared.withLock { !$0.tasks.isEmpty }
            if stopping && !hasTasks { break }
            let timeout = hasTasks || stopping ? 0 : timeoutMilliseconds()
            let count = CChorus_epoll_wait(epollFD, &events, &tokens, Int32(capacity), timeout)
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
            shared.withLock { shared in
                swap(&tasks, &shared.tasks)
                shared.wakePending = false
            }
            for task in tasks { task() }
            tasks.removeAll(keepingCapacity: true)
            fireTimers()
            for handler in iterationEndHandlers { handler.body() }
        }
        // A shutdown handler may remove others (a transport closing itself).
        while let handler = shutdownHandlers.first {
            shutdownHandlers.removeFirst()
            handler.body()
        }
        iterationEndHandlers.removeAll()
        registrations.removeAll()
        timers = TimerWheel(start: clock.now, resolution: timers.resolution)
        shared.withLock { $0.state = .stopped }
        closeDescriptorsOnce()
        loopThreadID.store(0, ordering: .releasing)
    }

    private func fireTimers() {
        guard !timers.isEmpty else { return }
        timers.expire(upTo: clock.now, into: &expired)
        guard !expired.isEmpty else { return }
        for body in expired { body() }
        expired.removeAll(keepingCapacity: true)
    }

    private func timeoutMilliseconds() -> Int32 {
        guard let next = timers.nextExpiry() else { return -1 }
        let current = clock.now
        guard next > current else { return 0 }
        let nanos = next.nanoseconds - current.nanoseconds
        return Int32(clamping: (nanos + 999_999) / 1_000_000)
    }

    private func closeDescriptorsOnce() {
        let alreadyClosed = finished.withLock { done -> Bool in
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
