import CASPaxos
import EventCore
import Simulation
import Testing

/// A ``CASPaxosNode`` with both roles hands the messages between its own
/// proposer and acceptor over without the network, and only after the
/// sync that covers them.
@Suite("CASPaxos node with both roles")
struct LocalDeliveryTests {
    /// An in-memory store that records its writes and syncs, and the
    /// completions the test adds, in one log.
    final class RecordingStore: AcceptorStore {
        enum Event: Equatable { case write, sync, completed }
        private let store = InMemoryAcceptorStore()
        var log: [Event] = []

        func load() -> AcceptorSnapshot { store.load() }
        func apply(_ write: AcceptorWrite) {
            store.apply(write)
            log.append(.write)
        }
        func sync() {
            store.sync()
            log.append(.sync)
        }
    }

    @Test("a node that is its own quorum answers itself only after the sync, and never over the network")
    func ownQuorumWaitsForTheSync() throws {
        let network = SimulatedNetwork(seed: 11)
        let node = network.addNode()
        let store = RecordingStore()
        let both = try CASPaxosNode(
            transport: node, scheduler: node, quorums: .majority(of: [node.localEndpoint]), acceptorStore: store,
            seed: 1)
        // A client that writes again as soon as a write completes: every
        // completion comes from the node's own acceptor alone.
        var completed = 0
        func write() {
            both.propose(key: Array("own".utf8), change: { [UInt8(($0?.first ?? 0) &+ 1)] }) { result in
                guard case .success = result else {
                    Issue.record("write failed: \(result)")
                    return
                }
                store.log.append(.completed)
                completed += 1
                if completed < 20 { write() }
            }
        }
        write()
        network.run(for: .milliseconds(50))
        #expect(completed == 20)
        #expect(network.statistics.sent == 0)
        #expect(both.counters.messagesSent == 0)
        // Two rounds for the first write, one (1RTT) for each next one; a
        // request and its answer each.
        #expect(both.counters.messagesDeliveredLocally == 2 * (2 + 19))
        // Every answer a completion counted was synced before it: nothing
        // is written between the last sync and a completion.
        for (index, event) in store.log.enumerated() where event == .completed {
            let before = store.log[..<index].filter { $0 != .completed }
            #expect(before.last == .sync, "completion at \(index) of \(store.log)")
        }
        #expect(both.acceptor?.register(Array("own".utf8))?.value == [20])
    }

    @Test("a node whose store cannot sync never hands its own proposer the answer it could not make durable")
    func failedSyncDropsTheOwnAnswer() throws {
        let network = SimulatedNetwork(seed: 12)
        let node = network.addNode()
        let both = try NodeBatchingTests.nodeWithFailingSyncs(on: node)
        var outcome: Result<[UInt8]?, CASPaxosError>?
        both.propose(key: [1], change: { _ in [1] }) { outcome = $0 }
        network.run(for: .milliseconds(500))
        #expect(both.acceptor == nil)
        // The prepare was handed over; the promise, whose write the sync
        // did not cover, was dropped with the turn.
        #expect(both.counters.messagesDeliveredLocally == 1)
        guard case .failure(let error) = outcome else {
            Issue.record("expected a failure, got \(String(describing: outcome))")
            return
        }
        #expect(error.code == .timeout || error.code == .noQuorum)
    }

    @Test("three nodes with both roles: requests to and answers from the own acceptor stay off the network")
    func colocatedCluster() throws {
        var configuration = CASPaxosConfiguration()
        configuration.maximumBatchSize = configuration.maximumMessageSize
        let cluster = try SimulatedCASCluster(seed: 13, proposerCount: 1, colocated: true, configuration: configuration)
        for round in 0..<2 {
            NodeBatchingTests.writeAll(cluster, keys: 100, prefix: "local", expecting: 100)
            // Round 0: a prepare and an accept per key; round 1: an accept.
            let requests = round == 0 ? 200 : 300
            let proposer = cluster.proposers[0].counters
            #expect(proposer.messagesDeliveredLocally == 2 * requests)
            #expect(proposer.messagesSent == 2 * requests)
            for acceptor in cluster.acceptors.dropFirst() {
                #expect(try #require(acceptor).counters.messagesSent == requests)
            }
        }
        for acceptor in cluster.acceptors {
            #expect(try #require(acceptor).acceptor?.register(Array("local-42".utf8))?.value == [42])
        }
    }
}
