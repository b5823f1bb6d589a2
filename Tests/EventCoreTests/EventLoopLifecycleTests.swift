#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
import EventCore

@Suite("EventLoop lifecycle and timer edges")
struct EventLoopLifecycleTests {
    @Test("a timer cancelled by another timer due in the same tick does not fire")
    func cancelDuringExpire() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let log = Mutex<[Int]>([])
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, Error>) in
            loop.execute {
                let deadline = loop.now + .milliseconds(5)
                let second = Mutex<TimerHandle?>(nil)
                loop.schedule(at: deadline) {
                    log.withLock { $0.append(1) }
                    if let handle = second.withLock({ $0 }) { loop.cancel(handle) }
                }
                second.withLock { $0 = loop.schedule(at: deadline) { log.withLock { $0.append(2) } } }
                loop.schedule(at: deadline + .milliseconds(5)) { done.resume() }
            }
        }
        #expect(log.withLock { $0 } == [1])
    }

    /// Before, the loop ended only when it found no task queued, so this
    /// shutdown never returned.
    @Test("a task that queues itself again does not hold up shutdown: work accepted runs, later work is refused")
    func selfRequeueingTaskAtShutdown() async throws {
        let loop = try EventLoop()
        try loop.start()
        let runs = Atomic<Int>(0)
        let refused = Atomic<Bool>(false)
        @Sendable func again() {
            runs.add(1, ordering: .relaxed)
            if !loop.execute({ again() }) { refused.store(true, ordering: .relaxed) }
        }
        #expect(loop.execute { again() })
        while runs.load(ordering: .relaxed) < 100 { try await Task.sleep(for: .milliseconds(1)) }
        // Shut down from another thread; it must return.
        let returned = Atomic<Bool>(false)
        Thread.detachNewThread {
            loop.shutdown()
            returned.store(true, ordering: .relaxed)
        }
        let limit = ContinuousClock.now + .seconds(20)
        while !returned.load(ordering: .relaxed), ContinuousClock.now < limit { try await Task.sleep(for: .milliseconds(5)) }
        let (didReturn, wasRefused) = (returned.load(ordering: .relaxed), refused.load(ordering: .relaxed))
        #expect(didReturn)
        #expect(wasRefused)
        await #expect(throws: EventLoopError.shutDown) { try await loop.submit {} }
    }

    @Test("shutting down a loop that never started still runs the work submitted to it")
    func idleShutdownRunsSubmittedWork() async throws {
        let idle = try EventLoop()
        let ran = Mutex(false)
        #expect(idle.execute { ran.withLock { $0 = true } })
        idle.shutdown()
        #expect(ran.withLock { $0 })
        #expect(!idle.execute {})
    }

    @Test("every shutdown from another thread returns only once the loop has stopped")
    func concurrentShutdownsWait() async throws {
        let loop = try EventLoop()
        try loop.start()
        let other = try EventLoop()
        try other.start()
        defer { other.shutdown() }
        let handlerRan = Mutex(false)
        _ = try await loop.submit {
            loop.addShutdownHandler { handlerRan.withLock { $0 = true } }
        }
        // Keep the loop busy while two threads ask it to stop.
        loop.execute { usleep(100_000) }
        let otherSawStopped = Mutex<Bool?>(nil)
        other.execute {
            loop.shutdown()
            otherSawStopped.withLock { $0 = handlerRan.withLock { $0 } }
        }
        loop.shutdown()
        #expect(handlerRan.withLock { $0 })
        _ = try await other.submit {}  // after the other thread's shutdown returned
        #expect(otherSawStopped.withLock { $0 } == true)
    }

    @Test("shutdown handlers run once each, in the order added, without those removed before or by an earlier handler; one added by a handler runs too")
    func shutdownHandlerOrder() async throws {
        let loop = try EventLoop()
        try loop.start()
        let ran = Mutex<[Int]>([])
        _ = try await loop.submit {
            var hooks: [LoopHook] = []
            for index in 0..<10_000 {
                hooks.append(
                    loop.addShutdownHandler {
                        ran.withLock { $0.append(index) }
                        // Handler 9,000 removes handler 9,001, and adds one.
                        if index == 9_000 {
                            loop.removeHandler(hooks[9_001])
                            loop.addShutdownHandler { ran.withLock { $0.append(-1) } }
                        }
                    })
            }
            for index in stride(from: 1, to: 10_000, by: 3) where index != 9_001 { loop.removeHandler(hooks[index]) }
            // An iteration-end hook's removal goes through the same call.
            loop.removeHandler(loop.addIterationEndHandler {})
        }
        loop.shutdown()
        let expected = (0..<10_000).filter { $0 % 3 != 1 && $0 != 9_001 } + [-1]
        #expect(ran.withLock { $0 } == expected)
    }

    @Test("a repeated shutdown never writes to the loop's closed (and reusable) descriptors")
    func noWriteAfterClose() throws {
        let loop = try EventLoop()
        try loop.start()
        loop.shutdown()
        // The loop's descriptor numbers are free now: new pipes likely reuse them.
        var pipes: [(read: Int32, write: Int32)] = []
        for _ in 0..<8 {
            var fds: [Int32] = [0, 0]
            #expect(pipe(&fds) == 0)
            _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
            pipes.append((fds[0], fds[1]))
        }
        defer {
            for pipe in pipes {
                close(pipe.read)
                close(pipe.write)
            }
        }
        loop.shutdown()
        #expect(!loop.execute {})
        for pipe in pipes {
            var byte: UInt8 = 0
            #expect(read(pipe.read, &byte, 1) == -1, "a stopped loop wrote into descriptor \(pipe.write)")
        }
    }
}
