@testable import CASPaxos
import EventCore
import Simulation
import Testing

/// Why a ``FileAcceptorStore`` opened as a restart (``FileAcceptorStore/Opening/existing``)
/// refuses a missing log instead of starting afresh: an acceptor that lost
/// its state and answers again has forgotten the values it accepted, so a
/// quorum it forms with an acceptor that never had them reads a chosen
/// value as absent. (``FileAcceptorStoreTests`` shows the refusal.)
@Suite("Lost acceptor logs")
struct LostLogTests {
    @Test("an acceptor restarted on an empty store lets a read miss an acknowledged write")
    func emptyRestartBreaksLinearizability() throws {
        let cluster = try SimulatedCASCluster(seed: 5)
        // Key 2 is written on acceptors 0 and 1 only, and acknowledged.
        let key = cluster.writeOnMinimalQuorums(client: 0)[2]
        #expect(cluster.acceptors[1]?.acceptor?.register(key)?.value == [2])
        // Acceptor 1 comes back with nothing, as on a new log.
        cluster.restartAcceptor(1, from: AcceptorSnapshot())
        // A read through acceptors 1 and 2 finds no value.
        cluster.network.block(from: cluster.proposerNodes[1], to: cluster.acceptorNodes[0])
        #expect(cluster.outcome(of: .read, key: key, client: 1, proposer: 1, within: .milliseconds(50)) == .ok(nil))
        guard case .violation = cluster.check() else {
            Issue.record("the checker did not find the lost write: \(cluster.check())")
            return
        }
    }

    /// The way back that ``AcceptorStoreError/Code/missingLog`` names: the
    /// acceptor stays down, the cluster goes on without it (a fourth
    /// acceptor joins, it is removed), and it comes back on a new log
    /// through a membership change, whose re-scan gives it every key.
    @Test("an acceptor that lost its log, removed and added back on a new log, reads the acknowledged write")
    func removedAndAddedBack() throws {
        let cluster = try SimulatedCASCluster(seed: 5)
        let key = cluster.writeOnMinimalQuorums(client: 0)[2]
        // Acceptor 1 loses its log; it does not start again.
        cluster.network.crash(cluster.acceptorNodes[1])
        var results: [Result<Void, CASPaxosError>] = []
        func change(to acceptors: [SimulatedNode]) {
            cluster.proposers[0].changeMembership(to: acceptors.map(\.localEndpoint)) { results.append($0) }
            cluster.network.run(for: .milliseconds(300))
        }
        let (a, b, c) = (cluster.acceptorNodes[0], cluster.acceptorNodes[1], cluster.acceptorNodes[2])
        let d = cluster.addAcceptor()
        change(to: [a, b, c, d])
        change(to: [a, c, d])
        // Back on a new log, then added again.
        cluster.restartAcceptor(1, from: AcceptorSnapshot())
        change(to: [a, c, d, b])
        #expect(results.count == 3 && results.allSatisfy { if case .success = $0 { true } else { false } }, "\(results)")
        #expect(cluster.acceptors[1]?.acceptor?.register(key)?.value == [2], "the re-scan gave it the key")
        // A read whose quorum leaves out acceptor 0, which held the write
        // from the start.
        cluster.network.block(from: cluster.proposerNodes[1], to: a)
        #expect(cluster.outcome(of: .read, key: key, client: 1, proposer: 1, within: .milliseconds(100)) == .ok([2]))
        #expect(cluster.check() == .linearizable)
    }
}
