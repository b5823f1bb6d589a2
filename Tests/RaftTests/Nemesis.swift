import EventCore
import Simulation

/// The fault injector of the simulator tests: at each ``strike()`` it
/// draws one action from its seed: partition the group in two, heal every
/// link, crash a node (keeping a majority up), restart the longest-crashed
/// one, cut one directed link, or nothing.
struct Nemesis {
    let cluster: RaftCluster
    private var random: SeededRandomGenerator
    private(set) var crashed: [Int] = []

    init(cluster: RaftCluster, seed: UInt64) {
        self.cluster = cluster
        random = SeededRandomGenerator(seed: seed)
    }

    mutating func strike() throws {
        let count = cluster.simulatedNodes.count
        let nodes = cluster.simulatedNodes
        switch Int.random(in: 0..<10, using: &random) {
        case 0, 1:
            let shuffled = cluster.indices.shuffled(using: &random)
            let cut = Int.random(in: 1..<count, using: &random)
            cluster.network.partition(shuffled[..<cut].map { nodes[$0] }, shuffled[cut...].map { nodes[$0] })
        case 2, 3:
            cluster.network.heal()
        case 4 where crashed.count < (count - 1) / 2:
            if let victim = cluster.live.randomElement(using: &random) {
                cluster.crash(victim)
                crashed.append(victim)
            }
        case 5:
            if !crashed.isEmpty { try cluster.restart(crashed.removeFirst()) }
        case 6:
            // A one-way cut: messages one way are lost, the other way pass.
            let shuffled = cluster.indices.shuffled(using: &random)
            cluster.network.block(from: nodes[shuffled[0]], to: nodes[shuffled[1]])
        default:
            break
        }
    }

    /// A live node to send a client request to: the leader if there is one.
    mutating func target() -> Int? {
        cluster.leader ?? cluster.live.randomElement(using: &random)
    }

    /// Any live node, leader or not: a follower forwards the request.
    mutating func anyTarget() -> Int? {
        cluster.live.randomElement(using: &random)
    }

    /// Heals every link and restarts every crashed node.
    mutating func stop() throws {
        cluster.network.heal()
        for index in crashed { try cluster.restart(index) }
        crashed = []
    }
}
