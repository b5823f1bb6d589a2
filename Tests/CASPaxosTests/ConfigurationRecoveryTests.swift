@testable import CASPaxos
import EventCore
import Simulation
import Testing
import WireCodec

/// A node with both roles that restarts after membership changes must not
/// fall back to the configuration it was first given: its quorums would
/// not meet the others'. Its proposer's configuration is in its acceptor
/// store (``AcceptorWrite/proposerConfiguration(_:)``), written before it
/// acknowledges each one. A proposer-only node given a configuration store
/// keeps it there.
@Suite("Proposer configuration across restarts")
struct ConfigurationRecoveryTests {
    /// Where the proposers' configurations are kept.
    enum Keeper: CaseIterable, CustomStringConvertible {
        /// Proposers on A and B, in their acceptor stores (in memory).
        case acceptorStore
        /// The same, in files.
        case acceptorStoreFile
        /// Proposer-only nodes, each with a configuration store (a file).
        case configurationStore
        /// Proposer-only nodes without one: the restarted node is back on
        /// its first configuration, and the acceptors' fence refuses it.
        case nowhere

        var description: String {
            switch self {
            case .acceptorStore: "acceptor store"
            case .acceptorStoreFile: "acceptor store file"
            case .configurationStore: "configuration store"
            case .nowhere: "nowhere (fenced off)"
            }
        }
    }

    /// A, B and C, and proposers P and Q (on A and B, or apart); the
    /// cluster adds D and removes C, then Q's node crashes and restarts
    /// with the configuration it was first given ({A, B, C}, version 1).
    /// P writes [1] through A and D only (its messages to B held up), and
    /// Q reads without A: on {A, B, C} its quorum would be B and C, which
    /// never took [1], and it would read nothing after the write returned.
    ///
    /// Kept nowhere, Q restarts on {A, B, C} and would read nothing; the
    /// changes' fences (at their re-scans' listings and at their ends)
    /// make enough of the acceptors it can reach refuse it that its
    /// proposals, and a change it starts, fail at once with
    /// `.staleConfiguration` (definite) until the change is re-sent to it,
    /// after which it reads [1].
    @Test("a restarted node keeps the configuration its proposer adopted, or is fenced off", arguments: Keeper.allCases)
    func restartAfterChanges(keeper: Keeper) throws {
        let key = Array("k".utf8)
        let cluster = try SimulatedCASCluster(
            seed: 5, colocated: keeper == .acceptorStore || keeper == .acceptorStoreFile,
            fileStorage: keeper == .acceptorStoreFile, proposerConfigurationStores: keeper == .configurationStore)
        let (a, b, c) = (cluster.acceptorNodes[0], cluster.acceptorNodes[1], cluster.acceptorNodes[2])
        let (p, q) = (cluster.proposerNodes[0], cluster.proposerNodes[1])
        let d = cluster.addAcceptor()
        var results: [Result<Void, CASPaxosError>] = []
        for target in [[a, b, c, d], [a, b, d]] {
            cluster.proposers[0].changeMembership(to: target.map(\.localEndpoint)) { results.append($0) }
            cluster.network.run(for: .milliseconds(300))
        }
        #expect(results.count == 2)
        #expect(results.allSatisfy { if case .success = $0 { true } else { false } }, "\(results)")
        let adopted = try #require(cluster.proposers[0].proposer?.quorums)
        #expect(Set(adopted.prepareAcceptors) == Set([a, b, d].map(\.localEndpoint)))
        #expect(cluster.proposers[1].proposer?.quorums == adopted)

        cluster.network.crash(q)
        cluster.network.restart(q)
        cluster.network.run(for: .milliseconds(10))
        if keeper == .nowhere {
            try expectFencedOff(cluster, key: key, adopted: adopted)
            return
        }
        #expect(cluster.proposers[1].proposer?.quorums == adopted, "restarted from its store")
        if keeper == .configurationStore {
            // That store holds the configuration and nothing else.
            let stored = try cluster.proposerConfigurationStore(1).load()
            #expect(stored.proposerConfiguration == adopted && stored.registers.isEmpty)
        }

        cluster.network.block(from: p, to: b)
        #expect(cluster.outcome(of: .write([1]), key: key, client: 0, proposer: 0, within: .milliseconds(100)) == .ok([1]))
        cluster.network.unblock(from: p, to: b)
        cluster.network.block(from: q, to: a)
        #expect(cluster.outcome(of: .read, key: key, client: 1, proposer: 1, within: .milliseconds(500)) == .ok([1]))
        #expect(cluster.check() == .linearizable)
    }

