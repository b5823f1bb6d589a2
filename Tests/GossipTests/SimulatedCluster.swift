import EventCore
import Gossip
import Simulation
import Testing

/// A gossip cluster in the simulator, for the tests: `count` nodes, node 0
/// the seed, the others joining through it (staggered over the first
/// second), every delivery recorded per node.
final class SimulatedCluster {
    let network: SimulatedNetwork
    let configuration: GossipConfiguration
    private(set) var nodes: [SimulatedNode] = []
    private(set) var drivers: [GossipNode?] = []
    /// Per node: the IDs delivered, and deliveries of an ID seen before
    /// (must stay 0: exactly once).
    private(set) var delivered: [Set<MessageID>] = []
    private(set) var redeliveries = 0
    /// Per delivered message: the hop count of the first copy.
    private(set) var hopCounts: [Int] = []
    /// Per broadcast ID: when it was sent, and the latest delivery of it.
    private(set) var sentAt: [MessageID: Instant] = [:]
    private(set) var lastDeliveryAt: [MessageID: Instant] = [:]

    init(count: Int, seed: UInt64, configuration: GossipConfiguration, link: LinkConditions = LinkConditions()) throws {
        network = SimulatedNetwork(seed: seed)
        try network.setDefaultConditions(link)
        self.configuration = configuration
        for index in 0..<count {
            let node = network.addNode()
            nodes.append(node)
            drivers.append(nil)
            delivered.append([])
            node.onRestart = { [unowned self] node in
                // A restarted node is a new incarnation: new ID, empty state.
                self.startDriver(index, seeds: [self.nodes[0].localEndpoint])
            }
        }
        let seedEndpoint = nodes[0].localEndpoint
        startDriver(0, seeds: [])
        for index in 1..<count {
            let at = Instant.zero + .microseconds(Int64(index) * 1_000_000 / Int64(count))
            network.schedule(at: at) { [unowned self] _ in self.startDriver(index, seeds: [seedEndpoint]) }
        }
    }

    private func startDriver(_ index: Int, seeds: [Endpoint]) {
        let node = nodes[index]
        var generator = SeededRandomGenerator(seed: network.seed &+ UInt64(index) &* 0x9E37_79B9)
        let driver = try! GossipNode(
            id: NodeID(generator.next()), transport: node, scheduler: node, configuration: configuration,
            seed: generator.next())
        driver.setDeliveryHandler { [unowned self] delivery in
            if !self.delivered[index].insert(delivery.id).inserted { self.redeliveries += 1 }
            self.hopCounts.append(delivery.hops)
            self.lastDeliveryAt[delivery.id] = max(self.lastDeliveryAt[delivery.id] ?? .zero, delivery.deliveredAt)
        }
        driver.start(seeds: seeds)
        drivers[index] = driver
    }

    /// Broadcasts `count` messages from random live nodes, one every
    /// `interval`, starting now; returns their IDs once all were sent. A
    /// broadcast that fails is a test failure (recorded): the callers check
    /// what the returned IDs reached, which says nothing of broadcasts that
    /// were never made.
    func broadcast(_ count: Int, every interval: Duration, payloadSize: Int = 64) -> [MessageID] {
        var generator = network.makeRandomGenerator()
        var ids: [MessageID] = []
        for number in 0..<count {
            let live = liveIndices
            let index = live[Int.random(in: 0..<live.count, using: &generator)]
            let payload = (0..<payloadSize).map { UInt8(truncatingIfNeeded: $0 &+ number) }
            do {
                guard let id = try drivers[index]?.broadcast(payload) else {
                    throw GossipError(.stopped, detail: "live node \(index) has no driver")
                }
                ids.append(id)
                sentAt[id] = network.now
            } catch {
                Issue.record("broadcast \(number) from node \(index) failed: \(error)")
            }
            network.run(for: interval)
        }
        return ids
    }

    var liveIndices: [Int] { nodes.indices.filter { !nodes[$0].isCrashed } }

    /// Live nodes (other than the origin) that have not delivered `id`.
    func missing(_ id: MessageID) -> [Int] {
        liveIndices.filter { index in
            drivers[index]?.id != id.origin && !delivered[index].contains(id)
        }
    }

    /// The number of (live node, message) pairs not yet delivered.
    func undelivered(_ ids: [MessageID]) -> Int {
        ids.reduce(0) { $0 + missing($1).count }
    }

    /// Sum of a counter over the live drivers.
    func total(_ counter: (GossipCounters) -> Int) -> Int {
        liveIndices.reduce(0) { $0 + (drivers[$1].map { counter($0.counters) } ?? 0) }
    }
}
