import CASPaxos
import EventCore
import Simulation
import Testing

/// ``CASPaxosNode`` coalesces a loop turn's messages: the requests of many
/// proposals made together reach each acceptor in one frame, each acceptor
/// answers them with one store sync and one frame, and a turn's messages
/// are split only at the frame limits.
@Suite("CASPaxos node batching")
struct NodeBatchingTests {
    static func writeAll(
        _ cluster: SimulatedCASCluster, keys: Int, prefix: String, expecting expected: Int
    ) {
        var succeeded = 0
        for index in 0..<keys {
            cluster.proposers[0].propose(key: Array("\(prefix)-\(index)".utf8), change: { _ in [UInt8(index % 251)] }) {
                if case .success = $0 { succeeded += 1 }
            }
        }
        cluster.network.run(for: .milliseconds(50))
        #expect(succeeded == expected)
    }

    @Test("200 proposals made in one turn: one frame to each acceptor per round, one sync per acceptor")
    func oneFramePerDestination() throws {
        // Batches as large as messages may be (loopback's setting), so
        // that a round's 200 messages to a destination fit one frame.
        var configuration = CASPaxosConfiguration()
        configuration.maximumBatchSize = configuration.maximumMessageSize
        let cluster = try SimulatedCASCluster(seed: 5, proposerCount: 1, configuration: configuration)
        // Both phases: 200 prepares and 200 accepts to each acceptor.
        Self.writeAll(cluster, keys: 200, prefix: "k", expecting: 200)
        let proposer = cluster.proposers[0].counters
        #expect(proposer.messagesSent == 2 * 3 * 200)
        #expect(proposer.framesSent == 2 * 3)
        for (index, acceptor) in cluster.acceptors.enumerated() {
            let counters = try #require(acceptor).counters
            #expect(counters.messagesSent == 2 * 200)
            #expect(counters.framesSent == 2)
            #expect(counters.syncs == 2)
            #expect(cluster.memoryStores[index].syncCount == 2)
        }
        // The next writes of the same keys take one round trip, still
        // batched: 200 accepts with the next ballot in one frame each.
        Self.writeAll(cluster, keys: 200, prefix: "k", expecting: 200)
        #expect(cluster.proposers[0].counters.framesSent == 3 * 3)
        #expect(cluster.proposers[0].counters.proposer.oneRoundTripAttempts == 200)
        #expect(cluster.network.statistics.sent == 3 * (3 + 3))
    }

    @Test("with the default batch size, every frame of a busy turn fits one 1,400-byte datagram")
    func defaultBatchesFitADatagram() throws {
        let cluster = try SimulatedCASCluster(seed: 7, proposerCount: 1)
        // The network refuses anything longer: a frame past 1,400 bytes
        // would fail to send and its proposals with it.
        cluster.network.maximumMessageSize = 1_400
        Self.writeAll(cluster, keys: 200, prefix: "datagram", expecting: 200)
        // 200 prepares of about 20 bytes need several frames per acceptor.
        #expect(cluster.proposers[0].counters.framesSent > 2 * 3 * 2)
        #expect(cluster.check() == .linearizable)
    }