    /// `restartAfterChanges` for a proposer Q restarted on the first
    /// configuration with nothing that kept the newer one.
    private func expectFencedOff(_ cluster: SimulatedCASCluster, key: [UInt8], adopted: AcceptorQuorums) throws {
        let (a, b) = (cluster.acceptorNodes[0], cluster.acceptorNodes[1])
        let (p, q) = (cluster.proposerNodes[0], cluster.proposerNodes[1])
        #expect(cluster.proposers[1].proposer?.quorums.version == 1)
        // The last change's fence, on a prepare quorum of {A, B, D} at least.
        let fenced = cluster.acceptors.compactMap { $0?.acceptor?.snapshot.minimumVersion }
        #expect(fenced.filter { $0 == adopted.configurationVersion }.count >= 2, "\(fenced)")
        cluster.network.block(from: p, to: b)
        #expect(cluster.outcome(of: .write([1]), key: key, client: 0, proposer: 0, within: .milliseconds(100)) == .ok([1]))
        cluster.network.unblock(from: p, to: b)
        // Q reads, and writes, without A: on {A, B, C} its quorum would be B
        // and C. Both fail at once, definitely, rather than read nothing.
        cluster.network.block(from: q, to: a)
        #expect(cluster.outcome(of: .read, key: key, client: 1, proposer: 1, within: .milliseconds(100)) == .failed)
        var refused: CASPaxosError?
        cluster.proposers[1].propose(key: key, change: { _ in [2] }) { result in
            if case .failure(let error) = result { refused = error }
        }
        cluster.network.run(for: .milliseconds(100))
        #expect(refused?.code == .staleConfiguration, "\(String(describing: refused))")
        #expect(refused?.detail.contains("version 1") == true)
        #expect((cluster.proposers[1].proposer?.counters.staleConfigurationRefusals ?? 0) >= 2)
        // A change Q starts stops at once too, rather than retrying until
        // its deadline.
        var staleChange: Result<Void, CASPaxosError>?
        let started = cluster.network.now
        let fromItsView = (cluster.proposers[1].proposer?.quorums.prepareAcceptors ?? []) + [cluster.acceptorNodes[3].localEndpoint]
        cluster.proposers[1].changeMembership(to: fromItsView) { staleChange = $0 }
        cluster.network.run(for: .milliseconds(100))
        if case .failure(let error)? = staleChange {
            #expect(error.code == .staleConfiguration, "\(error)")
        } else {
            Issue.record("the stale proposer's change did not stop in \(cluster.network.now - started): \(String(describing: staleChange))")
        }
        // And a garbage collection (of a key it cannot read) stops at once.
        var collection: Result<Void, CASPaxosError>?
        cluster.proposers[1].collectGarbage(key: key) { collection = $0 }
        cluster.network.run(for: .milliseconds(100))
        if case .failure(let error)? = collection {
            #expect(error.code == .staleConfiguration && error.detail.contains("garbage collection stopped"), "\(error)")
        } else {
            Issue.record("the stale proposer's collection did not stop: \(String(describing: collection))")
        }
        // The remedy the error names: the change to the current acceptors
        // again, on a proposer in it, sends Q the configuration.
        var resent: Result<Void, CASPaxosError>?
        cluster.proposers[0].changeMembership(to: adopted.prepareAcceptors) { resent = $0 }
        cluster.network.run(for: .milliseconds(300))
        if case .success? = resent {} else { Issue.record("the re-send: \(String(describing: resent))") }
        #expect(cluster.proposers[1].proposer?.quorums == adopted)
        #expect(cluster.outcome(of: .read, key: key, client: 1, proposer: 1, within: .milliseconds(500)) == .ok([1]))
        #expect(cluster.check() == .linearizable)
    }

