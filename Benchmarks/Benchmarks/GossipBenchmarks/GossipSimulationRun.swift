import EventCore
import Gossip
import Simulation

/// One simulated gossip cluster run, measured: `nodeCount` nodes join
/// through node 0 over the first second, the overlay settles, a warm-up of
/// broadcasts lets Plumtree's tree form, then `measuredBroadcasts`
/// broadcasts from random nodes are sent 100 ms apart and the run goes on
/// until every node has every one (or a time limit passes).
final class GossipSimulationRun {
    static let warmupBroadcasts = 10
    static let measuredBroadcasts = 20
    static let broadcastInterval = Duration.milliseconds(100)

    let nodeCount: Int
    let network: SimulatedNetwork
    private var drivers: [GossipNode] = []
    private var deliveredCount: [MessageID: Int] = [:]
    private var lastDelivery: [MessageID: Instant] = [:]
    private var maxHops: [MessageID: Int] = [:]
    private var hopSum = 0
    private var hopSamples = 0
    private var measured: Set<MessageID> = []

    init(nodeCount: Int, mode: DisseminationMode, seed: UInt64) {
        self.nodeCount = nodeCount
        network = SimulatedNetwork(seed: seed)
        do {
            try network.setDefaultConditions(LinkConditions(delay: .uniform(minimum: .milliseconds(1), maximum: .milliseconds(5))))
        } catch {
            fatalError("invalid link conditions: \(error)")
        }
        let configuration = GossipConfiguration(mode: mode)
        let nodes = (0..<nodeCount).map { _ in network.addNode() }
        for (index, node) in nodes.enumerated() {
            let driver: GossipNode
            do {
                driver = try GossipNode(
                    id: NodeID(UInt64(index) + 1), transport: node, scheduler: node, configuration: configuration,
                    seed: seed &+ UInt64(index))
            } catch {
                fatalError("invalid gossip configuration: \(error)")
            }
            driver.setDeliveryHandler { [unowned self] delivery in self.record(delivery) }
            drivers.append(driver)
            let seeds = index == 0 ? [] : [nodes[0].localEndpoint]
            network.schedule(at: .zero + .microseconds(Int64(index) * 1_000_000 / Int64(nodeCount))) { _ in
                driver.start(seeds: seeds)
            }
        }
    }

    private func record(_ delivery: GossipDelivery) {
        guard measured.contains(delivery.id) else { return }
        deliveredCount[delivery.id, default: 0] += 1
        lastDelivery[delivery.id] = delivery.deliveredAt
        maxHops[delivery.id] = max(maxHops[delivery.id] ?? 0, delivery.hops)
        hopSum += delivery.hops
        hopSamples += 1
    }

    /// What the measured broadcasts cost and how fast they spread.
    struct Outcome {
        /// Payload copies sent per node per broadcast, in thousandths.
        var milliCopiesPerNodePerBroadcast: Int
        /// The largest hop count of a first copy (the rounds to reach all).
        var maximumHops: Int
        /// The mean hop count of first copies, in hundredths.
        var centiMeanHops: Int
        /// Simulated time from a broadcast to its last delivery, worst case.
        var milliseconds: Int
        /// Deliveries of measured broadcasts, of the expected total.
        var deliveredPercent: Int
    }

    func run() -> Outcome {
        var random = network.makeRandomGenerator()
        func broadcastFromRandomNode(_ number: Int) -> (MessageID, Instant)? {
            let origin = drivers[Int.random(in: 0..<nodeCount, using: &random)]
            guard let id = try? origin.broadcast([UInt8](repeating: UInt8(truncatingIfNeeded: number), count: 64)) else {
                return nil
            }
            return (id, network.now)
        }
        network.run(for: .seconds(5))
        for number in 0..<Self.warmupBroadcasts {
            _ = broadcastFromRandomNode(number)
            network.run(for: Self.broadcastInterval)
        }
        network.run(for: .seconds(2))
        let payloadsBefore = drivers.reduce(0) { $0 + $1.counters.payloadsSent }
        var sentAt: [MessageID: Instant] = [:]
        for number in 0..<Self.measuredBroadcasts {
            guard let (id, at) = broadcastFromRandomNode(number) else { continue }
            measured.insert(id)
            sentAt[id] = at
            network.run(for: Self.broadcastInterval)
        }
        let expected = measured.count * (nodeCount - 1)
        let limit = network.now + .seconds(30)
        while deliveredCount.values.reduce(0, +) < expected && network.now < limit {
            network.run(for: .milliseconds(100))
        }
        // Counted once everything arrived: the payloads of the measured
        // broadcasts (and the little background of grafts and repairs).
        let payloads = drivers.reduce(0) { $0 + $1.counters.payloadsSent } - payloadsBefore
        let worst = measured.map { id -> Duration in
            guard let last = lastDelivery[id], let sent = sentAt[id] else { return .zero }
            return last - sent
        }.max() ?? .zero
        return Outcome(
            milliCopiesPerNodePerBroadcast: payloads * 1_000 / max(1, measured.count * nodeCount),
            maximumHops: maxHops.values.max() ?? 0,
            centiMeanHops: hopSamples == 0 ? 0 : hopSum * 100 / hopSamples,
            milliseconds: Int(worst.nanoseconds / 1_000_000),
            deliveredPercent: expected == 0 ? 0 : deliveredCount.values.reduce(0, +) * 100 / expected)
    }
}
