@testable import CASPaxos
import EventCore
import Simulation
import Testing

/// A write whose answers were lost must not be applied again after its
/// value was read, deleted and collected: the collection erases the
/// acceptors' record of its accept, which is what a retry's prepare would
/// have found; the acceptors' removal floor in their promises stands for
/// it.
@Suite("Retries across garbage collection")
struct CollectedWriteRetryTests {
    static let key = Array("k".utf8)

    /// The steps below up to the collection, which succeeds while the
    /// write of [2] is still running (its answers lost); returns the
    /// cluster, its network still cut from proposer 0, and that write's
    /// place in the history.
    static func writeCollectedWhileAnswersLost(dropped: Bool) throws -> (cluster: SimulatedCASCluster, write: Int) {
        let cluster = try SimulatedCASCluster(seed: 7)
        let writer = cluster.proposerNodes[0]
        #expect(cluster.outcome(of: .write([1]), key: key, client: 0, proposer: 0, within: .milliseconds(50)) == .ok([1]))
        for acceptor in cluster.acceptorNodes { cluster.network.block(from: acceptor, to: writer) }
        let write = cluster.history.operations.count
        cluster.perform(.write([2]), key: key, client: 0, proposer: 0)
        cluster.network.run(for: .milliseconds(20))
        #expect(cluster.outcome(of: .read, key: key, client: 1, proposer: 1, within: .milliseconds(50)) == .ok([2]))
        if dropped { cluster.proposers[1].proposerEndpoints = [cluster.proposerNodes[1].localEndpoint] }
        var collected: Result<Void, CASPaxosError>?
        cluster.delete(key, client: 1, proposer: 1) { collected = $0 }
        cluster.network.run(for: .milliseconds(200))
        #expect(collected.map { if case .success = $0 { true } else { false } } == true, "\(String(describing: collected))")
        #expect(cluster.history.operations[write].outcome == .unknown, "the write is still running")
        return (cluster, write)
    }

    /// Proposer 0 writes [2] on its cached ballot; every acceptor takes it
    /// but their answers to proposer 0 are lost. Proposer 1 reads [2],
    /// deletes the key and collects it: proposer 0 answers the
    /// invalidation or, `dropped`, was dropped from proposer 1's list (cut
    /// off, it looked gone), so the collection neither invalidates nor
    /// ages it. Then proposer 0 hears the acceptors again: its retry's
    /// prepare finds the key empty, as if never written, but below the
    /// acceptors' removal floor. Applying the write afresh would bring [2]
    /// back after the delete (a later read returning [2], the checker's
    /// violation); it must end indeterminate instead.
    @Test(
        "a write read, deleted and collected while its answers were lost ends indeterminate",
        arguments: [false, true])
    func writeRetriedAfterCollection(dropped: Bool) throws {
        let (cluster, write) = try Self.writeCollectedWhileAnswersLost(dropped: dropped)
        cluster.network.heal()
        cluster.network.run(for: .seconds(3))
        #expect(cluster.history.operations[write].outcome == .unknown)
        #expect(cluster.outcome(of: .read, key: Self.key, client: 1, proposer: 1, within: .milliseconds(100)) == .ok(nil))
        #expect(cluster.check() == .linearizable)
    }

    /// As above, but once the key is collected proposer 1 writes [3]
    /// before proposer 0 hears the acceptors again. That write's prepare
    /// found the key empty below the acceptors' removal floors, so its
    /// value names no parent (a parent of "never written" would let
    /// proposer 0's retry, which finds [3] above its accept, conclude that
    /// its write is in no value's history and apply it afresh: [2] again,
    /// after the delete and after [3]).
    @Test("a write collected while its answers were lost, then a fresh write over the empty key: the retry ends indeterminate")
    func writeRetriedAfterCollectionAndRewrite() throws {
        let (cluster, write) = try Self.writeCollectedWhileAnswersLost(dropped: true)
        #expect(cluster.outcome(of: .write([3]), key: Self.key, client: 1, proposer: 1, within: .milliseconds(50)) == .ok([3]))
        #expect(cluster.history.operations[write].outcome == .unknown, "the write is still running")
        cluster.network.heal()
        cluster.network.run(for: .seconds(3))
        #expect(cluster.outcome(of: .read, key: Self.key, client: 1, proposer: 1, within: .milliseconds(100)) == .ok([3]))
        #expect(cluster.check() == .linearizable)
    }
}
