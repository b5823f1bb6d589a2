import EventCore
import Simulation
import Testing

@Suite("Timers")
struct TimerTests {
    @Test("timers fire in deadline order at their exact virtual times, ties in schedule order")
    func order() {
        let network = SimulatedNetwork(seed: 41)
        let a = network.addNode()
        let b = network.addNode()
        var fired: [(String, Instant)] = []
        for (name, node, milliseconds) in [
            ("a30", a, 30), ("b10", b, 10), ("a10", a, 10), ("b20", b, 20), ("a10'", a, 10),
        ] {
            node.schedule(at: .at(.milliseconds(Int64(milliseconds)))) { fired.append((name, node.now)) }
        }
        network.runUntilIdle()
        #expect(fired.map(\.0) == ["b10", "a10", "a10'", "b20", "a30"])
        #expect(fired.map(\.1) == [10, 10, 10, 20, 30].map { .at(.milliseconds($0)) })
        #expect(network.statistics.timersFired == 5)
        #expect(network.now == .at(.milliseconds(30)))
    }

    @Test("a deadline in the past fires on the next step, at the current time")
    func pastDeadline() {
        let network = SimulatedNetwork(seed: 42)
        let a = network.addNode()
        network.run(until: .at(.seconds(1)))
        var firedAt: Instant?
        a.schedule(at: .zero) { firedAt = a.now }
        #expect(network.step())
        #expect(firedAt == .at(.seconds(1)))
        #expect(!network.step())
    }

    @Test("cancel prevents firing; cancelling twice, late or from another node is harmless")
    func cancel() {
        let network = SimulatedNetwork(seed: 43)
        let a = network.addNode()
        let b = network.addNode()
        var fired: [String] = []
        let first = a.schedule(at: .at(.milliseconds(10))) { fired.append("first") }
        let second = a.schedule(at: .at(.milliseconds(20))) { fired.append("second") }
        a.schedule(at: .at(.milliseconds(30))) { fired.append("third") }
        b.cancel(second)  // not b's timer
        a.cancel(first)
        a.cancel(first)
        #expect(network.step())  // skips the cancelled one
        #expect(fired == ["second"])
        #expect(network.now == .at(.milliseconds(20)))
        a.cancel(second)  // already fired
        // The freed slot is reused; the stale handle must not cancel the new timer.
        a.schedule(at: .at(.milliseconds(40))) { fired.append("fourth") }
        a.cancel(first)
        #expect(network.runUntilIdle())
        #expect(fired == ["second", "third", "fourth"])
    }

    @Test("run(until:) stops at the deadline and moves the clock to it; step and runUntilIdle report idleness")
    func driving() {
        let network = SimulatedNetwork(seed: 44)
        let a = network.addNode()
        var ticks = 0
        func tick() {
            ticks += 1
            if ticks < 100 { a.schedule(at: a.now + .milliseconds(10), tick) }
        }
        a.schedule(at: .at(.milliseconds(10)), tick)
        network.run(until: .at(.milliseconds(55)))
        #expect(ticks == 5 && network.now == .at(.milliseconds(55)))
        network.run(for: .milliseconds(5))
        #expect(ticks == 6 && network.now == .at(.milliseconds(60)))
        #expect(!network.runUntilIdle(maxEvents: 10))
        #expect(ticks == 16 && !network.isIdle)
        #expect(network.runUntilIdle())
        #expect(ticks == 100 && network.isIdle && !network.step())
        #expect(network.now == .at(.seconds(1)))
    }

    @Test("scripted actions run at their time after events already due then, and are not node timers")
    func scriptedActions() {
        let network = SimulatedNetwork(seed: 45)
        let a = network.addNode()
        var order: [String] = []
        a.schedule(at: .at(.seconds(2))) { order.append("timer") }
        network.schedule(at: .at(.seconds(2))) { net in order.append("action at \(net.now)") }
        network.crash(a)
        network.restart(a)
        network.schedule(at: .at(.seconds(1))) { _ in order.append("early") }
        network.runUntilIdle()
        #expect(order == ["early", "action at 2.0s"])
        #expect(network.statistics.timersFired == 0)
    }
}
