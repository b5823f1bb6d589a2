import EventCore
import Simulation
import SWIM
import Testing
import WireCodec

/// Forged, stale and malformed input against a SWIM instance (sans-IO):
/// each is dropped or refuted and counted, nothing traps, and the member's
/// own view stays right.
@Suite("SWIM hostile input")
struct HostileInputTests {
    static let selfID = NodeID(1)
    static let here = try! Endpoint(parsing: "127.0.0.1:7000")
    static let peer = try! Endpoint(parsing: "127.0.0.1:7001")
    static let start = Instant(nanoseconds: 1_000_000_000)

    /// An instance that knows member 2 (at `peer`, incarnation 5).
    static func instance() throws -> SWIMInstance {
        var instance = try SWIMInstance(id: selfID, endpoint: here, seed: 1, now: start)
        var effects: [SWIMEffect] = []
        instance.join(seeds: [], now: start, into: &effects)
        let member = Member(id: NodeID(2), endpoint: peer, incarnation: 5, status: .alive)
        instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip, updates: [.alive(member)]), from: peer,
                         now: start, into: &effects)
        return instance
    }

    /// An instance with `configuration` that started a cluster of its own.
    static func alone(_ configuration: SWIMConfiguration, into effects: inout [SWIMEffect]) throws -> SWIMInstance {
        var instance = try SWIMInstance(id: selfID, endpoint: here, configuration: configuration, seed: 1, now: start)
        instance.join(seeds: [], now: start, into: &effects)
        return instance
    }

    @Test("a suspicion or death claim about us is refuted with a higher incarnation")
    func refutesClaimsAboutUs() throws {
        var instance = try Self.instance()
        var effects: [SWIMEffect] = []
        instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip,
                                     updates: [.suspect(Self.selfID, incarnation: 0, by: NodeID(2))]),
                         from: Self.peer, now: Self.start, into: &effects)
        #expect(instance.incarnation == 1)
        instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip,
                                     updates: [.dead(Self.selfID, incarnation: 40, by: NodeID(2))]),
                         from: Self.peer, now: Self.start, into: &effects)
        #expect(instance.incarnation == 41)
        #expect(instance.counters.refutations == 2)
        #expect(instance.localMember.status == .alive)
        // The refutation goes straight back to the accuser.
        let toAccuser = effects.contains { effect in
            if case .send(let message, let destination) = effect, destination == Self.peer,
               message.updates.contains(.alive(instance.localMember)) { return true }
            return false
        }
        #expect(toAccuser)
    }

    @Test("a claim about us above maximumClaimedIncarnation is counted, not refuted; at it, refuted, and peers take the refutation")
    func absurdClaims() throws {
        var instance = try Self.instance()
        var effects: [SWIMEffect] = []
        let limit = Member.maximumClaimedIncarnation
        let absurd: [SWIMUpdate] = [
            .suspect(Self.selfID, incarnation: limit + 1, by: NodeID(2)),
            .dead(Self.selfID, incarnation: Member.maximumIncarnation, by: NodeID(2)),
            .suspect(Self.selfID, incarnation: .max, by: NodeID(2)),
        ]
        instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip, updates: absurd), from: Self.peer,
                         now: Self.start, into: &effects)
        #expect(instance.counters.absurdIncarnations == absurd.count)
        #expect(instance.incarnation == 0)
        // At the limit: refuted, one above it.
        instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip,
                                     updates: [.suspect(Self.selfID, incarnation: limit, by: NodeID(2))]),
                         from: Self.peer, now: Self.start, into: &effects)
        #expect(instance.incarnation == limit + 1)
        // A peer that applied the claim takes the refutation.
        var peer = try SWIMInstance(id: NodeID(2), endpoint: Self.peer, seed: 2, now: Self.start)
        var peerEffects: [SWIMEffect] = []
        peer.join(seeds: [], now: Self.start, into: &peerEffects)
        peer.receive(SWIMMessage(sender: Self.selfID, body: .gossip, updates: [.alive(Member(id: Self.selfID, endpoint: Self.here, incarnation: 0, status: .alive))]),
                     from: Self.here, now: Self.start, into: &peerEffects)
        peer.receive(SWIMMessage(sender: NodeID(3), body: .gossip,
                                 updates: [.suspect(Self.selfID, incarnation: limit, by: NodeID(3))]),
                     from: Self.here, now: Self.start, into: &peerEffects)
        #expect(peer.member(Self.selfID)?.status == .suspect)
        peer.receive(SWIMMessage(sender: Self.selfID, body: .gossip, updates: [.alive(instance.localMember)]),
                     from: Self.here, now: Self.start, into: &peerEffects)
        #expect(peer.member(Self.selfID)?.status == .alive)
        #expect(peer.member(Self.selfID)?.incarnation == limit + 1)
        // A real suspicion at our incarnation, above the limit now, is
        // refuted as usual.
        instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip,
                                     updates: [.suspect(Self.selfID, incarnation: limit + 1, by: NodeID(2))]),
                         from: Self.peer, now: Self.start, into: &effects)
        #expect(instance.incarnation == limit + 2)
        #expect(instance.counters.absurdIncarnations == absurd.count)
    }

    @Test("stale incarnations are ignored and counted")
    func staleIncarnations() throws {
        var instance = try Self.instance()
        var effects: [SWIMEffect] = []
        let stale: [SWIMUpdate] = [
            .suspect(NodeID(2), incarnation: 4, by: NodeID(3)),
            .dead(NodeID(2), incarnation: 1, by: NodeID(3)),
            .alive(Member(id: NodeID(2), endpoint: Self.peer, incarnation: 2, status: .alive)),
        ]
        instance.receive(SWIMMessage(sender: NodeID(3), body: .gossip, updates: stale), from: Self.peer,
                         now: Self.start, into: &effects)
        #expect(instance.member(NodeID(2))?.status == .alive)
        #expect(instance.member(NodeID(2))?.incarnation == 5)
        #expect(instance.counters.staleUpdates == 3)
        #expect(!effects.contains { if case .memberEvent = $0 { true } else { false } })
    }

    @Test("messages claiming our ID, misdirected pings and updates about unknown members are dropped and counted")
    func forgedMessages() throws {
        var instance = try Self.instance()
        var effects: [SWIMEffect] = []
        instance.receive(SWIMMessage(sender: Self.selfID, body: .ping(sequence: 1, target: Self.selfID)),
                         from: Self.peer, now: Self.start, into: &effects)
        instance.receive(SWIMMessage(sender: NodeID(2), body: .ping(sequence: 1, target: NodeID(99))),
                         from: Self.peer, now: Self.start, into: &effects)
        instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip,
                                     updates: [.suspect(NodeID(77), incarnation: 3, by: NodeID(2))]),
                         from: Self.peer, now: Self.start, into: &effects)
        #expect(instance.counters.impostorMessages == 1)
        #expect(instance.counters.misdirectedPings == 1)
        #expect(instance.counters.staleUpdates == 1)
        #expect(instance.member(NodeID(77)) == nil)
        #expect(!effects.contains { if case .send = $0 { true } else { false } })
    }

    @Test("a push-pull reply fills maximumStateSize counted exactly, IPv6 members with large incarnations included")
    func pushPullWithinStateSize() throws {
        var configuration = SWIMConfiguration()
        configuration.maximumStateSize = 4_096
        var effects: [SWIMEffect] = []
        var instance = try Self.alone(configuration, into: &effects)
        // 38 bytes each in a push-pull: 300 of them are nearly 3 times the
        // state size.
        let forged = (2...301).map { number in
            Member(id: NodeID(UInt64(number)), endpoint: try! Endpoint(parsing: "[fd00::\(number)]:7946"),
                   incarnation: Member.maximumIncarnation, status: .alive)
        }
        instance.receive(SWIMMessage(sender: NodeID(2), body: .pushPull(members: forged, isReply: true)),
                         from: Self.peer, now: Self.start, into: &effects)
        effects.removeAll()
        instance.receive(SWIMMessage(sender: NodeID(2), body: .pushPull(members: [], isReply: false)),
                         from: Self.peer, now: Self.start, into: &effects)
        let reply = try #require(effects.lazy.compactMap { effect -> SWIMMessage? in
            if case .send(let message, _) = effect, case .pushPull(_, true) = message.body { message } else { nil }
        }.first)
        guard case .pushPull(let members, _) = reply.body else { return }
        var writer = WireWriter()
        reply.encode(to: &writer)
        #expect(writer.count <= configuration.maximumStateSize)
        // Filled: one member more would not have fitted (the count's varint
        // is budgeted at 5 bytes; it takes 2 here).
        #expect(writer.count + 38 + 3 > configuration.maximumStateSize)
        #expect(members.count > 1 && members.count < forged.count + 1)
    }

    @Test("maximumStateSize is at most 4 MiB, what a frame and the UDP transport's default message carry")
    func stateSizeLimit() {
        var configuration = SWIMConfiguration()
        configuration.maximumStateSize = 4 << 20
        #expect(throws: Never.self) { try configuration.validate() }
        configuration.maximumStateSize = (4 << 20) + 1
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
    }

    /// A push-pull the transport refuses would never leave: members would
    /// never merge their states.
    @Test("a node refuses a transport that cannot carry a push-pull of maximumStateSize, naming the setting")
    func stateSizeFitsTransport() throws {
        let network = SimulatedNetwork(seed: 5)
        network.maximumMessageSize = 64 << 10
        let host = network.addNode()
        var configuration = SWIMConfiguration()
        configuration.maximumStateSize = 64 << 10
        let error = #expect(throws: ConfigurationError.self) {
            try SWIMNode(transport: host, scheduler: host, configuration: configuration)
        }
        #expect(error?.field == "maximumStateSize")
        configuration.maximumStateSize = (64 << 10) - FrameHeader.size
        #expect(throws: Never.self) { try SWIMNode(transport: host, scheduler: host, configuration: configuration) }
    }

    @Test("a flood of forged members stops at maximumMembers")
    func memberFlood() throws {
        var configuration = SWIMConfiguration()
        configuration.maximumMembers = 100
        var instance = try SWIMInstance(id: Self.selfID, endpoint: Self.here, configuration: configuration, seed: 1,
                                        now: Self.start)
        var effects: [SWIMEffect] = []
        let forged = (2..<1_002).map { Member(id: NodeID(UInt64($0)), endpoint: Self.peer, incarnation: 0, status: .alive) }
        instance.receive(SWIMMessage(sender: NodeID(2), body: .pushPull(members: forged, isReply: true)),
                         from: Self.peer, now: Self.start, into: &effects)
        #expect(instance.allMembers.count == 101)
        #expect(instance.counters.membersRefused == 900)
    }

    @Test("a flood of news stops at membershipQueueCapacity, dropping the most-sent updates and counting them")
    func membershipQueueBound() throws {
        var configuration = SWIMConfiguration()
        configuration.membershipQueueCapacity = 64
        var effects: [SWIMEffect] = []
        var instance = try Self.alone(configuration, into: &effects)
        // A reply: members past the first 64 are queued as nearly sent
        // (the replier's side knows them), so they are dropped first.
        let flood = (2..<302).map {
            Member(id: NodeID(UInt64($0)), endpoint: Self.peer, incarnation: 0, status: .alive)
        }
        instance.receive(SWIMMessage(sender: NodeID(2), body: .pushPull(members: flood, isReply: true)),
                         from: Self.peer, now: Self.start, into: &effects)
        #expect(instance.allMembers.count == 301)
        #expect(instance.queuedUpdateCount == 64)
        #expect(instance.counters.membershipUpdatesDropped == 301 - 64)
        // News arriving now (a suspicion) is kept: it has not been sent.
        instance.receive(SWIMMessage(sender: NodeID(3), body: .gossip,
                                     updates: [.suspect(NodeID(9), incarnation: 0, by: NodeID(3))]),
                         from: Self.peer, now: Self.start, into: &effects)
        #expect(instance.queuedUpdateCount == 64)
        effects.removeAll()
        instance.tick(now: Self.start + .milliseconds(100), into: &effects)
        let sent = effects.flatMap { effect -> [SWIMUpdate] in
            if case .send(let message, _) = effect { return message.updates }
            return []
        }
        #expect(sent.contains(.suspect(NodeID(9), incarnation: 0, by: NodeID(3))))
    }

    @Test("oversized metadata and broadcasts are refused with typed errors")
    func limits() throws {
        var instance = try Self.instance()
        #expect(throws: SWIMError.self) { try instance.setMetadata(Array(repeating: 1, count: 129), now: Self.start) }
        #expect(throws: SWIMError.self) { try instance.broadcast(Array(repeating: 1, count: 257), now: Self.start) }
        #expect(throws: ConfigurationError.self) {
            _ = try SWIMInstance(id: Self.selfID, endpoint: Self.here, metadata: Array(repeating: 0, count: 500),
                                 seed: 1, now: Self.start)
        }
        var bad = SWIMConfiguration()
        bad.probeTimeout = .seconds(2)
        #expect(throws: ConfigurationError.self) { try bad.validate() }
        var tiny = SWIMConfiguration()
        tiny.membershipQueueCapacity = 63
        #expect(throws: ConfigurationError.self) { try tiny.validate() }
    }

    @Test("a broadcast is delivered once however often it arrives")
    func broadcastOnce() throws {
        var instance = try Self.instance()
        var effects: [SWIMEffect] = []
        let broadcast = SWIMBroadcast(origin: NodeID(2), sequence: 1, payload: [1, 2, 3])
        for _ in 0..<5 {
            instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip, updates: [.broadcast(broadcast)]),
                             from: Self.peer, now: Self.start, into: &effects)
        }
        let deliveries = effects.filter { if case .deliver = $0 { true } else { false } }
        #expect(deliveries.count == 1)
    }

    @Test("a member restarted with its old ID and a new seed has its broadcasts delivered, not taken for its earlier run's")
    func broadcastsAfterRestart() throws {
        var instance = try Self.instance()
        var effects: [SWIMEffect] = []
        for seed: UInt64 in [2, 3] {
            // Member 2's incarnation of this seed broadcasts twice.
            var origin = try SWIMInstance(id: NodeID(2), endpoint: Self.peer, seed: seed, now: Self.start)
            let first = try origin.broadcast([UInt8(seed)], now: Self.start)
            let second = try origin.broadcast([UInt8(seed), 1], now: Self.start)
            #expect(second == first &+ 1)
            for (sequence, payload) in [(first, [UInt8(seed)]), (second, [UInt8(seed), 1])] {
                let broadcast = SWIMBroadcast(origin: NodeID(2), sequence: sequence, payload: payload)
                instance.receive(SWIMMessage(sender: NodeID(2), body: .gossip, updates: [.broadcast(broadcast)]),
                                 from: Self.peer, now: Self.start, into: &effects)
            }
        }
        let delivered = effects.compactMap { effect -> [UInt8]? in
            if case .deliver(let broadcast) = effect { broadcast.payload } else { nil }
        }
        #expect(delivered == [[2], [2, 1], [3], [3, 1]])
    }

    @Test("an announcement is ignored and counted while discovery is off: no state goes to the endpoint it names")
    func announcementWithoutDiscovery() throws {
        var instance = try Self.instance()
        var effects: [SWIMEffect] = []
        let victim = try Endpoint(parsing: "192.0.2.7:9")
        instance.receive(SWIMMessage(sender: NodeID(66), body: .announce(cluster: SWIMConfiguration().clusterName, endpoint: victim)),
                         from: Self.peer, now: Self.start, into: &effects)
        #expect(instance.counters.announcementsIgnored == 1)
        #expect(!effects.contains { if case .send(_, victim) = $0 { true } else { false } })
    }

    @Test("with discovery on, an announcement is answered at its datagram's source, not at the endpoint it names")
    func announcementAnsweredAtSource() throws {
        var configuration = SWIMConfiguration()
        configuration.multicastGroup = try Endpoint(parsing: "239.255.0.1:7946")
        var effects: [SWIMEffect] = []
        var instance = try Self.alone(configuration, into: &effects)
        effects.removeAll()
        let victim = try Endpoint(parsing: "192.0.2.7:9")
        instance.receive(SWIMMessage(sender: NodeID(66), body: .announce(cluster: configuration.clusterName, endpoint: victim)),
                         from: Self.peer, now: Self.start, into: &effects)
        let answeredAt = effects.compactMap { effect -> Endpoint? in
            if case .send(let message, let destination) = effect, case .pushPull = message.body { destination } else { nil }
        }
        #expect(answeredAt == [Self.peer])
    }
}
