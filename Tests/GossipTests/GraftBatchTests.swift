import EventCore
@testable import Gossip
import Testing

/// A GRAFT asks for no more messages than its receiver answers (it serves
/// one as a pull, up to maximumPullCount): the rest would never come.
@Suite("Gossip graft batches")
struct GraftBatchTests {
    @Test("grafts for 100 missing messages go in batches of at most maximumPullCount")
    func graftsWithinPullCount() throws {
        let peer = { (last: Int) in try Endpoint(parsing: "10.0.0.\(last):7000") }
        var configuration = GossipConfiguration(mode: .plumtree)
        configuration.maximumMessageSize = 1_400  // 115 IDs a message
        var effects: [GossipEffect] = []
        var node = try GossipInstance(id: NodeID(1), endpoint: try peer(1), configuration: configuration, seed: 7, now: .zero)
        let now = Instant.zero + .seconds(1)
        node.receive(.join, from: try peer(2), now: now, into: &effects)
        let ids = (0..<100).map { MessageID(origin: NodeID(9), sequence: UInt32($0)) }
        node.receive(.ihave(ids), from: try peer(2), now: now, into: &effects)
        #expect(configuration.maximumPullCount < 100)
        effects.removeAll()
        node.tick(now: now + configuration.graftTimeout, into: &effects)
        let grafts = effects.compactMap { effect -> [MessageID]? in
            if case .send(.graft(let ids), _) = effect { ids } else { nil }
        }
        #expect(grafts.flatMap { $0 }.count == 100)
        #expect(grafts.allSatisfy { $0.count <= configuration.maximumPullCount }, "graft sizes \(grafts.map(\.count))")
    }
}
