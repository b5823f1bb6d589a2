import EventCore
import Simulation
import Testing

@Suite("Crash and restart")
struct CrashRestartTests {
    @Test("a crashed node drops arriving messages, loses its timers and cannot send")
    func crashDropsEverything() throws {
        let network = SimulatedNetwork(seed: 31)
        network.traceCapacity = 100
        let a = network.addNode()
        let b = network.addNode()
        let inbox = Inbox(b)
        var fired = 0
        b.schedule(at: .at(.milliseconds(10))) { fired += 1 }
        try a.send(number: 1, to: b)  // in flight when b crashes
        network.crash(b)
        #expect(b.isCrashed)
        try a.send(number: 2, to: b)
        #expect(throws: TransportError(.closed, detail: "node \(b.localEndpoint) is crashed")) {
            try b.send(number: 3, to: a)
        }
        b.schedule(at: .at(.milliseconds(5))) { fired += 1 }  // never fires
        network.runUntilIdle()
        #expect(inbox.messages.isEmpty)
        #expect(fired == 0)
        #expect(network.statistics.droppedByCrash == 2)
        #expect(network.statistics.timersFired == 0)
        #expect(network.trace.contains(TraceEvent(time: .zero, kind: .crash(node: b.localEndpoint))))
    }

    @Test("restart runs the hook, which re-creates the driver, and the node receives again")
    func restartRunsHook() throws {
        let network = SimulatedNetwork(seed: 32)
        let a = network.addNode()
        let b = network.addNode()
        let before = Inbox(b)
        let after = Inbox()
        var restarts: [Instant] = []
        b.onRestart = { node in
            restarts.append(node.now)
            after.attach(to: node)
        }
        try a.send(number: 1, to: b)
        network.schedule(at: .at(.milliseconds(10))) { $0.crash(b) }
        network.schedule(at: .at(.milliseconds(20))) { _ in try? a.send(number: 2, to: b) }
        network.schedule(at: .at(.milliseconds(30))) { $0.restart(b) }
        network.schedule(at: .at(.milliseconds(40))) { _ in try? a.send(number: 3, to: b) }
        network.runUntilIdle()
        #expect(restarts == [.at(.milliseconds(30))])
        #expect(before.firstBytes == [1])
        #expect(after.firstBytes == [3])
        #expect(after.messages.first?.sender == a.localEndpoint)
        #expect(network.node(at: b.localEndpoint) === b)
        #expect(!b.isCrashed)
    }

    /// A process that ends closes its sockets and leaves its groups; its
    /// restart must join again, as a driver re-created on restart does.
    @Test("a crash ends the node's multicast memberships; a restarted node receives the group once it joins again")
    func crashLeavesGroups() throws {
        let network = SimulatedNetwork(seed: 34)
        let group = try Endpoint(parsing: "239.192.0.77:7948")
        let a = network.addNode()
        let b = network.addNode()
        let inbox = Inbox(b)
        network.joinGroup(group, node: b)
        try a.send([1], to: group)
        network.runUntilIdle()
        network.crash(b)
        network.restart(b)
        inbox.attach(to: b)
        try a.send([2], to: group)
        network.runUntilIdle()
        network.joinGroup(group, node: b)
        try a.send([3], to: group)
        network.runUntilIdle()
        #expect(inbox.firstBytes == [1, 3])
    }

    /// A message a node sends itself never leaves its sockets: a crash
    /// ends it, where a message to another node is already on the wire.
    @Test("what a node sent itself before a crash is not delivered after its restart; what it sent others is")
    func selfSendsDieWithTheCrash() throws {
        let network = SimulatedNetwork(seed: 35)
        let group = try Endpoint(parsing: "239.192.0.78:7948")
        let a = network.addNode()
        let b = network.addNode()
        let own = Inbox()
        a.onRestart = { own.attach(to: $0) }
        own.attach(to: a)
        let other = Inbox(b)
        network.joinGroup(group, node: a)
        try a.send(number: 1, to: a)
        try a.send([2], to: group)
        try a.send(number: 3, to: b)
        network.crash(a)
        network.restart(a)
        try a.send(number: 4, to: a)
        network.runUntilIdle()
        #expect(own.firstBytes == [4])
        #expect(other.firstBytes == [3])
        #expect(network.statistics.droppedByCrash == 2)
    }

    @Test("crashing twice or restarting a running node does nothing")
    func idempotent() throws {
        let network = SimulatedNetwork(seed: 33)
        let a = network.addNode()
        var restarts = 0
        a.onRestart = { _ in restarts += 1 }
        network.restart(a)
        #expect(restarts == 0 && !a.isCrashed)
        network.crash(a)
        network.crash(a)
        network.restart(a)
        network.restart(a)
        #expect(restarts == 1 && !a.isCrashed)
    }
}
