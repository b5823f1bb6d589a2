import EventCore
@testable import Gossip
import Testing

/// A message anti-entropy repaired spreads on lazily in Plumtree mode: its
/// neighbours most likely hold it, and a payload pushed to them would be a
/// duplicate that each answers with a PRUNE.
@Suite("Gossip repairs in Plumtree")
struct PlumtreeRepairTests {
    @Test("a repaired message is announced to the other neighbours, not pushed; the tree keeps its eager edges")
    func repairSpreadsLazily() throws {
        var effects: [GossipEffect] = []
        var configuration = GossipConfiguration(mode: .plumtree)
        configuration.activeViewSize = 3
        let peer = FailedPeerTests.peer
        var node = try GossipInstance(
            id: NodeID(1), endpoint: try peer(1), configuration: configuration, seed: 7, now: .zero)
        let start = FailedPeerTests.start
        for last in 2...4 { node.receive(.join, from: try peer(last), now: start, into: &effects) }
        let eager = node.eagerPeers
        #expect(eager.count == 3)
        effects.removeAll()
        let id = MessageID(origin: NodeID(9), sequence: 1)
        node.receive(.repair(GossipData(id: id, hops: 2, payload: [1, 2, 3])), from: try peer(2), now: start, into: &effects)
        node.tick(now: start + configuration.lazyPushInterval, into: &effects)
        var pushed: [Endpoint] = []
        var announced: [Endpoint] = []
        for case .send(let message, let destination) in effects {
            switch message {
            case .data: pushed.append(destination)
            case .ihave(let ids) where ids.contains(id): announced.append(destination)
            default: break
            }
        }
        #expect(pushed.isEmpty)
        #expect(Set(announced) == [try peer(3), try peer(4)])
        #expect(node.eagerPeers == eager)
        #expect(node.counters.deliveredByRepair == 1)
    }
}
