import EventCore
import Gossip
import Simulation
import Testing

/// A message is retained for ``GossipConfiguration/retentionPeriod``
/// counted from its broadcast (``GossipData/age``), wherever it is pulled
/// to. Counted from each node's own receipt, a node that lacked it (new,
/// restarted, or one that forgot its origin) pulled it and kept it a whole
/// period more, and anti-entropy kept it alive in the cluster with no
/// bound (found by review: 26 s after its broadcast with a 3 s period).
@Suite("Gossip retention age")
struct RetentionAgeTests {
    @Test("with a node restarted every second, a message is delivered no later than its retention period after its broadcast",
          arguments: [DisseminationMode.plumtree, .push])
    func restartsDoNotExtendRetention(mode: DisseminationMode) throws {
        var configuration = GossipConfiguration(mode: mode)
        configuration.retentionPeriod = .seconds(3)
        configuration.antiEntropyInterval = .milliseconds(200)
        let cluster = try SimulatedCluster(count: 8, seed: 0xA6E, configuration: configuration)
        cluster.network.run(for: .seconds(2))
        let id = try #require(cluster.broadcast(1, every: .milliseconds(10)).first)
        let sent = try #require(cluster.sentAt[id])
        let origin = cluster.drivers.firstIndex { $0?.id == id.origin }
        for second in 0..<20 {
            // Every node but the origin in turn, restarted empty.
            let index = 1 + second % 7 == origin ? 1 + (second + 1) % 7 : 1 + second % 7
            cluster.network.crash(cluster.nodes[index])
            cluster.network.run(for: .milliseconds(10))
            cluster.network.restart(cluster.nodes[index])
            cluster.network.run(for: .milliseconds(990))
        }
        // Delivered, at least once (counted across restarts: a node's
        // counters start again with it, and with the origin node 0 every
        // other node is restarted by the end).
        let last = try #require(cluster.lastDeliveryAt[id])
        // An anti-entropy round and transit on top of the period at most.
        #expect(last - sent <= configuration.retentionPeriod + .milliseconds(300), "delivered \(last - sent) after its broadcast")
    }
}
