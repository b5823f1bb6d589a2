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
}