    /// A message the transport refuses never leaves: every attempt of a
    /// proposal carrying one would time out.
    @Test("a maximumMessageSize above the transport's is refused")
    func messageSizeFitsTransport() throws {
        let network = SimulatedNetwork(seed: 15)
        network.maximumMessageSize = 1 << 20
        let node = network.addNode()
        var configuration = CASPaxosConfiguration()
        configuration.maximumValueSize = 2 << 20
        configuration.maximumMessageSize = 4 << 20
        let error = #expect(throws: ConfigurationError.self) {
            try CASPaxosNode(
                transport: node, scheduler: node, configuration: configuration, quorums: nil,
                acceptorStore: InMemoryAcceptorStore())
        }
        #expect(error?.field == "maximumMessageSize")
        configuration.maximumValueSize = 512 << 10
        configuration.maximumMessageSize = 1 << 20
        #expect(try CASPaxosNode(
            transport: node, scheduler: node, configuration: configuration, quorums: nil,
            acceptorStore: InMemoryAcceptorStore()).acceptor != nil)
    }

    @Test("a configuration store is refused on a node that is not proposer-only")
    func configurationStoreOnlyForProposers() throws {
        let network = SimulatedNetwork(seed: 15)
        let node = network.addNode()
        let quorums = AcceptorQuorums.majority(of: [node.localEndpoint])
        for acceptorQuorums in [quorums, nil] {
            let error = #expect(throws: ConfigurationError.self) {
                try CASPaxosNode(
                    transport: node, scheduler: node, quorums: acceptorQuorums, acceptorStore: InMemoryAcceptorStore(),
                    configurationStore: InMemoryAcceptorStore())
            }
            #expect(error?.field == "configurationStore")
        }
        let proposerOnly = try CASPaxosNode(
            transport: node, scheduler: node, quorums: quorums, acceptorStore: nil,
            configurationStore: InMemoryAcceptorStore())
        #expect(proposerOnly.acceptor == nil && proposerOnly.proposer?.quorums == quorums)
    }

    /// A node whose store failed (a node with both roles, or a
    /// proposer-only node's configuration store) cannot record a
    /// configuration: it adopts it, but must not acknowledge it (the change
    /// would go on as if it could restart on it), not even the change's
    /// re-send of it, which it is in already (found by a review).
    @Test("a node whose store failed does not acknowledge a configuration it cannot record, nor its re-send", arguments: [false, true])
    func failedStoreDoesNotAcknowledge(proposerOnly: Bool) throws {
        let network = SimulatedNetwork(seed: 14)
        let node = network.addNode()
        let driver = network.addNode()
        let proposer: CASPaxosNode
        if proposerOnly {
            // Its store fails at the first sync after its start: the one
            // that would record the configuration below.
            proposer = try CASPaxosNode(
                transport: node, scheduler: node, quorums: .majority(of: [driver.localEndpoint]),
                acceptorStore: nil, configurationStore: NodeBatchingTests.UnsyncableStore(healthySyncs: 1))
        } else {
            proposer = try NodeBatchingTests.nodeWithFailingSyncs(on: node)
            proposer.propose(key: [1], change: { _ in [1] }) { _ in }
            network.run(for: .milliseconds(200))
            #expect(proposer.acceptor == nil, "the store failed")
        }
        var answers = 0
        driver.setReceiveHandler { _, _, _ in answers += 1 }
        let next = AcceptorQuorums.majority(of: [node.localEndpoint, driver.localEndpoint], version: 2)
        var frame = WireWriter()
        try CASPaxosMessage.reconfigure(requestID: 1, quorums: next)
            .encodeFrame(into: &frame, maximumMessageSize: proposer.configuration.maximumMessageSize)
        // Sent again, as a change re-sends until answered: the proposer is
        // in it already, and still must not acknowledge it.
        for _ in 0..<2 {
            try driver.send(frame.bytes, to: node.localEndpoint)
            network.run(for: .milliseconds(100))
            #expect(proposer.proposer?.quorums == next)
            #expect(answers == 0)
            #expect(proposer.counters.storeFailures == 1)
        }
    }

    /// A node upgraded after membership changes has no configuration
    /// stored (the record is newer than they are): started once on the
    /// configuration the cluster reached, it must keep it, so that a later
    /// restart on the first one cannot undo it.
    @Test("a node records the configuration it is started with when none or an older one is stored")
    func recordsTheGivenConfiguration() throws {
        let network = SimulatedNetwork(seed: 15)
        let node = network.addNode()
        let store = InMemoryAcceptorStore()
        func start(version: UInt64, store: any AcceptorStore = store) throws -> CASPaxosNode {
            try CASPaxosNode(
                transport: node, scheduler: node, quorums: .majority(of: [node.localEndpoint], version: version),
                acceptorStore: store, seed: 3)
        }
        let first = try start(version: 1)
        #expect(store.snapshot.proposerConfiguration?.version == 1, "none was stored")
        #expect(store.syncCount == 1)
        first.stop()
        let upgraded = try start(version: 3)
        #expect(upgraded.proposer?.quorums.version == 3)
        #expect(store.snapshot.proposerConfiguration?.version == 3)
        upgraded.stop()
        let restarted = try start(version: 1)
        #expect(restarted.proposer?.quorums.version == 3, "restarted from its store")
        #expect(store.snapshot.proposerConfiguration?.version == 3)
        #expect(store.syncCount == 2, "nothing newer to record")
        restarted.stop()
        #expect {
            try start(version: 1, store: NodeBatchingTests.UnsyncableStore())
        } throws: { error in
            (error as? ConfigurationError)?.field == "acceptorStore"
        }
    }
}
