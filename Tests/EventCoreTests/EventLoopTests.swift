#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
import EventCore
import TestSupport

/// Counts entries of a /proc/self directory (open descriptors, threads).
private func procEntries(_ path: String) -> Int {
    guard let dir = opendir(path) else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while readdir(dir) != nil { count += 1 }
    return count
}

@Suite("EventLoop")
struct EventLoopTests {
    @Test("execute runs closures on the loop thread, in submission order")
    func execute() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let order = Mutex<[Int]>([])
        for i in 0..<100 {
            loop.execute { order.withLock { $0.append(i) } }
        }
        let inLoop = try await loop.submit { loop.isInLoop }
        #expect(inLoop)
        #expect(!loop.isInLoop)
        #expect(order.withLock { $0 } == Array(0..<100))
    }

    @Test("execute from the loop's own thread runs the task after the current one, with no wake-up from outside")
    func executeFromLoop() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        // Each task queues the next from the loop thread, which skips the
        // eventfd: were the loop to block in epoll_wait regardless, this
        // chain would stall (nothing else wakes the loop).
        let order = Mutex<[Int]>([])
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, Error>) in
            @Sendable func step(_ left: Int) {
                order.withLock { $0.append(left) }
                guard left > 0 else { return done.resume() }
                loop.execute { step(left - 1) }
                order.withLock { $0.append(-left) }  // before the queued task runs
            }
            loop.execute { step(1_000) }
        }
        var expected: [Int] = []
        for left in stride(from: 1_000, to: 0, by: -1) { expected += [left, -left] }
        expected.append(0)
        #expect(order.withLock { $0 } == expected)
    }

    @Test("a task executed from the loop while it shuts down still runs before the loop stops")
    func executeFromLoopWhileStopping() async throws {
        let loop = try EventLoop()
        try loop.start()
        let ran = Mutex(false)
        let accepted = try await loop.submit {
            loop.shutdown()
            return loop.execute { ran.withLock { $0 = true } }
        }
        loop.shutdown()  // from this thread: returns once the loop has stopped
        #expect(accepted)
        #expect(ran.withLock { $0 })
    }

    @Test("timers fire in deadline order, no earlier than their deadline; cancelled ones never")
    func timers() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let log = Mutex<[(Int, Bool)]>([])
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, Error>) in
            loop.execute {
                let start = loop.now
                for (id, delay) in [(3, 30), (1, 10), (2, 20)] {
                    let deadline = start + .milliseconds(delay)
                    loop.schedule(at: deadline) {
                        log.withLock { $0.append((id, loop.now >= deadline)) }
                    }
                }
                let cancelled = loop.schedule(at: start + .milliseconds(15)) {
                    log.withLock { $0.append((99, false)) }
                }
                loop.cancel(cancelled)
                loop.schedule(at: start + .milliseconds(40)) { done.resume() }
            }
        }
        let fired = log.withLock { $0 }
        #expect(fired.map(\.0) == [1, 2, 3])
        #expect(fired.allSatisfy { $0.1 })
    }

    @Test("a loop that polls before sleeping still takes work from other threads and fires timers on time",
          arguments: [Duration.zero, .seconds(3_600)])
    func pollBeforeSleeping(window: Duration) async throws {
        let loop = try EventLoop(pollBeforeSleeping: window)
        try loop.start()
        defer { loop.shutdown() }
        // The wake-up below is I/O, so with a window the loop then polls: for
        // an hour unless the next timer's deadline or new work ends the poll.
        // The loop's blocking waits when the timer was set and when it
        // fired, once it fired (read on the loop).
        let waits = Mutex<(set: Int, fired: Int?)>((0, nil))
        try await loop.submit {
            waits.withLock { $0.set = loop.blockingWaits }
            _ = loop.schedule(at: loop.now + .seconds(1)) {
                waits.withLock { $0.fired = loop.blockingWaits }
            }
        }
        // Checked from this thread only: asking the loop would wake it.
        let clock = ContinuousClock()
        let giveUp = clock.now + .seconds(30)
        while waits.withLock({ $0.fired }) == nil && clock.now < giveUp {
            try await Task.sleep(for: .milliseconds(5))
        }
        let (set, fired) = waits.withLock { $0 }
        #expect(fired != nil, "the timer did not fire")
        if window > .zero {
            // The poll ends at the deadline, and the timer fires without a
            // sleep. Before the sleep's timeout was worked out again after
            // the poll, the loop then slept the whole second more.
            #expect(fired == set, "the loop slept \((fired ?? set) - set) times before the timer fired")
        } else {
            // No poll: the loop sleeps until the deadline.
            #expect((fired ?? set) > set)
        }
        #expect(try await loop.submit { loop.isInLoop })
    }

    @Test("a readable descriptor calls its handler; unregister stops it")
    func descriptors() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let reader = fds[0]
        let calls = Mutex(0)
        let readable = try await withCheckedThrowingContinuation { (done: CheckedContinuation<Bool, Error>) in
            loop.execute {
                do {
                    // The byte is left unread: registered (level-triggered),
                    // the handler would run again in every iteration.
                    try loop.register(reader, interest: .readable) { events in
                        let call = calls.withLock { count -> Int in
                            count += 1
                            return count
                        }
                        guard call == 1 else { return }
                        loop.unregister(reader)
                        done.resume(returning: events.contains(.readable))
                    }
                } catch {
                    done.resume(throwing: error)
                }
            }
            var byte: UInt8 = 42
            _ = write(fds[1], &byte, 1)
        }
        #expect(readable)
        // Iterations go by (timers and submitted work wake the loop); the
        // unregistered descriptor, still readable, calls nothing more.
        for _ in 0..<20 {
            try await Task.sleep(for: .milliseconds(2))
            try await loop.submit {}
        }
        #expect(calls.withLock { $0 } == 1)
        var byte: UInt8 = 0
        #expect(read(reader, &byte, 1) == 1 && byte == 42, "the byte was still there")
    }

    @Test("registering a bad descriptor throws a SystemError naming epoll_ctl")
    func badDescriptor() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let error = try await loop.submit { () -> SystemError? in
            do throws(SystemError) {
                try loop.register(-1, interest: .readable) { _ in }
                return nil
            } catch {
                return error
            }
        }
        #expect(error?.errno == EBADF)
        #expect(error?.description.contains("epoll_ctl") == true)
    }

    @Test("shutdown is idempotent, runs shutdown handlers, and rejects later work")
    func shutdown() async throws {
        let loop = try EventLoop()
        try loop.start()
        let ran = Mutex(0)
        _ = try await loop.submit {
            loop.addShutdownHandler { ran.withLock { $0 += 1 } }
        }
        loop.shutdown()
        loop.shutdown()
        #expect(ran.withLock { $0 } == 1)
        #expect(loop.execute {} == false)
        await #expect(throws: EventLoopError.shutDown) { try await loop.submit { 1 } }
        // Never-started loops shut down too.
        let idle = try EventLoop()
        idle.shutdown()
        idle.shutdown()
        #expect(idle.execute {} == false)
    }

    @Test("shutdown from inside the loop stops it")
    func shutdownFromLoop() async throws {
        let loop = try EventLoop()
        try loop.start()
        _ = try await loop.submit { loop.shutdown() }
        // The loop winds down on its own thread, with no other shutdown:
        // soon it refuses work.
        var attempts = 0
        while loop.execute({}) && attempts < 5_000 {
            attempts += 1
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(!loop.execute {})
        loop.shutdown()  // joins the thread
    }

    @Test("many loops started and shut down leak neither descriptors nor threads")
    func noLeaks() throws {
        let descriptorsBefore = procEntries("/proc/self/fd")
        let threadsBefore = procEntries("/proc/self/task")
        for _ in 0..<200 {
            let loop = try EventLoop()
            try loop.start()
            loop.shutdown()
        }
        for _ in 0..<50 {
            _ = try EventLoop()  // never started: deinit closes its descriptors
        }
        // Other tests run in parallel and hold descriptors and threads of
        // their own meanwhile (sockets, files, loops: 48 seen on a loaded
        // machine), so the bounds sit well above that noise and well below
        // the smallest leak, one descriptor per loop (250) or one thread
        // per started loop (200).
        #expect(procEntries("/proc/self/fd") - descriptorsBefore < 150)
        #expect(procEntries("/proc/self/task") - threadsBefore < 100)
    }
}

