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

    /// X joins (3 → 4); proposer 0 writes [1], taken by A, B and C while
    /// its messages to X are held up 3 s; X leaves (its re-write does not
    /// reach X), [1] is deleted and collected on A, B and C, and X joins
    /// again, before the held-up prepare and accept land. X must refuse
    /// them: it took its new peers' removal floor before it was listed.
    /// With a floor of zero it took [1] at the old ballot, and a read that
    /// heard X, A and B returned it (found by a review).
    @Test("an accept held up past a removal, a collection and a rejoin is refused by the rejoined acceptor")
    func heldUpAcceptAfterRejoin() throws {
        let key = Array("k".utf8)
        let cluster = try SimulatedCASCluster(seed: 11)
        let others = cluster.acceptorNodes.map(\.localEndpoint)
        var results: [Result<Void, CASPaxosError>] = []
        func change(to acceptors: [Endpoint]) {
            cluster.proposers[1].changeMembership(to: acceptors) { results.append($0) }
            cluster.network.run(for: .milliseconds(300))
        }
        let x = cluster.addAcceptor()
        change(to: others + [x.localEndpoint])
        let writer = cluster.proposerNodes[0]
        try cluster.network.setConditions(LinkConditions(delay: .constant(.seconds(3))), from: writer, to: x)
        #expect(cluster.outcome(of: .write([1]), key: key, client: 0, proposer: 0, within: .milliseconds(50)) == .ok([1]))
        cluster.network.removeConditions(from: writer, to: x)
        cluster.network.block(from: cluster.proposerNodes[1], to: x)
        change(to: others)
        cluster.network.unblock(from: cluster.proposerNodes[1], to: x)
        #expect(cluster.acceptors[3]?.acceptor?.register(key) == nil)
        var collected: Result<Void, CASPaxosError>?
        cluster.delete(key, client: 1, proposer: 1) { collected = $0 }
        cluster.network.run(for: .milliseconds(300))
        #expect(collected.map { if case .success = $0 { true } else { false } } == true, "\(String(describing: collected))")
        change(to: others + [x.localEndpoint])
        #expect(results.count == 3 && results.allSatisfy { if case .success = $0 { true } else { false } }, "\(results)")
        cluster.network.run(for: .seconds(3))
        #expect(cluster.acceptors[3]?.acceptor?.register(key)?.value == nil)
        cluster.network.block(from: cluster.proposerNodes[1], to: cluster.acceptorNodes[2])
        #expect(cluster.outcome(of: .read, key: key, client: 2, proposer: 1, within: .milliseconds(100)) == .ok(nil))
        #expect(cluster.check() == .linearizable)
    }

    /// One acceptor, A: proposer 0's write of [2] is taken by A, its
    /// answers lost; [2] is read, deleted and collected (A's floor rises),
    /// then B and C join (1 → 2 → 3) while proposer 0 is cut off from
    /// them. Its retry then hears B and C only: they must name A's floor,
    /// which they took when they joined, so the retry ends indeterminate
    /// instead of writing [2] again after the delete (found by a review).
    @Test("a retry that hears only acceptors added after a collection still meets the removal floor")
    func retryHearingOnlyLaterAcceptors() throws {
        let key = Array("k".utf8)
        let cluster = try SimulatedCASCluster(seed: 7, acceptorCount: 1)
        let writer = cluster.proposerNodes[0]
        let a = cluster.acceptorNodes[0]
        #expect(cluster.outcome(of: .write([1]), key: key, client: 0, proposer: 0, within: .milliseconds(50)) == .ok([1]))
        cluster.network.block(from: a, to: writer)
        let write = cluster.history.operations.count
        cluster.perform(.write([2]), key: key, client: 0, proposer: 0)
        cluster.network.run(for: .milliseconds(5))
        // The accept reached A; proposer 0 stays cut off from the
        // acceptors, not from proposer 1 (it answers the invalidation and
        // the reconfigurations).
        cluster.network.block(from: writer, to: a)
        #expect(cluster.outcome(of: .read, key: key, client: 1, proposer: 1, within: .milliseconds(50)) == .ok([2]))
        var collected: Result<Void, CASPaxosError>?
        cluster.delete(key, client: 1, proposer: 1) { collected = $0 }
        cluster.network.run(for: .milliseconds(300))
        #expect(collected.map { if case .success = $0 { true } else { false } } == true, "\(String(describing: collected))")
        var results: [Result<Void, CASPaxosError>] = []
        for _ in 0..<2 {
            let node = cluster.addAcceptor()
            cluster.network.block(from: writer, to: node)
            cluster.network.block(from: node, to: writer)
            cluster.proposers[1].changeMembership(to: cluster.acceptorNodes.map(\.localEndpoint)) { results.append($0) }
            cluster.network.run(for: .milliseconds(300))
        }
        #expect(results.count == 2 && results.allSatisfy { if case .success = $0 { true } else { false } }, "\(results)")
        for node in cluster.acceptorNodes[1...] {
            cluster.network.unblock(from: writer, to: node)
            cluster.network.unblock(from: node, to: writer)
        }
        cluster.network.run(for: .seconds(2))
        #expect(cluster.history.operations[write].outcome == .unknown)
        #expect(cluster.outcome(of: .read, key: key, client: 2, proposer: 1, within: .milliseconds(100)) == .ok(nil))
        #expect(cluster.check() == .linearizable)
    }
}