    @Test("a turn's messages past the frame limits are split into several frames, all delivered")
    func splitAtLimits() throws {
        var configuration = CASPaxosConfiguration()
        configuration.maximumMessagesPerFrame = 16
        let cluster = try SimulatedCASCluster(seed: 6, proposerCount: 1, configuration: configuration)
        Self.writeAll(cluster, keys: 100, prefix: "split", expecting: 100)
        // ceil(100 / 16) = 7 frames per acceptor and phase, each way.
        #expect(cluster.proposers[0].counters.framesSent == 2 * 3 * 7)
        for acceptor in cluster.acceptors { #expect(try #require(acceptor).counters.framesSent == 2 * 7) }
        #expect(cluster.check() == .linearizable)
    }

    /// A store whose syncs fail after the first `healthySyncs`: the writes
    /// of a turn never become durable. A node with both roles syncs once
    /// as it starts (it records its configuration), so its store must
    /// allow one to fail once the node runs.
    final class UnsyncableStore: AcceptorStore {
        private var healthySyncs: Int

        init(healthySyncs: Int = 0) {
            self.healthySyncs = healthySyncs
        }

        func load() -> AcceptorSnapshot { AcceptorSnapshot() }
        func apply(_ write: AcceptorWrite) {}
        func sync() throws(AcceptorStoreError) {
            guard healthySyncs == 0 else { return healthySyncs -= 1 }
            throw AcceptorStoreError(.io, detail: "no disk")
        }
    }

    /// A node with both roles on `node`, alone in its quorum, whose store
    /// syncs as the node starts and fails every sync after; proposals time
    /// out after 100 ms.
    static func nodeWithFailingSyncs(on node: SimulatedNode) throws -> CASPaxosNode {
        var configuration = CASPaxosConfiguration()
        configuration.proposalTimeout = .milliseconds(100)
        return try CASPaxosNode(
            transport: node, scheduler: node, configuration: configuration,
            quorums: .majority(of: [node.localEndpoint]), acceptorStore: UnsyncableStore(healthySyncs: 1), seed: 2)
    }

    /// A store whose writes fail (a full disk, say).
    final class UnwritableStore: AcceptorStore {
        func load() -> AcceptorSnapshot { AcceptorSnapshot() }
        func apply(_ write: AcceptorWrite) throws(AcceptorStoreError) {
            throw AcceptorStoreError(.io, detail: "no space")
        }
        func sync() {}
    }

    /// Three acceptors, the first on `failing`, and 50 writes on distinct
    /// keys made together; returns the acceptors and how many writes
    /// succeeded.
    static func writeFifty(firstAcceptorOn failing: any AcceptorStore) throws -> (acceptors: [CASPaxosNode], succeeded: Int) {
        let network = SimulatedNetwork(seed: 8)
        let nodes = (0..<4).map { _ in network.addNode() }
        let acceptors = try nodes[0..<3].enumerated().map { index, node in
            try CASPaxosNode(
                transport: node, scheduler: node, quorums: nil,
                acceptorStore: index == 0 ? failing : InMemoryAcceptorStore(), seed: UInt64(index))
        }
        let proposer = try CASPaxosNode(
            transport: nodes[3], scheduler: nodes[3], quorums: .majority(of: nodes[0..<3].map(\.localEndpoint)),
            acceptorStore: nil, seed: 9)
        var succeeded = 0
        for index in 0..<50 {
            proposer.propose(key: [UInt8(index)], change: { _ in [1] }) { if case .success = $0 { succeeded += 1 } }
        }
        network.run(for: .milliseconds(50))
        return (acceptors, succeeded)
    }

    @Test("an acceptor whose store cannot sync stops and sends none of the turn's replies; the others carry on")
    func failedSyncDropsTheTurn() throws {
        let (acceptors, succeeded) = try Self.writeFifty(firstAcceptorOn: UnsyncableStore())
        #expect(succeeded == 50)
        #expect(acceptors[0].acceptor == nil)
        #expect(acceptors[0].counters.framesSent == 0)
        #expect(acceptors[1].acceptor != nil && acceptors[1].counters.messagesSent == 100)
    }

    @Test("an acceptor whose store cannot write stops before answering anything of the turn, nor later")
    func failedWriteDropsTheTurn() throws {
        let (acceptors, succeeded) = try Self.writeFifty(firstAcceptorOn: UnwritableStore())
        #expect(succeeded == 50)
        #expect(acceptors[0].acceptor == nil)
        // The first write failed: the promises after it in the same turn,
        // whose writes were never made, are not sent either.
        #expect(acceptors[0].counters.messagesSent == 0)
        #expect(acceptors[0].counters.framesSent == 0)
    }
}
