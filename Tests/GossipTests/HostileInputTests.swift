import EventCore
import Gossip
import Simulation
import Testing
import WireCodec

/// A node under attack from a raw simulated peer: floods of distinct
/// messages, announcements and garbage cost bounded memory, are counted,
/// and leave the node working.
@Suite("Gossip under hostile input")
struct HostileInputTests {
    /// A small cluster plus a raw attacker node that speaks gossip frames.
    struct Setup {
        let cluster: SimulatedCluster
        let attacker: SimulatedNode
        var target: GossipNode { cluster.drivers[1]! }
        var targetEndpoint: Endpoint { cluster.nodes[1].localEndpoint }

        init(configuration: GossipConfiguration, seed: UInt64) throws {
            cluster = try SimulatedCluster(count: 8, seed: seed, configuration: configuration)
            attacker = cluster.network.addNode()
            cluster.network.run(for: .seconds(3))
        }

        func send(_ message: GossipMessage) {
            var writer = WireWriter()
            message.encodeFrame(into: &writer)
            try? attacker.send(writer.bytes, to: targetEndpoint)
        }
    }

    static var configuration: GossipConfiguration {
        var configuration = GossipConfiguration(mode: .plumtree)
        configuration.retentionCapacity = 256
        configuration.maximumMissingMessages = 512
        configuration.maximumTrackedOrigins = 128
        return configuration
    }

    @Test("a flood of distinct broadcasts from distinct origins keeps retention and dedup state at their caps")
    func distinctMessageFlood() throws {
        let setup = try Setup(configuration: Self.configuration, seed: 0xF100D)
        for number in 0..<20_000 {
            let id = MessageID(origin: NodeID(UInt64(number) &+ 1_000_000), sequence: UInt32(number))
            setup.send(.data(GossipData(id: id, hops: 1, payload: [UInt8](repeating: 1, count: 400))))
            if number % 1_000 == 0 { setup.cluster.network.run(for: .milliseconds(10)) }
        }
        setup.cluster.network.run(for: .seconds(2))
        let target = setup.target
        #expect(target.retainedCount <= 256)
        #expect(target.trackedOriginCount <= 128)
        #expect(target.counters.originsForgotten > 0)
        // More origins than are tracked: a message whose origin a node
        // forgot, and which it no longer retains, is delivered again when a
        // peer that retains it offers it. That ends with the retention
        // period, counted from the broadcast (GossipData.age): counted from
        // each node's own receipt, every such pull kept the message a whole
        // period more, and the redeliveries never stopped. And a node no
        // longer takes a message it retains for new.
        setup.cluster.network.run(for: Self.configuration.retentionPeriod + .seconds(5))
        let afterRetention = setup.cluster.redeliveries
        setup.cluster.network.run(for: .seconds(20))
        #expect(setup.cluster.redeliveries == afterRetention)
        // Still working: a real broadcast reaches everyone.
        let ids = setup.cluster.broadcast(3, every: .milliseconds(100))
        setup.cluster.network.run(for: .seconds(3))
        #expect(setup.cluster.undelivered(ids) == 0)
    }

    @Test("a flood of announcements for messages that never come is capped and counted")
    func announcementFlood() throws {
        let setup = try Setup(configuration: Self.configuration, seed: 0xA11CE)
        for batch in 0..<2_000 {
            let ids = (0..<30).map { MessageID(origin: NodeID(7), sequence: UInt32(batch * 30 + $0)) }
            setup.send(.ihave(ids))
        }
        setup.cluster.network.run(for: .milliseconds(20))
        #expect(setup.target.missingCount <= 512)
        #expect(setup.target.counters.announcementsDropped > 0)
        // The grafts go to the attacker, get nothing, and are given up.
        setup.cluster.network.run(for: .seconds(2))
        #expect(setup.target.missingCount == 0)
    }

