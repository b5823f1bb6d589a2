import EventCore
@testable import Gossip
import Testing

/// How a node refills its active view from its passive view: one
/// high-priority request while it has no neighbour (each one taken evicts
/// a neighbour of the peer), and no peer asked again soon after it refused.
@Suite("Gossip active view repair")
struct ActiveViewRepairTests {
    static let peer = FailedPeerTests.peer
    static let start = FailedPeerTests.start

    /// The NEIGHBOR requests in `effects`, with their priorities.
    static func neighborRequests(in effects: [GossipEffect]) -> [(peer: Endpoint, highPriority: Bool)] {
        effects.compactMap { effect in
            if case .send(.neighbor(let highPriority), let destination) = effect { (destination, highPriority) } else { nil }
        }
    }

    /// HyParView asks at high priority only while the active view is
    /// empty, one peer at a time. Asking every free slot at high priority
    /// at once made up to a full view of peers each evict a healthy
    /// neighbour, which then refilled in turn.
    @Test("an emptied active view asks one passive peer at high priority, the other slots at low priority")
    func oneHighPriorityRequest() throws {
        var effects: [GossipEffect] = []
        var node = try FailedPeerTests.nodeWithThreeNeighbors(into: &effects)
        let (peer, start) = (Self.peer, Self.start)
        let passive = try (5...9).map(peer)
        node.receive(.shuffleReply(sample: passive), from: try peer(2), now: start, into: &effects)
        // The three neighbours fall silent and are dropped in one tick; the
        // refill goes out in that tick.
        var now = start
        repeat {
            effects.removeAll()
            now = node.nextDeadline
            node.tick(now: now, into: &effects)
        } while !node.activeView.isEmpty
        var asked = Self.neighborRequests(in: effects).filter { passive.contains($0.peer) }
        #expect(asked.count == 3, "\(asked)")
        #expect(asked.filter(\.highPriority).count == 1, "\(asked)")
        let high = try #require(asked.first { $0.highPriority }).peer
        // The low-priority ones are refused: asked again at low priority
        // while the high-priority request is out.
        for request in asked where !request.highPriority {
            node.receive(.neighborReply(accepted: false), from: request.peer, now: now, into: &effects)
        }
        effects.removeAll()
        now = now + .milliseconds(10)
        node.tick(now: now, into: &effects)
        asked = Self.neighborRequests(in: effects).filter { passive.contains($0.peer) }
        #expect(!asked.isEmpty && asked.allSatisfy { !$0.highPriority }, "\(asked)")
        // The high-priority one times out: the next refill asks another
        // peer at high priority.
        let until = now + node.configuration.requestTimeout
        var highAfterTimeout: [Endpoint] = []
        while now <= until + .milliseconds(10) {
            effects.removeAll()
            now = now + .milliseconds(10)
            node.tick(now: now, into: &effects)
            highAfterTimeout += Self.neighborRequests(in: effects).filter { $0.highPriority && passive.contains($0.peer) }
                .map(\.peer)
        }
        #expect(highAfterTimeout.count == 1 && highAfterTimeout.first != high, "\(highAfterTimeout)")
        #expect(node.activeView.isEmpty)
    }

    /// A join forces a link at the seed, and its walks end in forced
    /// links: a node that still has passive peers asks them first (after a
    /// mass failure, every node emptied joined through the same seed, and
    /// a join went out beside the high-priority request; found by
    /// review). Once no passive peer is left, it joins again.
    @Test("an emptied node asks its passive peers before it joins through a seed again")
    func passivePeersBeforeTheSeed() throws {
        var effects: [GossipEffect] = []
        let (peer, start) = (Self.peer, Self.start)
        var configuration = GossipConfiguration()
        configuration.activeViewSize = 3
        var node = try GossipInstance(id: NodeID(1), endpoint: try peer(1), configuration: configuration, seed: 7, now: .zero)
        let seed = try peer(99)
        node.join(seeds: [seed], now: start, into: &effects)
        node.receive(.neighborReply(accepted: true), from: seed, now: start, into: &effects)
        for last in 2...3 { node.receive(.join, from: try peer(last), now: start, into: &effects) }
        let passive = try (5...7).map(peer)
        node.receive(.shuffleReply(sample: passive), from: try peer(2), now: start, into: &effects)
        effects.removeAll()
        // Everything falls silent: the three neighbours are dropped in one
        // tick, the passive peers asked; they never answer, time out and
        // leave the passive view; then the seed is asked to join.
        var now = start
        var joinedAt: Instant?
        var askedBeforeJoin: Set<Endpoint> = []
        while joinedAt == nil && now < start + .seconds(10) {
            effects.removeAll()
            now = node.nextDeadline
            node.tick(now: now, into: &effects)
            for request in Self.neighborRequests(in: effects) { askedBeforeJoin.insert(request.peer) }
            if effects.contains(where: { if case .send(.join, seed) = $0 { true } else { false } }) { joinedAt = now }
        }
        #expect(joinedAt != nil, "never joined again")
        #expect(Set(passive).isSubset(of: askedBeforeJoin), "asked \(askedBeforeJoin)")
        #expect(node.passiveView.isEmpty)
    }

