import Dispatch
import EventCore
import TestSupport
import Testing

/// `LoopBound.awaitCompletion`: the wait behind the protocol modules'
/// `async` APIs, ended by the operation's outcome, the task's
/// cancellation, or a stopped loop.
@Suite("LoopBound.awaitCompletion")
struct LoopBoundCompletionTests {
    /// An operation that keeps its completion and never calls it (a
    /// proposal waiting on a partitioned cluster), so that a test can call
    /// it late.
    final class Operation {
        var completion: (@Sendable (Int) -> Void)?
        var starts = 0
        /// The handles `withdraw` was called with.
        var withdrawn: [Int] = []
    }

    static func boundOperation(on loop: EventLoop) async throws -> LoopBound<Operation> {
        try await loop.submit { LoopBound(Operation(), on: loop) }
    }

    /// Holds `loop`'s thread in a task until the semaphore returned is
    /// signalled; returns once the loop is held.
    static func hold(_ loop: EventLoop) -> DispatchSemaphore {
        let held = DispatchSemaphore(value: 0)
        let resume = DispatchSemaphore(value: 0)
        loop.execute {
            held.signal()
            resume.wait()
        }
        held.wait()
        return resume
    }

    @Test("the outcome handed to the completion ends the wait")
    func outcome() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let bound = try await Self.boundOperation(on: loop)
        let waiter = Task {
            await bound.awaitCompletion(stopped: -1, cancelled: { $0 ? -2 : -4 }) { operation, completion in
                operation.starts += 1
                completion(7)
            }
        }
        #expect(try await BoundedWait.value(of: waiter) == 7)
    }

    @Test("cancelling the task ends the wait; the operation's late outcome is dropped", .timeLimit(.minutes(2)))
    func cancelledWhileWaiting() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let bound = try await Self.boundOperation(on: loop)
        let (started, signal) = AsyncStream.makeStream(of: Void.self)
        let waiter = Task {
            await bound.awaitCompletion(stopped: -1, cancelled: { $0 ? -2 : -4 }) { operation, completion in
                operation.starts += 1
                operation.completion = completion
                signal.yield()
            }
        }
        for await _ in started { break }
        waiter.cancel()
        #expect(try await BoundedWait.value(of: waiter) == -2)
        // The outcome, once it comes, resumes nothing a second time (a
        // checked continuation would trap).
        let starts = try await loop.submit { () -> Int in
            bound.value.completion?(7)
            bound.value.completion?(8)
            return bound.value.starts
        }
        #expect(starts == 1)
    }

    @Test("a task cancelled already gets the cancellation before a start at once, and starts nothing", .timeLimit(.minutes(2)))
    func cancelledBefore() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let bound = try await Self.boundOperation(on: loop)
        let waiter = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await bound.awaitCompletion(stopped: -1, cancelled: { $0 ? -2 : -4 }) { operation, completion in
                operation.starts += 1
                completion(7)
            }
        }
        #expect(try await BoundedWait.value(of: waiter) == -4)
        // Work queued before this submit has run by the time it returns.
        #expect(try await loop.submit { bound.value.starts } == 0)
    }

    /// The plain form has nothing to withdraw: the cancellation handler
    /// ends the wait itself, as it did before the withdrawing form, not
    /// through a task on a loop that may be busy (an `fsync`, a long turn).
    @Test("cancelled after the start, the plain form's wait ends at once, even while the loop is held", .timeLimit(.minutes(2)))
    func cancelledWhileTheLoopIsHeld() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let bound = try await Self.boundOperation(on: loop)
        let (started, signal) = AsyncStream.makeStream(of: Void.self)
        let waiter = Task {
            await bound.awaitCompletion(stopped: -1, cancelled: { $0 ? -2 : -4 }) { operation, completion in
                operation.completion = completion
                signal.yield()
            }
        }
        for await _ in started { break }
        // `start` has returned once this turn's work is done.
        try await loop.submit {}
        let resume = Self.hold(loop)
        defer { resume.signal() }
        waiter.cancel()
        #expect(try await BoundedWait.value(of: waiter, within: .seconds(2)) == -2)
    }

    @Test("a stopped loop gives the stopped outcome")
    func stoppedLoop() async throws {
        let loop = try EventLoop()
        try loop.start()
        let bound = try await Self.boundOperation(on: loop)
        loop.shutdown()
        let waiter = Task { await bound.awaitCompletion(stopped: -1, cancelled: { $0 ? -2 : -4 }) { _, completion in completion(7) } }
        #expect(try await BoundedWait.value(of: waiter) == -1)
    }

    // MARK: Withdrawing

    /// Waits, withdrawing on cancellation: `start` keeps its completion and
    /// returns handle 5; `withdraw` records its handle and, if
    /// `withdraws`, ends the operation with -3.
    static func withdrawableWait(
        on bound: LoopBound<Operation>, withdraws: Bool, whileStarting: (@Sendable () -> Void)? = nil
    ) -> Task<Int, Never> {
        Task {
            await bound.awaitCompletion(
                stopped: -1, cancelled: { started in started ? -2 : -4 },
                withdraw: { operation, handle in
                    operation.withdrawn.append(handle)
                    if withdraws { operation.completion?(-3) }
                }
            ) { operation, completion in
                operation.starts += 1
                operation.completion = completion
                whileStarting?()
                return 5
            }
        }
    }

    /// Waits in the plain form: `start` keeps its completion; a
    /// cancellation gives -2 after a start, -4 before.
    static func plainWait(
        on bound: LoopBound<Operation>, whileStarting: (@Sendable () -> Void)? = nil
    ) -> Task<Int, Never> {
        Task {
            await bound.awaitCompletion(stopped: -1, cancelled: { $0 ? -2 : -4 }) { operation, completion in
                operation.starts += 1
                operation.completion = completion
                whileStarting?()
            }
        }
    }

    static func startedAndWithdrawn(_ bound: LoopBound<Operation>) async throws -> (starts: Int, withdrawn: [Int]) {
        try await bound.loop.submit { (bound.value.starts, bound.value.withdrawn) }
    }

    /// Withdrawn, the operation's completion gives the outcome (-3); not,
    /// the wait ends as cancelled after a start (-2), and the late outcome
    /// resumes nothing a second time.
    @Test("cancelled after the start, the operation is withdrawn, or the wait ends as cancelled after a start", .timeLimit(.minutes(2)), arguments: [true, false])
    func cancelledAfterTheStart(withdraws: Bool) async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let bound = try await Self.boundOperation(on: loop)
        let (started, signal) = AsyncStream.makeStream(of: Void.self)
        let waiter = Self.withdrawableWait(on: bound, withdraws: withdraws, whileStarting: { signal.yield() })
        for await _ in started { break }
        // `start` has returned: the cancellation finds the operation running.
        try await loop.submit {}
        waiter.cancel()
        #expect(try await BoundedWait.value(of: waiter) == (withdraws ? -3 : -2))
        try await loop.submit { bound.value.completion?(7) }
        let (starts, withdrawn) = try await Self.startedAndWithdrawn(bound)
        #expect(starts == 1)
        #expect(withdrawn == [5])
    }

    /// Withdrawing, the operation is withdrawn as `start` returns. The
    /// plain form's `cancelled(false)` promises nothing was started, so it
    /// must end the wait as cancelled after a start.
    @Test("cancelled while the loop runs start: withdrawn as start returns, or, in the plain form, cancelled after a start",
          .timeLimit(.minutes(2)), arguments: [true, false])
    func cancelledWhileStarting(withdrawing: Bool) async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let bound = try await Self.boundOperation(on: loop)
        let (started, signal) = AsyncStream.makeStream(of: Void.self)
        let resume = DispatchSemaphore(value: 0)
        // `start` holds the loop until the task has been cancelled (the
        // cancellation handler runs within `cancel()`).
        let holding: @Sendable () -> Void = {
            signal.yield()
            resume.wait()
        }
        let waiter = withdrawing
            ? Self.withdrawableWait(on: bound, withdraws: true, whileStarting: holding)
            : Self.plainWait(on: bound, whileStarting: holding)
        for await _ in started { break }
        waiter.cancel()
        resume.signal()
        #expect(try await BoundedWait.value(of: waiter) == (withdrawing ? -3 : -2))
        let (starts, withdrawn) = try await Self.startedAndWithdrawn(bound)
        #expect(starts == 1)
        #expect(withdrawn == (withdrawing ? [5] : []))
    }

    @Test("cancelled before the loop runs start, nothing is started, and the wait ends as cancelled before a start",
          .timeLimit(.minutes(2)), arguments: [true, false])
    func cancelledBeforeTheStart(withdrawing: Bool) async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let bound = try await Self.boundOperation(on: loop)
        // The loop is held, so `start` waits in its queue.
        let resume = Self.hold(loop)
        let waiter = withdrawing ? Self.withdrawableWait(on: bound, withdraws: true) : Self.plainWait(on: bound)
        // Time for the wait to arm and queue `start` (cancelled before
        // that, it ends the same way, through the already-cancelled path).
        try await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        #expect(try await BoundedWait.value(of: waiter) == -4)
        resume.signal()
        let (starts, withdrawn) = try await Self.startedAndWithdrawn(bound)
        #expect(starts == 0)
        #expect(withdrawn.isEmpty)
    }
}
