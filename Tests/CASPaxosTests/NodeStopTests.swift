import CASPaxos
import EventCore
import Simulation
import Testing

/// ``CASPaxosNode/stop()`` fails what is pending, and says honestly whether
/// a proposal's change may have been written: definite before its accepts
/// went out, indeterminate after.
@Suite("CASPaxos node stop")
struct NodeStopTests {
    /// Proposes a write on a one-proposer cluster, steps the network while
    /// `stepping` holds, cuts the acceptors' answers off, stops the
    /// proposer, and returns how the write ended.
    static func stoppedWrite(
        seed: UInt64, stepping: (CASPaxosNode) -> Bool
    ) throws -> Result<[UInt8]?, CASPaxosError>? {
        let cluster = try SimulatedCASCluster(seed: seed, proposerCount: 1)
        let proposer = cluster.proposers[0]
        var result: Result<[UInt8]?, CASPaxosError>?
        proposer.propose(key: Array("k".utf8), change: { _ in [9] }) { result = $0 }
        while stepping(proposer), cluster.network.step() {}
        for acceptor in cluster.acceptorNodes {
            cluster.network.block(from: acceptor, to: cluster.proposerNodes[0])
        }
        #expect(result == nil, "the write ended before the stop")
        proposer.stop()
        return result
    }

    /// Before, a proposal whose accepts were out failed with the definite
    /// `.notAvailable`: a client would take a write that may have been
    /// made for one that was not.
    @Test("a proposal stopped after its accepts went out fails as indeterminate")
    func afterAccepts() throws {
        // Three prepares, then three accepts.
        let result = try Self.stoppedWrite(seed: 91) { $0.counters.proposer.requestsSent < 6 }
        guard case .failure(let error)? = result else {
            Issue.record("not a failure: \(String(describing: result))")
            return
        }
        #expect(error.code == .conflict)
        #expect(error.isIndeterminate)
    }

    /// A completion that stopped the node ran before the rest of its
    /// turn's completions: the stop failed those with `.notAvailable`
    /// ("nothing was written"), though their writes were chosen.
    @Test("a completion that stops the node leaves the other outcomes of its turn as they were reached")
    func stopFromCompletion() throws {
        let cluster = try SimulatedCASCluster(seed: 93, proposerCount: 1)
        let proposer = cluster.proposers[0]
        var results: [Int: Result<[UInt8]?, CASPaxosError>] = [:]
        // Two keys written together: their acceptances come back in the
        // same frames, and complete in one turn.
        for number in 0..<2 {
            proposer.propose(key: Array("k\(number)".utf8), change: { _ in [9] }) { result in
                results[number] = result
                if results.count == 1 { proposer.stop() }
            }
        }
        cluster.network.run(for: .seconds(1))
        #expect(results.count == 2)
        for (number, result) in results {
            guard case .success(let value) = result else {
                Issue.record("write \(number): \(result)")
                continue
            }
            #expect(value == [9])
        }
    }

    /// A task reported "not available" (definite: nothing happened),
    /// though a membership change may have taken the register, fenced
    /// acceptors or moved proposers by then.
    @Test("a membership change stopped while it runs fails as indeterminate")
    func stoppedTask() throws {
        let cluster = try SimulatedCASCluster(seed: 94, proposerCount: 2)
        let original = cluster.acceptorNodes.map(\.localEndpoint)
        let added = cluster.addAcceptor().localEndpoint
        var result: Result<Void, CASPaxosError>?
        cluster.proposers[0].changeMembership(to: original + [added]) { result = $0 }
        cluster.network.run(for: .milliseconds(5))
        #expect(result == nil, "the change ended before the stop")
        cluster.proposers[0].stop()
        guard case .failure(let error)? = result else {
            Issue.record("not a failure: \(String(describing: result))")
            return
        }
        #expect(error.isIndeterminate, "\(error)")
    }

    @Test("a proposal stopped before any accept went out fails as definite")
    func beforeAccepts() throws {
        let result = try Self.stoppedWrite(seed: 92) { _ in false }
        guard case .failure(let error)? = result else {
            Issue.record("not a failure: \(String(describing: result))")
            return
        }
        #expect(error.code == .notAvailable)
        #expect(!error.isIndeterminate)
    }
}
