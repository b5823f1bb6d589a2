import EventCore
@testable import Gossip
import Testing

/// When a node grafts what the tree did not bring, and what it sends on
/// once the message comes: the choices that keep the tree settled
/// (``PlumtreeStabilityTests`` measures the result over 100 overlays).
@Suite("Gossip graft timing")
struct GraftTimingTests {
    static let peer = FailedPeerTests.peer
    static let start = FailedPeerTests.start

    static func message(_ sequence: UInt32) -> GossipData {
        GossipData(id: MessageID(origin: NodeID(77), sequence: sequence), hops: 2, payload: [1, 2, 3])
    }

    /// The announcer grafted is back on the tree, but it has the message.
    /// Pushed to it when the message came another way first, it counted
    /// a duplicate and pruned the edge again (seen in traces of overlays
    /// whose tree never settled).
    @Test("a message is not sent on to a peer that announced it, grafted or not")
    func announcersNotSentTheMessage() throws {
        var effects: [GossipEffect] = []
        let (peer, start) = (Self.peer, Self.start)
        var configuration = GossipConfiguration()
        configuration.activeViewSize = 4
        var node = try GossipInstance(id: NodeID(1), endpoint: try peer(1), configuration: configuration, seed: 7, now: .zero)
        for last in 2...5 { node.receive(.join, from: try peer(last), now: start, into: &effects) }
        let (grafted, announcer, eager, other) = (try peer(2), try peer(3), try peer(4), try peer(5))
        let data = Self.message(1)
        node.receive(.ihave([data.id]), from: grafted, now: start, into: &effects)
        effects.removeAll()
        var now = start
        func graftSent() -> Bool { effects.contains { if case .send(.graft([data.id]), grafted) = $0 { true } else { false } } }
        while !graftSent() && now < start + node.configuration.graftTimeout {
            now = node.nextDeadline
            node.tick(now: now, into: &effects)
        }
        #expect(graftSent(), "\(effects)")
        node.receive(.ihave([data.id]), from: announcer, now: now, into: &effects)
        effects.removeAll()
        // The message comes from the third neighbour, the tree mended.
        node.receive(.data(data), from: eager, now: now + .milliseconds(1), into: &effects)
        #expect(effects.contains { if case .deliver = $0 { true } else { false } })
        let sentTo = effects.compactMap { effect -> Endpoint? in
            if case .send(.data(let sent), let destination) = effect, sent.id == data.id { destination } else { nil }
        }
        // Only the fourth neighbour, which neither announced nor sent it,
        // gets it: pushed, or announced at the next lazy flush.
        node.tick(now: now + node.configuration.lazyPushInterval * 2, into: &effects)
        let announcedTo = effects.compactMap { effect -> Endpoint? in
            if case .send(.ihave(let ids), let destination) = effect, ids.contains(data.id) { destination } else { nil }
        }
        #expect(sentTo + announcedTo == [other], "pushed to \(sentTo), announced to \(announcedTo)")
    }

    /// The announcers of a message are kept, asked or not, while it is
    /// missing: a grafted announcer that leaves the view is forgotten, and
    /// grafted ones do not take the places of new announcers (found by
    /// review: four grafted announcers gone, a fifth was ignored and the
    /// message left to anti-entropy).
    @Test("an announcer grafted and gone is forgotten; a new announcer is grafted after four")
    func announcersAfterGrafts() throws {
        let id = Self.message(1).id
        let timeout = Duration.milliseconds(100)
        let announcers = try (2...6).map(Self.peer)
        var now = Self.start
        var missing = MissingMessages(capacity: 8)
        func announce(_ announcer: Endpoint) {
            let announced = missing.announce(id, by: announcer, deadline: now + timeout)
            #expect(announced)
        }
        func graft() -> [Endpoint] {
            now = now + timeout
            return missing.takeExpired(now: now, retry: timeout).map(\.announcer)
        }
        // Four announcers grafted, none brought it: a fifth is grafted.
        for announcer in announcers.prefix(4) { announce(announcer) }
        var grafted: [Endpoint] = []
        for _ in 0..<4 { grafted += graft() }
        #expect(grafted == Array(announcers.prefix(4)))
        announce(announcers[4])
        #expect(graft() == [announcers[4]])
        // A grafted announcer that left the view is no longer one that has
        // the message.
        missing = MissingMessages(capacity: 8)
        for announcer in announcers.prefix(2) { announce(announcer) }
        #expect(graft() + graft() == Array(announcers.prefix(2)))
        missing.removeAnnouncer(announcers[0])
        let holders = missing.remove(id)
        #expect(holders == [announcers[1]])
    }

