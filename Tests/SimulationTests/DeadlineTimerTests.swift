import EventCore
import Simulation
import Testing

/// EventCore's DeadlineTimer on the simulator's virtual clock.
@Suite("DeadlineTimer")
struct DeadlineTimerTests {
    @Test("fires once at the last armed deadline; re-arming for the same instant keeps one timer; cancel and distantFuture disarm")
    func armAndCancel() {
        let network = SimulatedNetwork(seed: 1)
        let node = network.addNode()
        let timer = DeadlineTimer(scheduler: node)
        var fired: [Instant] = []
        timer.onFire = { fired.append(network.now) }
        timer.arm(at: .zero + .milliseconds(10))
        timer.arm(at: .zero + .milliseconds(10))
        timer.arm(at: .zero + .milliseconds(20))
        network.run(for: .milliseconds(50))
        #expect(fired == [.zero + .milliseconds(20)])
        timer.arm(at: network.now + .milliseconds(5))
        timer.cancel()
        network.run(for: .milliseconds(50))
        #expect(fired.count == 1)
        // After firing, the same deadline can be armed again.
        timer.arm(at: network.now + .milliseconds(5))
        network.run(for: .milliseconds(10))
        #expect(fired.count == 2)
        // "Never" disarms: nothing is left scheduled.
        timer.arm(at: network.now + .milliseconds(5))
        timer.arm(at: .distantFuture)
        #expect(network.runUntilIdle())
        #expect(fired.count == 2)
    }
}
