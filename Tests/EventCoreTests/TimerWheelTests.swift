import Testing
@testable import EventCore

@Suite("TimerWheel")
struct TimerWheelTests {
    private func ms(_ value: UInt64) -> Instant { Instant(nanoseconds: value * 1_000_000) }

    @Test("a timer never fires early and fires by the tick after its deadline")
    func firesOnTime() {
        var wheel = TimerWheel<Int>(start: .zero)
        _ = wheel.schedule(1, at: Instant(nanoseconds: 2_500_000))  // 2.5 ms
        var fired: [Int] = []
        wheel.expire(upTo: ms(2), into: &fired)
        #expect(fired.isEmpty)
        wheel.expire(upTo: Instant(nanoseconds: 2_999_999), into: &fired)
        #expect(fired.isEmpty)
        wheel.expire(upTo: ms(3), into: &fired)
        #expect(fired == [1])
        #expect(wheel.isEmpty)
    }

    @Test("timers fire in deadline order, schedule order within a tick")
    func ordering() {
        var wheel = TimerWheel<Int>(start: .zero)
        _ = wheel.schedule(30, at: ms(30))
        _ = wheel.schedule(10, at: ms(10))
        _ = wheel.schedule(11, at: ms(10))
        _ = wheel.schedule(20, at: ms(20))
        _ = wheel.schedule(12, at: ms(10))
        var fired: [Int] = []
        wheel.expire(upTo: ms(100), into: &fired)
        #expect(fired == [10, 11, 12, 20, 30])
    }

    @Test("a deadline in the past fires on the next expiry")
    func pastDeadline() {
        var wheel = TimerWheel<Int>(start: ms(50))
        _ = wheel.schedule(1, at: ms(10))
        #expect(wheel.nextExpiry() == ms(51))
        var fired: [Int] = []
        wheel.expire(upTo: ms(51), into: &fired)
        #expect(fired == [1])
    }

    @Test("cancel removes a timer; a stale handle is ignored")
    func cancel() {
        var wheel = TimerWheel<Int>(start: .zero)
        let a = wheel.schedule(1, at: ms(5))
        let b = wheel.schedule(2, at: ms(5))
        #expect(wheel.cancel(a) == 1)
        #expect(wheel.cancel(a) == nil)
        var fired: [Int] = []
        wheel.expire(upTo: ms(5), into: &fired)
        #expect(fired == [2])
        #expect(wheel.cancel(b) == nil)
        // The slot is reused with a new generation: the old handle stays dead.
        let c = wheel.schedule(3, at: ms(9))
        #expect(wheel.cancel(a) == nil)
        #expect(wheel.cancel(c) == 3)
        #expect(wheel.cancel(TimerHandle(rawValue: 12345)) == nil)
    }

    @Test("deadlines several revolutions ahead wait for their round")
    func laterRounds() {
        var wheel = TimerWheel<Int>(start: .zero, slotCount: 64)
        _ = wheel.schedule(1, at: ms(10))
        _ = wheel.schedule(2, at: ms(10 + 64))
        _ = wheel.schedule(3, at: ms(10 + 128))
        var fired: [Int] = []
        wheel.expire(upTo: ms(20), into: &fired)
        #expect(fired == [1])
        wheel.expire(upTo: ms(80), into: &fired)
        #expect(fired == [1, 2])
        wheel.expire(upTo: ms(200), into: &fired)
        #expect(fired == [1, 2, 3])
    }

    @Test("a jump of many revolutions fires everything due in deadline order")
    func bigJump() {
        var wheel = TimerWheel<Int>(start: .zero, slotCount: 64)
        // Deadlines chosen so slot order differs from deadline order.
        _ = wheel.schedule(4200, at: ms(4200))
        _ = wheel.schedule(200, at: ms(200))
        _ = wheel.schedule(104, at: ms(104))
        _ = wheel.schedule(9000, at: ms(9000))
        var fired: [Int] = []
        wheel.expire(upTo: ms(5000), into: &fired)
        #expect(fired == [104, 200, 4200])
        #expect(wheel.count == 1)
        #expect(wheel.nextExpiry() != nil)
    }

    @Test("nextExpiry reports the earliest occupied tick")
    func nextExpiry() {
        var wheel = TimerWheel<Int>(start: .zero)
        #expect(wheel.nextExpiry() == nil)
        _ = wheel.schedule(1, at: ms(700))
        let early = wheel.schedule(2, at: ms(3))
        #expect(wheel.nextExpiry() == ms(3))
        wheel.cancel(early)
        #expect(wheel.nextExpiry() == ms(700))
    }

