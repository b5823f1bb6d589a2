import EventCore
import Simulation
import Testing

@Suite("Partitions")
struct PartitionTests {
    @Test("a one-way block drops one direction only")
    func oneWay() throws {
        let network = SimulatedNetwork(seed: 21)
        let a = network.addNode()
        let b = network.addNode()
        let atA = Inbox(a)
        let atB = Inbox(b)
        network.block(from: a, to: b)
        #expect(network.isBlocked(from: a, to: b) && !network.isBlocked(from: b, to: a))
        try a.send(number: 1, to: b)
        try b.send(number: 2, to: a)
        network.runUntilIdle()
        #expect(atB.messages.isEmpty)
        #expect(atA.firstBytes == [2])
        #expect(network.statistics.droppedByPartition == 1)
        network.unblock(from: a, to: b)
        try a.send(number: 3, to: b)
        network.runUntilIdle()
        #expect(atB.firstBytes == [3])
    }

    @Test("a symmetric partition cuts both directions between the groups only")
    func symmetric() throws {
        let network = SimulatedNetwork(seed: 22)
        let nodes = (0..<4).map { _ in network.addNode() }
        let inboxes = nodes.map(Inbox.init)
        network.partition([nodes[0], nodes[1]], [nodes[2], nodes[3]])
        for (i, source) in nodes.enumerated() {
            for destination in nodes where destination !== source {
                try source.send(number: UInt8(i), to: destination)
            }
        }
        network.runUntilIdle()
        #expect(inboxes[0].firstBytes == [1])
        #expect(inboxes[1].firstBytes == [0])
        #expect(inboxes[2].firstBytes == [3])
        #expect(inboxes[3].firstBytes == [2])
        #expect(network.statistics.droppedByPartition == 8)
    }

    @Test("a partition set and healed at scheduled times, with in-flight copies dropped")
    func scheduledHeal() throws {
        let network = SimulatedNetwork(seed: 23)
        try network.setDefaultConditions(LinkConditions(delay: .constant(.milliseconds(100))))
        let a = network.addNode()
        let b = network.addNode()
        let inbox = Inbox(b)
        // One message every 250 ms, from 0 s to 4.75 s.
        for i in 0..<20 {
            network.schedule(at: .at(.milliseconds(250 * Int64(i)))) { _ in try? a.send(number: UInt8(i), to: b) }
        }
        // Cut at 2.05 s (while message 8, sent at 2.0 s, is in flight), heal at 3.55 s
        // (message 14, sent at 3.5 s while cut, was dropped at the send).
        network.schedule(at: .at(.milliseconds(2_050))) { $0.partition([a], [b]) }
        network.schedule(at: .at(.milliseconds(3_550))) { $0.heal() }
        network.run(until: .at(.seconds(3)))
        #expect(inbox.firstBytes == Array(0...7))
        network.run(for: .seconds(2))
        #expect(network.now == .at(.seconds(5)))
        #expect(inbox.firstBytes == Array(0...7) + Array(15...19))
        #expect(network.statistics.droppedByPartition == 7)
    }
}
