import EventCore
import Simulation
import Testing

/// A message whose bytes are a function of its length, so a receiver can
/// check it arrived whole and unmixed with earlier messages.
private func patterned(length: Int) -> [UInt8] {
    (0..<length).map { UInt8(truncatingIfNeeded: length &* 31 &+ $0) }
}

@Suite("Scale")
struct ScaleTests {
    @Test("1,000 forwarding nodes deliver every message intact")
    func thousandNodes() throws {
        let seed: UInt64 = 61
        let network = SimulatedNetwork(seed: seed)
        try network.setDefaultConditions(
            LinkConditions(
                delay: .uniform(minimum: .microseconds(100), maximum: .milliseconds(2)),
                lossProbability: 0.01, duplicateProbability: 0.01, reorderProbability: 0.01))
        let nodes = (0..<1_000).map { _ in network.addNode() }
        let endpoints = nodes.map(\.localEndpoint)
        var corrupt = 0
        for node in nodes {
            var random = network.makeRandomGenerator()
            node.setReceiveHandler { [unowned node] message, _, _ in
                if !message.elementsEqual(patterned(length: message.count)) { corrupt += 1 }
                let next = patterned(length: 1 + Int(random.next() % 64))
                try? node.send(next, to: endpoints[Int(random.next() % 1_000)])
            }
        }
        for (i, node) in nodes.enumerated() {
            try node.send(patterned(length: 1 + i % 64), to: endpoints[(i * 7 + 3) % 1_000])
        }
        while network.statistics.delivered < 20_000, network.step() {}
        #expect(network.statistics.delivered == 20_000, "seed \(seed)")
        #expect(corrupt == 0, "seed \(seed)")
    }
}
