import Benchmark
import EventCore
import Simulation

// Simulator throughput: 1,000 simulated nodes exchange 1,000,000 messages.
// Every node forwards each 32-byte message it receives to a peer drawn at
// random, so 1,000 messages are always in flight; links delay each message
// by a uniform 1-5 ms. One iteration is one whole run; the custom metric
// "messages/s" is deliveries per second of wall time.
//
// The peer, BareHeapLoop, does the same work with nothing but a binary heap
// of events and a payload pool: the floor for any discrete-event simulator,
// so the ratio is what SimulatedNetwork's Transport/Scheduler API, fault
// model and bookkeeping cost.

let nodeCount = 1_000
let messagesPerRun = 1_000_000
let messageSize = 32
let minimumDelay = Duration.milliseconds(1)
let maximumDelay = Duration.milliseconds(5)

let messagesPerSecond = BenchmarkMetric.custom("messages/s", polarity: .prefersLarger, useScalingFactor: false)

/// Forwards every message its node receives to a random other node.
final class Forwarder {
    private let node: SimulatedNode
    private let peers: [Endpoint]
    private var random: SeededRandomGenerator

    init(node: SimulatedNode, peers: [Endpoint], random: SeededRandomGenerator) {
        self.node = node
        self.peers = peers
        self.random = random
    }

    /// Sends `message` to a random peer other than this node.
    func forward(_ message: UnsafeRawBufferPointer) {
        var target = Int.random(in: 0..<(peers.count - 1), using: &random)
        if target >= node.index { target += 1 }
        do {
            try node.send(message, to: peers[target])
        } catch {
            fatalError("simulated send failed: \(error)")
        }
    }
}

/// Builds the network, seeds one message per node, and returns a function
/// that runs it until `messagesPerRun` messages have been delivered.
func makeSimulation(seed: UInt64) -> () -> Int {
    let network = SimulatedNetwork(seed: seed)
    do {
        try network.setDefaultConditions(LinkConditions(delay: .uniform(minimum: minimumDelay, maximum: maximumDelay)))
    } catch {
        fatalError("invalid link conditions: \(error)")
    }
    let nodes = (0..<nodeCount).map { _ in network.addNode() }
    let endpoints = nodes.map(\.localEndpoint)
    var forwarders: [Forwarder] = []
    for node in nodes {
        let forwarder = Forwarder(node: node, peers: endpoints, random: network.makeRandomGenerator())
        node.setReceiveHandler { message, _, _ in forwarder.forward(message) }
        forwarders.append(forwarder)
    }
    let message = [UInt8](repeating: 0x5A, count: messageSize)
    message.withUnsafeBytes { bytes in
        for forwarder in forwarders { forwarder.forward(bytes) }
    }
    return {
        while network.statistics.delivered < messagesPerRun && network.step() {}
        return network.statistics.delivered
    }
}

func benchmarks() {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, messagesPerSecond],
        warmupIterations: 1,
        maxDuration: .seconds(20),
        maxIterations: 5
    )

    Benchmark("Simulation.1kNodes1MMessages.Chorus") { benchmark in
        let run = makeSimulation(seed: 7)
        let start = SystemClock().now
        benchmark.startMeasurement()
        let delivered = run()
        benchmark.stopMeasurement()
        let elapsed = SystemClock().now - start
        precondition(delivered == messagesPerRun, "the simulation stopped early")
        benchmark.measurement(messagesPerSecond, Int(Double(delivered) / seconds(elapsed)))
    }

    Benchmark("Simulation.1kNodes1MMessages.BareHeapLoop") { benchmark in
        var loop = BareHeapLoop(seed: 7)
        let start = SystemClock().now
        benchmark.startMeasurement()
        let delivered = loop.run()
        benchmark.stopMeasurement()
        let elapsed = SystemClock().now - start
        benchmark.measurement(messagesPerSecond, Int(Double(delivered) / seconds(elapsed)))
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
