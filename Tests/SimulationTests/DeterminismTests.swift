import EventCore
import Simulation
import Testing

/// A node that chats: every 50 ms it sends a message with a hop count to a
/// random peer, and forwards what it receives (one hop less) to another.
private final class Chatter {
    let node: SimulatedNode
    let peers: [Endpoint]
    var random: SeededRandomGenerator

    init(node: SimulatedNode, peers: [Endpoint], random: SeededRandomGenerator) {
        self.node = node
        self.peers = peers
        self.random = random
        node.setReceiveHandler { [unowned self] message, _, _ in
            guard let hops = message.first, hops > 0 else { return }
            var forward = Array(message)
            forward[0] = hops - 1
            try? node.send(forward, to: randomPeer())
        }
        armTimer()
    }

    private func randomPeer() -> Endpoint {
        peers[Int(random.next() % UInt64(peers.count))]
    }

    private func armTimer() {
        node.schedule(at: node.now + .milliseconds(50)) { [unowned self] in
            let size = 1 + Int(random.next() % 32)
            var message = [UInt8](repeating: UInt8(truncatingIfNeeded: node.index), count: size)
            message[0] = 3
            try? node.send(message, to: randomPeer())
            armTimer()
        }
    }
}

/// The outcome of one chatter run.
private struct ChatterRun {
    var trace: [TraceEvent]
    var statistics: SimulationStatistics
}

/// 20 chatting nodes over lossy, duplicating, reordering links, with a
/// partition from 1 s to 2 s and node 7 down from 1.5 s to 2.5 s; 4 s of
/// virtual time.
private func runChatter(seed: UInt64) throws -> ChatterRun {
    let network = SimulatedNetwork(seed: seed)
    network.traceCapacity = 1 << 20
    try network.setDefaultConditions(
        LinkConditions(
            delay: .uniform(minimum: .milliseconds(1), maximum: .milliseconds(20)),
            lossProbability: 0.1, duplicateProbability: 0.05, reorderProbability: 0.1))
    let nodes = (0..<20).map { _ in network.addNode() }
    let peers = nodes.map(\.localEndpoint)
    var chatters: [Chatter] = []
    for node in nodes {
        chatters.append(Chatter(node: node, peers: peers, random: network.makeRandomGenerator()))
        node.onRestart = { [unowned network] node in
            chatters.append(Chatter(node: node, peers: peers, random: network.makeRandomGenerator()))
        }
    }
    network.schedule(at: .at(.seconds(1))) { $0.partition(Array(nodes[..<8]), Array(nodes[8...])) }
    network.schedule(at: .at(.milliseconds(1500))) { $0.crash(nodes[7]) }
    network.schedule(at: .at(.seconds(2))) { $0.heal() }
    network.schedule(at: .at(.milliseconds(2500))) { $0.restart(nodes[7]) }
    network.run(until: .at(.seconds(4)))
    return ChatterRun(trace: network.trace, statistics: network.statistics)
}

@Suite("Determinism")
struct DeterminismTests {
    @Test("the same seed replays the same run, event for event")
    func sameSeedSameRun() throws {
        let seed: UInt64 = 0x5EED_0001
        let first = try runChatter(seed: seed)
        let second = try runChatter(seed: seed)
        #expect(first.statistics == second.statistics, "seed \(seed)")
        #expect(first.trace.count == second.trace.count, "seed \(seed)")
        let divergence = first.trace.indices.first { $0 < second.trace.count && first.trace[$0] != second.trace[$0] }
        #expect(divergence == nil, "seed \(seed): traces differ at event \(divergence ?? -1)")
        // The scenario exercised every fault it configures.
        let statistics = first.statistics
        #expect(statistics.delivered > 1_000, "seed \(seed)")
        #expect(statistics.droppedByLoss > 0, "seed \(seed)")
        #expect(statistics.duplicated > 0, "seed \(seed)")
        #expect(statistics.droppedByPartition > 0, "seed \(seed)")
        #expect(statistics.droppedByCrash > 0, "seed \(seed)")
        #expect(first.trace.contains { $0.kind == .restart(node: Endpoint(address: .ipv4(0x0A00_0008), port: 7946)) })
    }

    @Test("a different seed gives a different run")
    func differentSeedDifferentRun() throws {
        let first = try runChatter(seed: 1)
        let second = try runChatter(seed: 2)
        #expect(first.trace != second.trace, "seeds 1 and 2")
    }

    @Test("every message copy is accounted for once the network is idle")
    func countersBalance() throws {
        let seed: UInt64 = 77
        let network = SimulatedNetwork(seed: seed)
        try network.setDefaultConditions(
            LinkConditions(
                delay: .uniform(minimum: .zero, maximum: .milliseconds(5)),
                lossProbability: 0.2, duplicateProbability: 0.2))
        let nodes = (0..<5).map { _ in network.addNode() }
        _ = Inbox(nodes[0])
        _ = Inbox(nodes[1])  // nodes 2...4 have no handler
        network.block(from: nodes[0], to: nodes[1])
        for i in 0..<500 {
            let source = nodes[i % 5]
            let destination = nodes[(i * 7 + 1) % 5]
            try source.send(number: UInt8(i % 256), to: destination)
        }
        try nodes[0].send([1], to: Endpoint(address: .ipv4(0xC0A8_0001), port: 1))
        #expect(network.runUntilIdle(), "seed \(seed)")
        let s = network.statistics
        #expect(
            s.sent + s.duplicated
                == s.delivered + s.droppedByLoss + s.droppedByPartition + s.droppedByCrash
                + s.droppedNoReceiver, "seed \(seed): \(s)")
        #expect(s.droppedNoReceiver > 0, "seed \(seed)")
    }
}
