import EventCore
@testable import Gossip
import Testing

/// The ring of peers taken for failed, which a node probes to heal a
/// partition, holds peers that were neighbours or candidates: not the
/// newcomers forward joins name.
@Suite("Gossip failed peers")
struct FailedPeerTests {
    @Test("forward-join requests that time out do not push the failed peers out of the ring")
    func newcomerTimeoutsNotRemembered() throws {
        let peer = { (last: Int) in try Endpoint(parsing: "10.0.0.\(last):7000") }
        var configuration = GossipConfiguration()
        configuration.activeViewSize = 3
        var effects: [GossipEffect] = []
        var node = try GossipInstance(id: NodeID(1), endpoint: try peer(1), configuration: configuration, seed: 7, now: .zero)
        let start = Instant.zero + .seconds(1)
        for last in 2...4 { node.receive(.join, from: try peer(last), now: start, into: &effects) }
        // The three neighbours fall silent: each is taken for failed.
        var now = start
        while now < start + configuration.peerTimeout + .seconds(1) {
            now = node.nextDeadline
            node.tick(now: now, into: &effects)
        }
        let failed = Set(try (2...4).map(peer))
        #expect(failed.isSubset(of: Set(node.failedPeers)))
        // Forward joins naming 40 dead addresses, one batch after another,
        // each batch's requests left to time out.
        for batch in 0..<4 {
            for index in 0..<10 {
                let newcomer = try Endpoint(parsing: "10.9.\(batch).\(index):7000")
                node.receive(.forwardJoin(newcomer: newcomer, timeToLive: 0), from: try peer(99), now: now, into: &effects)
            }
            let until = now + configuration.requestTimeout + .milliseconds(1)
            while now < until {
                now = node.nextDeadline
                node.tick(now: now, into: &effects)
            }
        }
        #expect(failed.isSubset(of: Set(node.failedPeers)), "failed peers: \(node.failedPeers)")
        #expect(node.failedPeers.allSatisfy { !$0.description.hasPrefix("10.9.") })
    }
}