@Suite("LoopBound")
struct LoopBoundTests {
    /// A deliberately non-Sendable counter.
    final class Counter {
        var count = 0
    }

    @Test("a loop-bound value crosses tasks and is used on its loop")
    func roundTrip() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let bound = try await loop.submit { LoopBound(Counter(), on: loop) }
        for _ in 0..<10 {
            loop.execute { bound.value.count += 1 }
        }
        let count = try await loop.submit { bound.value.count }
        #expect(count == 10)
    }
}

@Suite("EventLoop handlers")
struct EventLoopHandlerTests {
    @Test("iteration-end handlers run each turn until removed; removed shutdown handlers never run")
    func removal() async throws {
        let loop = try EventLoop()
        try loop.start()
        let turns = Mutex(0)
        let shutdownRuns = Mutex(0)
        let hooks = try await loop.submit {
            let turn = loop.addIterationEndHandler { turns.withLock { $0 += 1 } }
            let removed = loop.addShutdownHandler { shutdownRuns.withLock { $0 += 100 } }
            loop.addShutdownHandler { shutdownRuns.withLock { $0 += 1 } }
            loop.removeHandler(removed)
            return turn
        }
        _ = try await loop.submit {}
        #expect(turns.withLock { $0 } >= 1)
        _ = try await loop.submit { loop.removeHandler(hooks) }
        let before = turns.withLock { $0 }
        for _ in 0..<5 { _ = try await loop.submit {} }
        #expect(turns.withLock { $0 } == before)
        loop.shutdown()
        #expect(shutdownRuns.withLock { $0 } == 1)
    }

