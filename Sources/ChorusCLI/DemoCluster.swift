import EventCore
import Gossip
import UDPTransport

/// The nodes of `chorus demo`'s cluster for one mode, on one event loop,
/// and what they delivered. Loop-confined.
final class DemoCluster {
    let mode: DisseminationMode
    private(set) var transports: [UDPSocketTransport] = []
    private(set) var nodes: [GossipNode] = []
    private var random = SeededRandomGenerator()
    /// When each broadcast left its origin.
    private var sentAt: [MessageID: Instant] = [:]
    /// Broadcast to delivery, for every delivery.
    private(set) var latencies: [Duration] = []
    private(set) var redeliveries = 0
    private var delivered: [Set<MessageID>]

    init(nodeCount: Int, mode: DisseminationMode, loop: EventLoop) throws {
        self.mode = mode
        delivered = Array(repeating: [], count: nodeCount)
        var configuration = GossipConfiguration(mode: mode)
        configuration.antiEntropyInterval = .milliseconds(500)
        for index in 0..<nodeCount {
            let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
            let node = try GossipNode(transport: transport, scheduler: loop, configuration: configuration)
            node.setDeliveryHandler { [unowned self] delivery in self.record(delivery, at: index) }
            transports.append(transport)
            nodes.append(node)
        }
        nodes[0].start()
        for node in nodes.dropFirst() { node.start(seeds: [transports[0].localEndpoint]) }
    }

    private func record(_ delivery: GossipDelivery, at index: Int) {
        guard delivered[index].insert(delivery.id).inserted else {
            redeliveries += 1
            return
        }
        if let sent = sentAt[delivery.id] { latencies.append(delivery.deliveredAt - sent) }
    }

    /// Broadcasts one message from a random node.
    func broadcastFromRandomNode(now: Instant) {
        let node = nodes[Int.random(in: 0..<nodes.count, using: &random)]
        let payload = Array("message \(sentAt.count) from \(node.id)".utf8)
        guard let id = try? node.broadcast(payload) else { return }
        sentAt[id] = now
    }

    /// Where the run stands.
    var progress: DemoProgress {
        let nodes = self.nodes
        return DemoProgress(
            mode: mode, nodeCount: nodes.count, broadcasts: sentAt.count,
            deliveries: delivered.reduce(0) { $0 + $1.count },
            payloadsSent: nodes.reduce(0) { $0 + $1.counters.payloadsSent },
            duplicates: nodes.reduce(0) { $0 + $1.counters.duplicates },
            repairs: nodes.reduce(0) { $0 + $1.counters.deliveredByRepair },
            redeliveries: redeliveries, latencies: latencies)
    }

    func close() {
        for node in nodes { node.stop() }
        for transport in transports { transport.close() }
    }
}

/// A snapshot of a ``DemoCluster``'s run.
struct DemoProgress: Sendable {
    var mode: DisseminationMode
    var nodeCount: Int
    var broadcasts: Int
    var deliveries: Int
    var payloadsSent: Int
    var duplicates: Int
    var repairs: Int
    var redeliveries: Int
    var latencies: [Duration]

    /// Deliveries expected: every broadcast at every node but its origin.
    var expected: Int { broadcasts * (nodeCount - 1) }
    var deliveryRatio: Double { expected == 0 ? 1 : Double(deliveries) / Double(expected) }
    var isComplete: Bool { deliveries >= expected }
    var copiesPerDelivery: Double { deliveries == 0 ? 0 : Double(payloadsSent) / Double(deliveries) }
}