    /// A message just received is likely still on its way down the tree to
    /// the peer a digest goes to: pulled, it raced the tree's copy, and
    /// the loser, a duplicate, pruned an edge of a settled tree (traced by
    /// a seed sweep of ``PlumtreeStabilityTests``).
    /// In push mode anti-entropy is how the nodes push missed get a
    /// message, and a race costs a copy only: a young message is listed.
    @Test("in Plumtree mode a digest lists a message only once it was retained for a graft timeout and a lazy push interval; in push mode at once",
          arguments: [DisseminationMode.plumtree, .push])
    func youngMessagesLeftOutOfDigests(mode: DisseminationMode) throws {
        var effects: [GossipEffect] = []
        let (peer, start) = (Self.peer, Self.start)
        var node = try GossipInstance(
            id: NodeID(1), endpoint: try peer(1), configuration: GossipConfiguration(mode: mode), seed: 7, now: .zero)
        for last in 2...4 { node.receive(.join, from: try peer(last), now: start, into: &effects) }
        let data = Self.message(1)
        node.receive(.data(data), from: try peer(2), now: start, into: &effects)
        func listed(at now: Instant) -> Bool {
            effects.removeAll()
            node.receive(.digest([], isReply: false), from: try! peer(3), now: now, into: &effects)
            return effects.contains { effect in
                if case .send(.digest(let runs, isReply: true), _) = effect {
                    runs.contains { $0.ids.contains(data.id) }
                } else {
                    false
                }
            }
        }
        let settling = node.configuration.graftTimeout + node.configuration.lazyPushInterval
        #expect(node.settling == (mode == .push ? .zero : settling))
        #expect(listed(at: start) == (mode == .push))
        #expect(listed(at: start + settling - .milliseconds(1)) == (mode == .push))
        #expect(listed(at: start + settling))
        // A short retention period still leaves time to list a message.
        var short = GossipConfiguration(mode: mode)
        short.retentionPeriod = .milliseconds(100)
        let brief = try GossipInstance(id: NodeID(1), endpoint: try peer(1), configuration: short, seed: 7, now: .zero)
        #expect(brief.settling == (mode == .push ? .zero : .milliseconds(50)))
    }

    /// Every node a broken tree cut off hears the IHAVEs at about the
    /// same time; with one fixed wait they all grafted at once.
    @Test("the wait before a graft is a random part of the graft timeout, one per IHAVE")
    func graftWaitsSpread() throws {
        var waits: Set<Duration> = []
        for seed in UInt64(1)...20 {
            var effects: [GossipEffect] = []
            var node = try GossipInstance(
                id: NodeID(1), endpoint: try Self.peer(1), configuration: GossipConfiguration(), seed: seed, now: .zero)
            let announcer = try Self.peer(2)
            node.receive(.join, from: announcer, now: Self.start, into: &effects)
            let ids = (1...5).map { Self.message($0).id }
            node.receive(.ihave(ids), from: announcer, now: Self.start, into: &effects)
            let timeout = node.configuration.graftTimeout
            var grafts: [(at: Instant, ids: [MessageID])] = []
            var now = Self.start
            while now <= Self.start + timeout {
                effects.removeAll()
                now = now + .milliseconds(1)
                node.tick(now: now, into: &effects)
                for case .send(.graft(let grafted), announcer) in effects { grafts.append((now, grafted)) }
            }
            // One graft for the IHAVE's five messages, within the timeout,
            // not before half of it.
            #expect(grafts.count == 1 && grafts.first?.ids == ids, "seed \(seed): \(grafts)")
            guard let at = grafts.first?.at else { continue }
            #expect(at - Self.start >= timeout / 2 && at - Self.start <= timeout, "seed \(seed)")
            waits.insert(at - Self.start)
        }
        #expect(waits.count >= 10, "waits: \(waits.sorted())")
    }
}
