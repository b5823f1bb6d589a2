import EventCore
@testable import Gossip
import Testing

/// The ring of peers taken for failed, which a node probes to heal a
/// partition, holds peers that were neighbours or candidates: not the
/// newcomers forward joins name.
@Suite("Gossip failed peers")
struct FailedPeerTests {
    static func peer(_ last: Int) throws -> Endpoint { try Endpoint(parsing: "10.0.0.\(last):7000") }
    static let start = Instant.zero + .seconds(1)

    /// Node 10.0.0.1 with an active view of three, filled at ``start`` by
    /// 10.0.0.2 ... 4 joining, each sending a heartbeat after it joined.
    static func nodeWithThreeNeighbors(into effects: inout [GossipEffect]) throws -> GossipInstance {
        var configuration = GossipConfiguration()
        configuration.activeViewSize = 3
        var node = try GossipInstance(id: NodeID(1), endpoint: try peer(1), configuration: configuration, seed: 7, now: .zero)
        for last in 2...4 { node.receive(.join, from: try peer(last), now: start, into: &effects) }
        for last in 2...4 { node.receive(.heartbeat, from: try peer(last), now: start, into: &effects) }
        return node
    }

    @Test("forward-join requests that time out do not push the failed peers out of the ring")
    func newcomerTimeoutsNotRemembered() throws {
        var effects: [GossipEffect] = []
        var node = try Self.nodeWithThreeNeighbors(into: &effects)
        let (peer, configuration, start) = (Self.peer, node.configuration, Self.start)
        // The three neighbours fall silent: each is taken for failed.
        var now = start
        while now < start + configuration.peerTimeout + .seconds(1) {
            now = node.nextDeadline
            node.tick(now: now, into: &effects)
        }
        let failed = Set(try (2...4).map(peer))
        #expect(failed.isSubset(of: Set(node.failedPeers)))
        // Forward joins naming 40 dead addresses, one batch after another,
        // each batch's requests left to time out.
        for batch in 0..<4 {
            for index in 0..<10 {
                let newcomer = try Endpoint(parsing: "10.9.\(batch).\(index):7000")
                node.receive(.forwardJoin(newcomer: newcomer, timeToLive: 0), from: try peer(99), now: now, into: &effects)
            }
            let until = now + configuration.requestTimeout + .milliseconds(1)
            while now < until {
                now = node.nextDeadline
                node.tick(now: now, into: &effects)
            }
        }
        #expect(failed.isSubset(of: Set(node.failedPeers)), "failed peers: \(node.failedPeers)")
        #expect(node.failedPeers.allSatisfy { !$0.description.hasPrefix("10.9.") })
    }

    /// Each forged NEIGHBOR (high priority, so taken) evicts a neighbour;
    /// the forged address never speaks and times out. Remembered as former
    /// neighbours, a few such rounds filled the ring, and the real former
    /// neighbours, which heal a partition, were gone (found by review).
    @Test("a neighbour that never spoke after asking is not remembered as a former neighbour, and does not push real ones out")
    func forgedNeighborsNotFormer() throws {
        var effects: [GossipEffect] = []
        var node = try Self.nodeWithThreeNeighbors(into: &effects)
        let (peer, configuration, start) = (Self.peer, node.configuration, Self.start)
        // The three real neighbours spoke once (a heartbeat each), then
        // fall silent and are taken for failed: former neighbours.
        var now = start
        func tick(until end: Instant) {
            while now < end {
                now = node.nextDeadline
                node.tick(now: now, into: &effects)
            }
        }
        tick(until: start + configuration.peerTimeout + .milliseconds(1))
        let real = Set(try (2...4).map(peer))
        #expect(real.isSubset(of: node.failedNeighbors))
        // Rounds of forged high-priority NEIGHBORs from addresses that
        // never answer, each round left to time out.
        for round in 0..<6 {
            for index in 0..<3 {
                node.receive(.neighbor(highPriority: true), from: try Endpoint(parsing: "10.8.\(round).\(index):7000"),
                             now: now, into: &effects)
            }
            tick(until: now + configuration.peerTimeout + .milliseconds(1))
        }
        #expect(node.failedNeighbors.allSatisfy { !$0.description.hasPrefix("10.8.") }, "\(node.failedNeighbors)")
        #expect(real.isSubset(of: node.failedNeighbors), "former neighbours: \(node.failedNeighbors)")
    }

    /// Its views and its seeds dead at once, a node still hears digests
    /// from peers that list it; it used to answer them and nothing more,
    /// getting messages by anti-entropy alone, with no neighbour ever again
    /// (found by review).
    @Test("a node with no neighbour left asks a peer whose digest reaches it to link")
    func isolatedNodeRelinks() throws {
        var effects: [GossipEffect] = []
        var node = try GossipInstance(
            id: NodeID(1), endpoint: try Self.peer(1), configuration: GossipConfiguration(), seed: 7, now: .zero)
        #expect(node.activeView.isEmpty && node.passiveView.isEmpty)
        let stranger = try Self.peer(5)
        node.receive(.digest([], isReply: false), from: stranger, now: Self.start, into: &effects)
        effects.removeAll()
        node.tick(now: Self.start + .milliseconds(1), into: &effects)
        let asked = effects.contains { effect in
            if case .send(.neighbor(highPriority: true), stranger) = effect { true } else { false }
        }
        #expect(asked, "\(effects)")
    }

    /// A forced link evicts a healthy neighbour at each end: only a former
    /// neighbour (what a healed partition cut) is worth one, not a peer
    /// whose request merely timed out.
    @Test("a former neighbour is probed at high priority, a peer whose request timed out at low priority")
    func probePriority() throws {
        var effects: [GossipEffect] = []
        var node = try Self.nodeWithThreeNeighbors(into: &effects)
        let (peer, start) = (Self.peer, Self.start)
        node.receive(.shuffleReply(sample: try (5...7).map(peer)), from: try peer(2), now: start, into: &effects)
        // Silence: the neighbours are dropped, the refill requests to 5 ... 7
        // time out; then the probes.
        var probes: [Endpoint: Bool] = [:]
        var now = start
        while now < start + .seconds(40) {
            effects.removeAll()
            now = node.nextDeadline
            node.tick(now: now, into: &effects)
            for case .send(.neighbor(let highPriority), let destination) in effects
            where node.failedPeers.contains(destination) {
                probes[destination] = highPriority
            }
        }
        let formerNeighbors = Set(try (2...4).map(peer))
        #expect(formerNeighbors.isSubset(of: Set(probes.keys)))
        #expect(!Set(probes.keys).subtracting(formerNeighbors).isEmpty, "no timed-out request was probed")
        for (destination, highPriority) in probes {
            #expect(highPriority == formerNeighbors.contains(destination), "probe of \(destination)")
        }
    }
}
