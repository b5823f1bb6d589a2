import EventCore
import Raft
import Simulation
import Testing

/// A node stopped by one of its own completions does nothing more: it
/// applies, snapshots and stores nothing after the stop.
@Suite("RaftNode stopped from a completion")
struct RaftNodeStopTests {
    @Test("a proposal's completion that stops the node: no snapshot or compaction after it")
    func stopFromCompletion() throws {
        let network = SimulatedNetwork(seed: 1)
        let node = network.addNode()
        let storage = InMemoryRaftStorage()
        var configuration = RaftConfiguration()
        configuration.snapshotInterval = 1
        let raft = try RaftNode(
            id: NodeID(1), group: 1, peers: [:], storage: storage, stateMachine: KeyValueStateMachine(),
            transport: node, scheduler: node, configuration: configuration, seed: 1)
        network.run(for: .seconds(2))
        #expect(raft.role == .leader)
        let before = storage.snapshot?.index ?? 0
        var outcome: Result<[UInt8], RaftError>?
        raft.propose(KeyValueCommand.put(key: "k", value: [2]).encoded) { result in
            outcome = result
            raft.stop()
        }
        network.run(for: .seconds(1))
        #expect(outcome != nil)
        #expect((storage.snapshot?.index ?? 0) == before, "a snapshot was saved after the stop")
    }

    @Test("a read's completion that stops the node: the reads served with it still complete, once each, as stopped")
    func stopFromReadCompletion() throws {
        let network = SimulatedNetwork(seed: 1)
        let node = network.addNode()
        let raft = try RaftNode(
            id: NodeID(1), group: 1, peers: [:], storage: InMemoryRaftStorage(), stateMachine: KeyValueStateMachine(),
            transport: node, scheduler: node, seed: 1)
        network.run(for: .seconds(2))
        #expect(raft.role == .leader)
        var outcomes: [Result<Void, RaftError>] = []
        raft.read { result in
            outcomes.append(result)
            raft.stop()
        }
        raft.read { outcomes.append($0) }
        raft.read { outcomes.append($0) }
        network.run(for: .seconds(1))
        #expect(outcomes.count == 3)
        #expect((try? outcomes.first?.get()) != nil, "the first was served")
        for outcome in outcomes.dropFirst() {
            guard case .failure(.stopped) = outcome else {
                Issue.record("\(outcome)")
                continue
            }
        }
    }
}
