import EventCore
import Raft
import Simulation
import Testing
import TestSupport
import WireCodec

/// The driver against hostile datagrams in the simulator: garbage, frames
/// of other protocols and well-formed frames for another group are dropped
/// and counted, and the group keeps committing.
@Suite("RaftNode hostile input")
struct RaftNodeInputTests {
    @Test("garbage, foreign frames and other groups' messages are dropped and counted; the group goes on")
    func hostileDatagrams() throws {
        let cluster = try RaftCluster(count: 3, seed: 31)
        let attacker = cluster.network.addNode()
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        let leader = try #require(cluster.leader)
        let victim = cluster.simulatedNodes[leader].localEndpoint
        var random = SeededRandomGenerator(seed: 31)
        for _ in 0..<200 {
            let garbage = (0..<Int.random(in: 0..<200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            try attacker.send(garbage, to: victim)
        }
        var writer = WireWriter()
        try Frame.encode(protocol: .swim, into: &writer) { $0.writeUInt8(0) }
        try attacker.send(writer.bytes, to: victim)
        writer.removeAll()
        let term = try #require(cluster.rafts[leader]?.term)
        let otherGroup = RaftMessage(group: 2, from: NodeID(2), to: NodeID(UInt64(leader + 1)), term: term + 10,
                                     body: .heartbeat(commitIndex: 0, readRound: 0))
        try otherGroup.encodeFrame(into: &writer)
        try attacker.send(writer.bytes, to: victim)
        cluster.run(for: .milliseconds(100))
        let counters = try #require(cluster.rafts[leader]?.counters)
        #expect(counters.malformedFramesDropped == 201)
        #expect(counters.messagesDropped == 1)
        #expect(cluster.rafts[leader]?.role == .leader)
        #expect(cluster.rafts[leader]?.term == term)
        for _ in 0..<10 { cluster.propose(at: leader) }
        #expect(cluster.run(until: { cluster.acknowledged.count == 10 && cluster.converged }, limit: .seconds(2)))
        #expect(cluster.violations.isEmpty)
    }

    /// A term no replica reaches can only be in storage if an older build
    /// adopted a forged one; such a replica is cut off from its group,
    /// and says so when it starts instead of going silent.
    @Test("a replica that starts from a stored term above the last reachable one logs that it is cut off",
          arguments: [RaftReplica.maximumReachableTerm, RaftReplica.maximumReachableTerm + 1])
    func unreachableStoredTerm(term: UInt64) throws {
        let network = SimulatedNetwork(seed: 32)
        let (node, peer) = (network.addNode(), network.addNode())
        let storage = InMemoryRaftStorage()
        try storage.persist([], hardState: RaftHardState(term: term))
        let errors = RecordedLogLines(level: .error)
        let raft = try RaftNode(
            id: NodeID(1), group: 7, peers: [NodeID(2): peer.localEndpoint], storage: storage,
            stateMachine: KeyValueStateMachine(), transport: node, scheduler: node, logger: errors)
        #expect(raft.term == term)
        if term > RaftReplica.maximumReachableTerm {
            #expect(errors.all.count == 1)
            #expect(errors.all.first?.contains("stored term \(term)") == true)
            #expect(errors.all.first?.contains("cut off from group 7") == true)
        } else {
            #expect(errors.all.isEmpty)
        }
    }
}
