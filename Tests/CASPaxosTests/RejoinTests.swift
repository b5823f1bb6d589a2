@testable import CASPaxos
import EventCore
import Simulation
import Testing

/// An acceptor removed from the cluster and added back later keeps what
/// it held; keys deleted and collected meanwhile must not come back.
@Suite("Acceptors that rejoin")
struct RejoinTests {
    /// With `members` acceptors (3 or 4), X joins and takes a write of
    /// [1], X leaves with it, the key is deleted and collected on the
    /// others, then X joins again. X is the only acceptor with the key: a
    /// join whose re-scan did not list X would leave it, and a read whose
    /// prepare quorum is X and a bare majority of the others would find
    /// [1] above the removed key's nothing. 3 → 4 is the paper's
    /// intermediate step; 4 → 5 goes through one too, for this reason.
    @Test("a key collected while an acceptor was out does not come back when it rejoins", arguments: [3, 4])
    func collectedKeyStaysDeleted(members: Int) throws {
        let key = Array("k".utf8)
        let cluster = try SimulatedCASCluster(seed: 11)
        var results: [Result<Void, CASPaxosError>] = []
        func change(to acceptors: [Endpoint]) {
            cluster.proposers[0].changeMembership(to: acceptors) { results.append($0) }
            cluster.network.run(for: .milliseconds(300))
        }
        if members == 4 { change(to: cluster.acceptorNodes.map(\.localEndpoint) + [cluster.addAcceptor().localEndpoint]) }
        let others = cluster.acceptorNodes.map(\.localEndpoint)
        let x = cluster.addAcceptor()
        change(to: others + [x.localEndpoint])
        #expect(cluster.outcome(of: .write([1]), key: key, client: 0, proposer: 0, within: .milliseconds(50)) == .ok([1]))
        change(to: others)
        #expect(cluster.acceptors[members]?.acceptor?.register(key)?.value == [1])
        var collected: Result<Void, CASPaxosError>?
        cluster.delete(key, client: 1, proposer: 1) { collected = $0 }
        cluster.network.run(for: .milliseconds(300))
        #expect(collected.map { if case .success = $0 { true } else { false } } == true, "\(String(describing: collected))")
        for index in 0..<members { #expect(cluster.acceptors[index]?.acceptor?.register(key) == nil) }
        change(to: others + [x.localEndpoint])
        #expect(results.count == members)
        #expect(results.allSatisfy { if case .success = $0 { true } else { false } }, "\(results)")
        // The read hears X and a bare majority of the others only.
        let majority = (members + 1) / 2 + 1
        for node in cluster.acceptorNodes[(majority - 1)..<members] {
            cluster.network.block(from: cluster.proposerNodes[1], to: node)
        }
        #expect(cluster.outcome(of: .read, key: key, client: 2, proposer: 1, within: .milliseconds(100)) == .ok(nil))
        #expect(cluster.check() == .linearizable)
    }
}
