import Benchmark
import EventCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// Timers at scale: a node hosting many Raft groups and SWIM probes keeps
// hundreds of thousands of timers, most of them cancelled before they fire
// (election timeouts reset by heartbeats, probe timeouts answered by acks).
// EventCore's TimerWheel is compared with BinaryHeapTimerQueue, the
// textbook alternative, doing the same work on the same deadlines:
//
// Each operation re-arms a timer: cancels one scheduled a while ago and
// schedules its replacement (see `rearm`), with 100,000 timers pending.
//
// - Timer.scheduleCancel100k.EventLoop: EventLoop.cancel + schedule on the
//   loop thread: the path drivers use, where
//   the wheel is compiled inside EventCore for its `() -> Void` payload.
//   Peer: the heap with the same closure payloads.
// - Timer.scheduleCancel100k.TimerWheelDirect and Timer.expire100k.*:
//   TimerWheel<Int> driven directly. TimerWheel's operations are
//   @inlinable, so this module gets them specialized for Int: the figures
//   are the bare structure's cost, as any user outside EventCore pays it.

/// Timers pending while schedule + cancel is measured.
let pendingTimers = 100_000
/// Pending deadlines are spread uniformly over this span: 10 s, beyond one
/// 4.096 s wheel revolution, so timers wait for later rounds as real
/// suspicion and election timers do.
let pendingSpanNanos: UInt64 = 10_000_000_000
/// Expired timers are spread over this span: 1 s, 1,000 wheel ticks.
let expireSpanNanos: UInt64 = 1_000_000_000

/// Deadlines `start` plus a uniform draw below `span`, from a fixed seed,
/// so every run and every structure sees the same ones.
func spreadDeadlines(count: Int, after start: Instant, span: UInt64, seed: UInt64) -> [Instant] {
    var random = SeededRandomGenerator(seed: seed)
    return (0..<count).map { _ in
        Instant(nanoseconds: start.nanoseconds + 1 + UInt64.random(in: 0..<span, using: &random))
    }
}

/// Re-arms timers `count` times: cancels the timer in the next slot of the
/// `handles` ring (scheduled about a ring's length of operations ago, so
/// somewhere in the middle of the structure) and schedules its replacement,
/// as a driver resets an election or probe timeout. The number pending
/// stays the same. One `inout` access for the whole loop keeps exclusivity
/// checks out of the measurement.
@inline(never)
func rearm(_ wheel: inout TimerWheel<Int>, _ ring: inout HandleRing, count: Int) {
    for _ in 0..<count {
        let (slot, deadline) = ring.advance()
        wheel.cancel(ring.handles[slot])
        ring.handles[slot] = wheel.schedule(slot, at: deadline)
    }
}

/// The same on the heap.
@inline(never)
func rearm(_ heap: inout BinaryHeapTimerQueue<Int>, _ ring: inout HandleRing, count: Int) {
    for _ in 0..<count {
        let (slot, deadline) = ring.advance()
        heap.cancel(ring.handles[slot])
        ring.handles[slot] = heap.schedule(slot, at: deadline)
    }
}

/// The same on the heap with closure payloads, as an event loop keeps them.
@inline(never)
func rearm(_ heap: inout BinaryHeapTimerQueue<() -> Void>, _ ring: inout HandleRing, count: Int) {
    for _ in 0..<count {
        let (slot, deadline) = ring.advance()
        heap.cancel(ring.handles[slot])
        ring.handles[slot] = heap.schedule({}, at: deadline)
    }
}

/// The timers being re-armed: 4,096 of the pending ones, in a ring, and the
/// deadlines their replacements get.
struct HandleRing {
    var handles: [TimerHandle]
    let deadlines: [Instant]
    private var cursor = 0

    init(handles: [TimerHandle], deadlines: [Instant]) {
        precondition(handles.count.nonzeroBitCount == 1 && deadlines.count.nonzeroBitCount == 1)
        self.handles = handles
        self.deadlines = deadlines
    }

