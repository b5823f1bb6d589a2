import EventCore
import Simulation

/// A fault schedule for the simulator: a random minority of the acceptors
/// is slow (every link to and from it follows `slowLink`), half the time
/// one proposer too hears everyone slowly (the links to it only), and
/// after a random pause another minority is drawn, perhaps none.
///
/// Random loss rarely lets a quorum answer one step and a different
/// quorum the next; here it happens all the time. That is the schedule
/// membership change, garbage collection and the read shortcut must
/// survive: a value accepted by one quorum, then a prepare or a key
/// listing answered by another that holds it on their intersection only,
/// or by acceptors that missed it while the others' answers are late.
final class SlowMinority {
    private let cluster: SimulatedCASCluster
    private let slowLink: LinkConditions
    private let pauses: ClosedRange<Int64>
    private var random: SeededRandomGenerator
    private var slowed: [SimulatedNode] = []
    private var deafened: SimulatedNode?
    private var isRunning = true

    /// Starts slowing a first minority at once.
    ///
    /// - Parameters:
    ///   - slowLink: the conditions of a slow acceptor's links.
    ///   - pause: how long each minority stays slow, drawn uniformly.
    init(
        cluster: SimulatedCASCluster, seed: UInt64, slowLink: LinkConditions, pause: ClosedRange<Duration>
    ) throws {
        try slowLink.validate()
        self.cluster = cluster
        self.slowLink = slowLink
        pauses = pause.lowerBound.nanoseconds...pause.upperBound.nanoseconds
        random = SeededRandomGenerator(seed: seed)
        slowDown()
    }

    /// Restores every link and draws no more minorities.
    func stop() {
        isRunning = false
        restore()
    }

    /// Every acceptor ever added, whether in the configuration or not; a
    /// minority of them is slow.
    private func slowDown() {
        guard isRunning else { return }
        restore()
        let acceptors = cluster.acceptorNodes
        let count = Int.random(in: 0...(acceptors.count - 1) / 2, using: &random)
        slowed = Array(acceptors.shuffled(using: &random).prefix(count))
        for node in slowed {
            for other in everyone where other !== node {
                // Validated in init.
                try! cluster.network.setConditions(slowLink, from: node, to: other)
                try! cluster.network.setConditions(slowLink, from: other, to: node)
            }
        }
        // Half the time, a proposer hears the others slowly too: its
        // messages leave on time, the answers come late (or not at all).
        if Bool.random(using: &random), let deaf = cluster.proposerNodes.randomElement(using: &random) {
            deafened = deaf
            for other in everyone where other !== deaf {
                try! cluster.network.setConditions(slowLink, from: other, to: deaf)
            }
        }
        let pause = Duration.nanoseconds(Int64.random(in: pauses, using: &random))
        cluster.network.schedule(at: cluster.network.now + pause) { [self] _ in slowDown() }
    }

    private func restore() {
        for node in slowed {
            for other in everyone where other !== node {
                cluster.network.removeConditions(from: node, to: other)
                cluster.network.removeConditions(from: other, to: node)
            }
        }
        slowed = []
        if let deaf = deafened {
            for other in everyone where other !== deaf { cluster.network.removeConditions(from: other, to: deaf) }
        }
        deafened = nil
    }

    private var everyone: [SimulatedNode] { cluster.acceptorNodes + cluster.proposerNodes }
}
