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
    }

    static func boundOperation(on loop: EventLoop) async throws -> LoopBound<Operation> {
        try await loop.submit { LoopBound(Operation(), on: loop) }
    }

    @Test("the outcome handed to the completion ends the wait")
    func outcome() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let bound = try await Self.boundOperation(on: loop)
        let waiter = Task {
            await bound.awaitCompletion(stopped: -1, cancelled: { -2 }) { operation, completion in
                operation.starts += 1
                completion(7)
            }
        }
        #expect(try await BoundedWait.value(of: waiter) == 7)
    }

    @Test("cancelling the task ends the wait; the operation's late outcome is dropped", .timeLimit(.minutes(1)))
    func cancelledWhileWaiting() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let bound = try await Self.boundOperation(on: loop)
        let (started, signal) = AsyncStream.makeStream(of: Void.self)
        let waiter = Task {
            await bound.awaitCompletion(stopped: -1, cancelled: { -2 }) { operation, completion in
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

    @Test("a task cancelled already gets the cancellation at once and starts nothing", .timeLimit(.minutes(1)))
    func cancelledBefore() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let bound = try await Self.boundOperation(on: loop)
        let waiter = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await bound.awaitCompletion(stopped: -1, cancelled: { -2 }) { operation, completion in
                operation.starts += 1
                completion(7)
            }
        }
        #expect(try await BoundedWait.value(of: waiter) == -2)
        // Work queued before this submit has run by the time it returns.
        #expect(try await loop.submit { bound.value.starts } == 0)
    }

    @Test("a stopped loop gives the stopped outcome")
    func stoppedLoop() async throws {
        let loop = try EventLoop()
        try loop.start()
        let bound = try await Self.boundOperation(on: loop)
        loop.shutdown()
        let waiter = Task { await bound.awaitCompletion(stopped: -1, cancelled: { -2 }) { _, completion in completion(7) } }
        #expect(try await BoundedWait.value(of: waiter) == -1)
    }
}