    /// The next ring slot and the deadline its new timer gets.
    mutating func advance() -> (slot: Int, deadline: Instant) {
        cursor &+= 1
        return (cursor & (handles.count - 1), deadlines[(cursor &* 7) & (deadlines.count - 1)])
    }
}

let ringSize = 4096

/// The structures driven directly, filled once; the closures mutate them.
final class TimerFixture {
    static let start = Instant(nanoseconds: 1_000_000_000)
    var wheel = TimerWheel<Int>(start: start)
    var heap = BinaryHeapTimerQueue<Int>()
    var closureHeap = BinaryHeapTimerQueue<() -> Void>()
    var wheelRing: HandleRing
    var heapRing: HandleRing
    var closureHeapRing: HandleRing
    /// Deadlines for the expire benchmarks.
    let expireDeadlines = spreadDeadlines(count: pendingTimers, after: start, span: expireSpanNanos, seed: 3)
    var expired: [Int] = []

    init() {
        let pending = spreadDeadlines(count: pendingTimers, after: Self.start, span: pendingSpanNanos, seed: 1)
        let churn = spreadDeadlines(count: 8192, after: Self.start, span: pendingSpanNanos, seed: 2)
        var wheelHandles: [TimerHandle] = []
        var heapHandles: [TimerHandle] = []
        var closureHeapHandles: [TimerHandle] = []
        for (i, deadline) in pending.enumerated() {
            let handles = (wheel.schedule(i, at: deadline), heap.schedule(i, at: deadline), closureHeap.schedule({}, at: deadline))
            // Re-arm every 24th timer, so the ring's timers are spread through the structure.
            if i % 24 == 0 && wheelHandles.count < ringSize {
                wheelHandles.append(handles.0)
                heapHandles.append(handles.1)
                closureHeapHandles.append(handles.2)
            }
        }
        wheelRing = HandleRing(handles: wheelHandles, deadlines: churn)
        heapRing = HandleRing(handles: heapHandles, deadlines: churn)
        closureHeapRing = HandleRing(handles: closureHeapHandles, deadlines: churn)
        expired.reserveCapacity(pendingTimers)
        // One lap of the ring first, so the measured loops run in the steady state.
        rearm(&wheel, &wheelRing, count: ringSize)
        rearm(&heap, &heapRing, count: ringSize)
        rearm(&closureHeap, &closureHeapRing, count: ringSize)
    }
}

/// A running EventLoop with 100,000 timers pending an hour ahead (so none
/// fires during the benchmark), driven from the benchmark thread.
final class LoopFixture: @unchecked Sendable {
    // Invariant for @unchecked Sendable: `ring` is used only on the loop
    // thread (in closures passed to onLoop); `loop` is Sendable.
    let loop: EventLoop
    private var ring: HandleRing

    init() throws {
        loop = try EventLoop()
        try loop.start()
        let base = loop.now + .seconds(3_600)
        ring = HandleRing(handles: [TimerHandle(rawValue: 0)], deadlines: [base])  // replaced on the loop below
        let pending = spreadDeadlines(count: pendingTimers, after: base, span: pendingSpanNanos, seed: 1)
        let churn = spreadDeadlines(count: 8192, after: base, span: pendingSpanNanos, seed: 2)
        onLoop { fixture in
            var handles: [TimerHandle] = []
            for (i, deadline) in pending.enumerated() {
                let handle = fixture.loop.schedule(at: deadline) {}
                if i % 24 == 0 && handles.count < ringSize { handles.append(handle) }
            }
            fixture.ring = HandleRing(handles: handles, deadlines: churn)
            fixture.rearm(count: ringSize)
            precondition(fixture.loop.pendingTimerCount == pendingTimers)
        }
    }