    /// Requests to newcomers a forward join named are anyone's to cause:
    /// their refusals are not remembered (found by review: 5,000 forward
    /// joins naming refusing addresses left 5,000 refusals on a full node).
    @Test("refusals of requests to newcomers are not kept, and kept ones are pruned to the passive view")
    func refusalsBounded() throws {
        var effects: [GossipEffect] = []
        var node = try FailedPeerTests.nodeWithThreeNeighbors(into: &effects)
        let (peer, start) = (Self.peer, Self.start)
        for index in 0..<50 {
            let newcomer = try Endpoint(parsing: "10.9.0.\(index):7000")
            node.receive(.forwardJoin(newcomer: newcomer, timeToLive: 0), from: try peer(2), now: start, into: &effects)
            node.receive(.neighborReply(accepted: false), from: newcomer, now: start, into: &effects)
        }
        #expect(node.refusals.isEmpty, "\(node.refusals.count) refusals")
        // A refusal of the node's own request is kept, and forgotten a
        // reconnect interval later.
        node.receive(.shuffleReply(sample: [try peer(5)]), from: try peer(2), now: start, into: &effects)
        node.receive(.disconnect, from: try peer(4), now: start, into: &effects)
        node.tick(now: start, into: &effects)
        for request in Self.neighborRequests(in: effects) {
            node.receive(.neighborReply(accepted: false), from: request.peer, now: start, into: &effects)
        }
        #expect(!node.refusals.isEmpty)
        var now = start
        while now <= start + node.configuration.reconnectInterval * 2 {
            for neighbor in try [peer(2), peer(3)] { node.receive(.heartbeat, from: neighbor, now: now, into: &effects) }
            now = now + .milliseconds(250)
            node.tick(now: now, into: &effects)
            effects.removeAll()
        }
        #expect(node.refusals.allSatisfy { now - $0.value < node.configuration.reconnectInterval }, "\(node.refusals)")
    }

    /// A node one neighbour short in an overlay whose peers have full
    /// views: each low-priority request is refused. A driver ticks every
    /// 10 ms (as lazy pushes make it); the node asked a passive peer again
    /// at every tick, a hundred requests a second for as long as the
    /// overlay stayed full.
    @Test("a passive peer that refused is not asked again until a reconnect interval has passed")
    func refusalsRemembered() throws {
        var effects: [GossipEffect] = []
        var node = try FailedPeerTests.nodeWithThreeNeighbors(into: &effects)
        let (peer, start) = (Self.peer, Self.start)
        node.receive(.shuffleReply(sample: try (5...8).map(peer)), from: try peer(2), now: start, into: &effects)
        node.receive(.disconnect, from: try peer(4), now: start, into: &effects)
        #expect(node.activeView.count == 2)
        let interval = node.configuration.reconnectInterval
        var asked: [Endpoint: [Instant]] = [:]
        var now = start
        while now < start + interval * 2 {
            for neighbor in try [peer(2), peer(3)] { node.receive(.heartbeat, from: neighbor, now: now, into: &effects) }
            node.tick(now: now, into: &effects)
            for request in Self.neighborRequests(in: effects) {
                #expect(!request.highPriority)
                asked[request.peer, default: []].append(now)
                node.receive(.neighborReply(accepted: false), from: request.peer, now: now, into: &effects)
            }
            effects.removeAll()
            now = now + .milliseconds(10)
        }
        // Each of the five passive peers asked, again after the interval,
        // and never sooner.
        #expect(Set(asked.keys) == Set(try [4, 5, 6, 7, 8].map(peer)), "\(asked)")
        for (peer, times) in asked {
            #expect(times.count == 2, "\(peer): \(times)")
            for (earlier, later) in zip(times, times.dropFirst()) { #expect(later - earlier >= interval, "\(peer)") }
        }
        #expect(node.activeView.count == 2)
        // A peer with room accepts: the view is full again.
        let request = try #require(asked.keys.first)
        node.receive(.neighbor(highPriority: false), from: request, now: now, into: &effects)
        #expect(node.activeView.count == 3)
    }
}