    @Test("work deferred to the end of the turn runs after the turn's tasks, deferrals included, before the flush handlers")
    func endOfTurn() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let order = Mutex<[String]>([])
        try await loop.submit {
            loop.addIterationEndHandler { order.withLock { if !$0.contains("flush") { $0.append("flush") } } }
            loop.atEndOfTurn {
                order.withLock { $0.append("deferred") }
                loop.atEndOfTurn { order.withLock { $0.append("deferred by deferred work") } }
            }
            order.withLock { $0.append("task") }
        }
        _ = try await loop.submit {}
        #expect(order.withLock { $0 } == ["task", "deferred", "deferred by deferred work", "flush"])
    }

    @Test("work deferred to the next turn runs in the next iteration, before its tasks, without waiting for a timer tick")
    func nextTurn() async throws {
        // A 1-hour tick: work that waited for a timer tick would not run
        // during the test.
        let loop = try EventLoop(timerResolution: .seconds(3600))
        try loop.start()
        defer { loop.shutdown() }
        let order = Mutex<[String]>([])
        let iterations = Mutex(0)
        @Sendable func record(_ what: String) {
            order.withLock { $0.append("\(what), iteration \(iterations.withLock { $0 })") }
        }
        try await loop.submit {
            loop.addIterationEndHandler { iterations.withLock { $0 += 1 } }
            loop.onNextTurn {
                record("next turn")
                loop.onNextTurn { record("deferred again") }
            }
            loop.execute { record("task") }
            loop.atEndOfTurn { record("end of turn") }
        }
        _ = try await LoopPolling.eventually(on: loop, within: .seconds(10)) { order.withLock { $0.count } >= 4 }
        #expect(order.withLock { $0 } == [
            "end of turn, iteration 0", "next turn, iteration 1", "task, iteration 1", "deferred again, iteration 2",
        ])
    }
}