    /// Re-arms `count` timers through EventLoop.schedule/cancel. Loop-only.
    private func rearm(count: Int) {
        for _ in 0..<count {
            let (slot, deadline) = ring.advance()
            loop.cancel(ring.handles[slot])
            ring.handles[slot] = loop.schedule(at: deadline) {}
        }
    }

    /// Re-arms `count` timers on the loop thread and waits for it.
    func rearmOnLoop(count: Int) {
        onLoop { $0.rearm(count: count) }
    }

    /// Runs `body` on the loop thread and waits for it.
    private func onLoop(_ body: @escaping @Sendable (LoopFixture) -> Void) {
        let done = Done()
        loop.execute {
            body(self)
            done.flag.store(true, ordering: .releasing)
        }
        while !done.flag.load(ordering: .acquiring) { sched_yield() }
    }

    private final class Done: Sendable {
        let flag = Atomic<Bool>(false)
    }
}

func benchmarks() {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 2,
        maxDuration: .seconds(1),
        maxIterations: 1_000
    )
    let fixture = TimerFixture()

    // 1,000,000 re-arms (cancel + schedule) per iteration, so the hop onto
    // the loop thread is negligible; 100,000 timers pending.
    let million = Benchmark.Configuration(scalingFactor: .mega, maxDuration: .seconds(2), maxIterations: 20)
    var loopFixture: LoopFixture?
    Benchmark("Timer.scheduleCancel100k.EventLoop", configuration: million) { benchmark in
        do {
            if loopFixture == nil { loopFixture = try LoopFixture() }
        } catch {
            benchmark.error("cannot start an EventLoop: \(error)")
            return
        }
        loopFixture!.rearmOnLoop(count: benchmark.scaledIterations.count)
    }
    Benchmark("Timer.scheduleCancel100k.BinaryHeap", configuration: million) { benchmark in
        rearm(&fixture.closureHeap, &fixture.closureHeapRing, count: benchmark.scaledIterations.count)
    }

    // TimerWheel<Int> and the heap driven directly, 1,000 re-arms per iteration.
    let thousand = Benchmark.Configuration(scalingFactor: .kilo)
    Benchmark("Timer.scheduleCancel100k.TimerWheelDirect", configuration: thousand) { benchmark in
        rearm(&fixture.wheel, &fixture.wheelRing, count: benchmark.scaledIterations.count)
    }
    Benchmark("Timer.scheduleCancel100k.BinaryHeapDirect", configuration: thousand) { benchmark in
        rearm(&fixture.heap, &fixture.heapRing, count: benchmark.scaledIterations.count)
    }

    // Expiry: 100,000 timers spread over 1 s are scheduled (not measured),
    // then one expire call past the last deadline is measured; the cost per
    // timer is its wall clock / 100,000.
    let drain = Benchmark.Configuration(maxIterations: 100)
    let end = TimerFixture.start + .nanoseconds(Int64(expireSpanNanos) + 2)
    Benchmark("Timer.expire100k.TimerWheelDirect", configuration: drain) { benchmark in
        var wheel = TimerWheel<Int>(start: TimerFixture.start)
        for (i, deadline) in fixture.expireDeadlines.enumerated() { _ = wheel.schedule(i, at: deadline) }
        fixture.expired.removeAll(keepingCapacity: true)
        benchmark.startMeasurement()
        wheel.expire(upTo: end, into: &fixture.expired)
        benchmark.stopMeasurement()
        precondition(fixture.expired.count == pendingTimers)
    }
    Benchmark("Timer.expire100k.BinaryHeapDirect", configuration: drain) { benchmark in
        var heap = BinaryHeapTimerQueue<Int>()
        for (i, deadline) in fixture.expireDeadlines.enumerated() { _ = heap.schedule(i, at: deadline) }
        fixture.expired.removeAll(keepingCapacity: true)
        benchmark.startMeasurement()
        heap.expire(upTo: end, into: &fixture.expired)
        benchmark.stopMeasurement()
        precondition(fixture.expired.count == pendingTimers)
    }
}