    @Test("garbage, foreign protocols and oversized frames are dropped and counted")
    func garbage() throws {
        let setup = try Setup(configuration: Self.configuration, seed: 0x6A4B)
        var random = SeededRandomGenerator(seed: 0x6A4B)
        var sent = 0
        for _ in 0..<500 {
            let bytes = (0..<Int.random(in: 0..<100, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            try setup.attacker.send(bytes, to: setup.targetEndpoint)
            sent += 1
        }
        var writer = WireWriter()
        try Frame.encode(protocol: .raft, into: &writer) { $0.writeUInt8(1) }
        try setup.attacker.send(writer.bytes, to: setup.targetEndpoint)
        writer.removeAll()
        GossipMessage.data(GossipData(id: MessageID(origin: NodeID(5), sequence: 0), hops: 1, payload: [UInt8](repeating: 0, count: 600)))
            .encodeFrame(into: &writer)
        try setup.attacker.send(writer.bytes, to: setup.targetEndpoint)
        setup.cluster.network.run(for: .milliseconds(100))
        #expect(setup.target.counters.malformedFramesDropped == sent + 2)
        #expect(setup.target.counters.delivered == 0)
        let ids = setup.cluster.broadcast(2, every: .milliseconds(100))
        setup.cluster.network.run(for: .seconds(2))
        #expect(setup.cluster.undelivered(ids) == 0)
    }

    /// A frame may be a byte longer than maximumMessageSize (a repair's
    /// tag): a data message one byte over the payload limit was taken,
    /// retained and pulled at every anti-entropy round, and every repair of
    /// it was dropped as malformed.
    @Test("data and repairs with a payload above maximumPayloadSize are dropped and counted")
    func oversizedPayloadDropped() throws {
        var node = try GossipInstance(
            id: NodeID(1), endpoint: try FailedPeerTests.peer(1), configuration: Self.configuration, seed: 9, now: .zero)
        var effects: [GossipEffect] = []
        let limit = Self.configuration.maximumPayloadSize
        let over = GossipData(id: MessageID(origin: NodeID(5), sequence: 1), hops: 1, payload: Array(repeating: 1, count: limit + 1))
        let at = GossipData(id: MessageID(origin: NodeID(5), sequence: 2), hops: 1, payload: Array(repeating: 1, count: limit))
        node.receive(.data(over), from: try FailedPeerTests.peer(2), now: .zero, into: &effects)
        node.receive(.repair(over), from: try FailedPeerTests.peer(2), now: .zero, into: &effects)
        node.receive(.data(at), from: try FailedPeerTests.peer(2), now: .zero, into: &effects)
        let delivered = effects.compactMap { effect -> MessageID? in
            if case .deliver(let delivery) = effect { delivery.id } else { nil }
        }
        #expect(delivered == [at.id])
        #expect(node.counters.oversizedPayloadsDropped == 2)
    }

    /// One datagram used to start a 255-hop walk, or draw 64 copies of a
    /// payload by naming one ID 64 times.
    @Test("walks are no longer than this node starts; a GRAFT or PULL naming one ID many times is served once")
    func amplificationBounded() throws {
        var node = try GossipInstance(
            id: NodeID(1), endpoint: try FailedPeerTests.peer(1), configuration: Self.configuration, seed: 10, now: .zero)
        var effects: [GossipEffect] = []
        for last in 2...4 { node.receive(.join, from: try FailedPeerTests.peer(last), now: .zero, into: &effects) }
        effects.removeAll()
        node.receive(.forwardJoin(newcomer: try FailedPeerTests.peer(9), timeToLive: 255), from: try FailedPeerTests.peer(2),
                     now: .zero, into: &effects)
        node.receive(.shuffle(origin: try FailedPeerTests.peer(8), timeToLive: 255, sample: []), from: try FailedPeerTests.peer(2),
                     now: .zero, into: &effects)
        for effect in effects {
            switch effect {
            case .send(.forwardJoin(_, let timeToLive), _), .send(.shuffle(_, let timeToLive, _), _):
                #expect(Int(timeToLive) < Self.configuration.activeRandomWalkLength, "\(effect)")
            default: break
            }
        }
        let id = try node.broadcast([7], now: .zero, into: &effects)
        effects.removeAll()
        node.receive(.graft(Array(repeating: id, count: 64)), from: try FailedPeerTests.peer(2), now: .zero, into: &effects)
        node.receive(.pull(Array(repeating: id, count: 64)), from: try FailedPeerTests.peer(3), now: .zero, into: &effects)
        let copies = effects.filter { effect in
            switch effect {
            case .send(.data, _), .send(.repair, _): true
            default: false
            }
        }
        #expect(copies.count == 2)
    }

    /// A shuffle is answered with a sample of the passive view as large as
    /// the shuffle's own: a shuffle of many IPv4 entries drew as many IPv6
    /// ones, a frame longer than any peer takes (dropped as malformed),
    /// sent to whatever origin the shuffle named. The gossip fuzz target
    /// (Scripts/fuzz gossip) checks every message a node sends for this.
    @Test("the answer to a shuffle with a large sample fits one message")
    func largeShuffleAnswerFits() throws {
        let configuration = GossipConfiguration()
        var node = try GossipInstance(
            id: NodeID(1), endpoint: try FailedPeerTests.peer(1), configuration: configuration, seed: 11, now: .zero)
        var effects: [GossipEffect] = []
        // A passive view full of IPv6 peers, from two answers that each fit
        // a message.
        let standby = try (1...configuration.passiveViewSize).map { try Endpoint(parsing: "[2001:db8::\($0)]:7000") }
        for half in [standby[..<15], standby[15...]] {
            node.receive(.shuffleReply(sample: Array(half)), from: try FailedPeerTests.peer(2), now: .zero, into: &effects)
        }
        #expect(node.passiveView.count == configuration.passiveViewSize)
        // A shuffle of 64 IPv4 entries (a frame of 471 bytes) ending here.
        let sample = try (0..<64).map { try Endpoint(parsing: "10.1.0.\($0):7000") }
        node.receive(
            .shuffle(origin: try Endpoint(parsing: "10.2.0.1:7000"), timeToLive: 0, sample: sample),
            from: try FailedPeerTests.peer(3), now: .zero, into: &effects)
        let answers = effects.compactMap { effect -> [Endpoint]? in
            if case .send(.shuffleReply(let answer), _) = effect { answer } else { nil }
        }
        #expect(answers.count == 1)
        #expect(answers.first.map { !$0.isEmpty && Set($0).isSubset(of: Set(standby)) } == true)
        for case .send(let message, _) in effects {
            var writer = WireWriter()
            message.encodeFrame(into: &writer)
            #expect(writer.count <= configuration.maximumMessageSize, "\(message)")
        }
    }

    @Test("a digest claiming billions of messages costs bounded work and one bounded pull")
    func hugeDigest() throws {
        let setup = try Setup(configuration: Self.configuration, seed: 0xD16E)
        var pulls: [[MessageID]] = []
        setup.attacker.setReceiveHandler { bytes, _, _ in
            guard let (_, body) = try? Frame.decode(bytes), case .pull(let ids)? = try? GossipMessage(decoding: body)
            else { return }
            pulls.append(ids)
        }
        let runs = (0..<20).map { DigestRun(origin: NodeID(UInt64($0) + 99), first: 0, count: UInt32.max) }
        setup.send(.digest(runs, isReply: true))
        setup.cluster.network.run(for: .milliseconds(50))
        #expect(pulls.count == 1)
        #expect(pulls.first.map { $0.count <= Self.configuration.maximumPullCount } == true)
        #expect(setup.target.trackedOriginCount <= 128)
    }

    @Test("a flood of forward joins naming distinct newcomers sends at most twice the active view of neighbour requests at a time, and counts the rest")
    func forwardJoinFlood() throws {
        let setup = try Setup(configuration: Self.configuration, seed: 0xF0F0)
        let sentBefore = setup.target.counters.controlMessagesSent
        for number in 0..<500 {
            let newcomer = try Endpoint(parsing: "10.9.\(number / 256).\(number % 256):7000")
            setup.send(.forwardJoin(newcomer: newcomer, timeToLive: 0))
        }
        setup.cluster.network.run(for: .milliseconds(50))
        let bound = 2 * Self.configuration.activeViewSize
        #expect(setup.target.counters.neighborRequestsRefused >= 500 - bound)
        #expect(setup.target.counters.controlMessagesSent - sentBefore < bound + 50)
    }

    /// Endpoints `10.9.0.x:7000` standing for newcomers a forged forward
    /// join names, that never answer.
    static func forgedNewcomers(_ count: Int) throws -> [Endpoint] {
        try (0..<count).map { try Endpoint(parsing: "10.9.\($0 / 256).\($0 % 256):7000") }
    }

    @Test("forward joins at their bound hold up neither the node's repair of its active view nor its join")
    func forwardJoinFloodLeavesOwnRequests() throws {
        let peer = { (last: Int) in try Endpoint(parsing: "10.0.0.\(last):7000") }
        let attacker = try peer(99)
        var effects: [GossipEffect] = []
        let now = Instant.zero + .seconds(1)
        let flood = try Self.forgedNewcomers(30)
        let neighborRequests = { (effects: [GossipEffect]) in
            effects.compactMap { effect -> Endpoint? in
                guard case .send(.neighbor, let destination) = effect else { return nil }
                return destination
            }
        }

        // Three neighbours, three standby peers; then a flood, then a
        // neighbour leaves: a request goes to a standby peer.
        var node = try GossipInstance(
            id: NodeID(1), endpoint: try peer(1), configuration: Self.configuration, seed: 7, now: .zero)
        for last in 2...4 { node.receive(.join, from: try peer(last), now: now, into: &effects) }
        node.receive(.shuffleReply(sample: try (5...7).map(peer)), from: try peer(2), now: now, into: &effects)
        for newcomer in flood {
            node.receive(.forwardJoin(newcomer: newcomer, timeToLive: 0), from: attacker, now: now, into: &effects)
        }
        #expect(neighborRequests(effects).count == 2 * Self.configuration.activeViewSize)
        effects.removeAll()
        node.receive(.disconnect, from: try peer(2), now: now, into: &effects)
        let repairs = neighborRequests(effects)
        #expect(!repairs.isEmpty)
        #expect(Set(repairs).isSubset(of: Set(try (2...7).map(peer))))

        // A node with no neighbour yet keeps trying its seed: the flood
        // after its first join still holds its requests when the join's
        // deadline passes.
        var joining = try GossipInstance(
            id: NodeID(2), endpoint: try peer(10), configuration: Self.configuration, seed: 8, now: .zero)
        let seed = try peer(1)
        joining.join(seeds: [seed], now: .zero, into: &effects)
        for newcomer in flood {
            joining.receive(
                .forwardJoin(newcomer: newcomer, timeToLive: 0), from: attacker, now: .zero + .milliseconds(100),
                into: &effects)
        }
        effects.removeAll()
        let retry = Instant.zero + Self.configuration.requestTimeout
        #expect(joining.nextDeadline <= retry)
        joining.tick(now: retry, into: &effects)
        let joins = effects.filter { effect in
            guard case .send(.join, let destination) = effect else { return false }
            return destination == seed
        }
        #expect(joins.count == 1)
    }
}
