import Testing
import EventCore

@Suite("Instant, clocks and randomness")
struct TimeTests {
    @Test("Instant arithmetic with Duration saturates instead of trapping")
    func instantArithmetic() {
        let t = Instant(nanoseconds: 1_000)
        #expect(t + .nanoseconds(500) == Instant(nanoseconds: 1_500))
        #expect(t - .nanoseconds(400) == Instant(nanoseconds: 600))
        #expect(t - .seconds(1) == .zero)
        #expect(Instant.distantFuture + .seconds(1) == .distantFuture)
        #expect(Instant(nanoseconds: 3_000) - t == .nanoseconds(2_000))
        #expect(t - Instant(nanoseconds: 3_000) == .nanoseconds(-2_000))
        #expect(Duration.seconds(2).nanoseconds == 2_000_000_000)
        #expect(Duration.seconds(Int64.max).nanoseconds == Int64.max)
    }

    @Test("the system clock is monotonic")
    func systemClock() {
        let clock = SystemClock()
        var previous = clock.now
        for _ in 0..<1_000 {
            let next = clock.now
            #expect(next >= previous)
            previous = next
        }
    }

    @Test("the manual clock moves only forward and only when told")
    func manualClock() {
        let clock = ManualClock(start: Instant(nanoseconds: 10))
        #expect(clock.now == Instant(nanoseconds: 10))
        clock.advance(by: .nanoseconds(5))
        #expect(clock.now == Instant(nanoseconds: 15))
        clock.advance(by: .nanoseconds(-5))
        clock.advance(to: Instant(nanoseconds: 1))
        #expect(clock.now == Instant(nanoseconds: 15))
        clock.advance(to: Instant(nanoseconds: 99))
        #expect(clock.now == Instant(nanoseconds: 99))
    }

    @Test("the seeded generator replays its sequence and differs by seed")
    func seededRandom() {
        var a = SeededRandomGenerator(seed: 42)
        var b = SeededRandomGenerator(seed: 42)
        var c = SeededRandomGenerator(seed: 43)
        let first = (0..<100).map { _ in a.next() }
        #expect(first == (0..<100).map { _ in b.next() })
        #expect(first != (0..<100).map { _ in c.next() })
        #expect(a.seed == 42)
        // Roughly uniform: each of 16 buckets gets a fair share of 16,000 draws.
        var buckets = [Int](repeating: 0, count: 16)
        for _ in 0..<16_000 { buckets[Int.random(in: 0..<16, using: &a)] += 1 }
        #expect(buckets.allSatisfy { (800...1_200).contains($0) })
    }

    @Test("node IDs print as 16 hex digits and order numerically")
    func nodeID() {
        #expect(NodeID(255).description == "00000000000000ff")
        #expect(NodeID(1) < NodeID(2))
        var random = SeededRandomGenerator(seed: 7)
        var again = SeededRandomGenerator(seed: 7)
        #expect(NodeID.random(using: &random) == NodeID.random(using: &again))
    }
}