    @Test("100,000 pending timers, random schedule and cancel, match a reference model")
    func manyTimers() {
        let seed: UInt64 = 0xC0FFEE
        var random = SeededRandomGenerator(seed: seed)
        var wheel = TimerWheel<Int>(start: .zero)
        var handles: [Int: TimerHandle] = [:]
        var deadlines: [Int: UInt64] = [:]
        for id in 0..<100_000 {
            let deadline = UInt64.random(in: 1...20_000, using: &random)
            handles[id] = wheel.schedule(id, at: ms(deadline))
            deadlines[id] = deadline
        }
        for id in stride(from: 0, to: 100_000, by: 3) {
            #expect(wheel.cancel(handles[id]!) == id, "seed \(seed)")
            deadlines[id] = nil
        }
        #expect(wheel.count == deadlines.count)
        var fired: [Int] = []
        var now: UInt64 = 0
        while now < 20_000 {
            now += UInt64.random(in: 1...300, using: &random)
            let before = fired.count
            wheel.expire(upTo: ms(now), into: &fired)
            // Never early, never left behind: exactly the timers due by now have fired.
            #expect(fired[before...].allSatisfy { deadlines[$0]! <= now }, "seed \(seed)")
            #expect(wheel.count == deadlines.values.count(where: { $0 > now }), "seed \(seed)")
        }
        #expect(fired.count == deadlines.count, "seed \(seed)")
        #expect(Set(fired) == Set(deadlines.keys), "seed \(seed)")
        let firedDeadlines = fired.map { deadlines[$0]! }
        #expect(firedDeadlines == firedDeadlines.sorted(), "seed \(seed)")
        #expect(wheel.isEmpty)
    }

    @Test("extreme instants and resolutions saturate instead of overflowing")
    func extremes() {
        // 1 ns ticks: the wheel's tick reaches UInt64.max at distantFuture.
        var fine = TimerWheel<Int>(start: .zero, resolution: .nanoseconds(1))
        var fired: [Int] = []
        fine.expire(upTo: .distantFuture, into: &fired)
        _ = fine.schedule(1, at: .distantFuture)
        #expect(fine.nextExpiry() == .distantFuture)
        fine.expire(upTo: .distantFuture, into: &fired)
        #expect(fired.isEmpty)

        // Ticks so wide that tick × resolution overflows UInt64.
        var coarse = TimerWheel<Int>(start: .zero, resolution: .seconds(Int64.max))
        _ = coarse.schedule(2, at: .distantFuture)
        #expect(coarse.nextExpiry() == .distantFuture)
        coarse.expire(upTo: .distantFuture, into: &fired)
        #expect(fired.isEmpty)
    }

    @Test("a deadline exactly on a tick fires at that tick, one nanosecond past it fires a tick later")
    func exactTick() {
        var wheel = TimerWheel<Int>(start: .zero)
        _ = wheel.schedule(1, at: ms(4))
        _ = wheel.schedule(2, at: Instant(nanoseconds: 4_000_001))
        #expect(wheel.nextExpiry() == ms(4))
        var fired: [Int] = []
        wheel.expire(upTo: Instant(nanoseconds: 3_999_999), into: &fired)
        #expect(fired.isEmpty)
        wheel.expire(upTo: ms(4), into: &fired)
        #expect(fired == [1])
        #expect(wheel.nextExpiry() == ms(5))
        wheel.expire(upTo: Instant(nanoseconds: 4_999_999), into: &fired)
        #expect(fired == [1])
        wheel.expire(upTo: ms(5), into: &fired)
        #expect(fired == [1, 2])
    }

    @Test("expiring with handles gives each timer's handle, so a cancel between runs can be honoured")
    func expireWithHandles() {
        var wheel = TimerWheel<Int>(start: .zero)
        let a = wheel.schedule(1, at: ms(3))
        let b = wheel.schedule(2, at: ms(3))
        var fired: [(handle: TimerHandle, payload: Int)] = []
        wheel.expire(upTo: ms(3), into: &fired)
        #expect(fired.map(\.handle) == [a, b])
        #expect(fired.map(\.payload) == [1, 2])
        // Expired timers are gone: their handles are stale.
        #expect(wheel.cancel(b) == nil)
    }
}
