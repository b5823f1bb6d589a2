import EventCore
import Raft
import Simulation
import Testing
import WireCodec

/// Many Raft groups on one transport per machine, in the simulator: each
/// group elects, replicates and applies on its own, and a datagram reaches
/// only the node of its group.
@Suite("RaftGroupMultiplexer")
struct RaftGroupMultiplexerTests {
    /// Three machines, each one simulated node with a multiplexer and a
    /// ``RaftNode`` (and key-value map) per group.
    final class Machines {
        let network: SimulatedNetwork
        let nodes: [SimulatedNode]
        let multiplexers: [RaftGroupMultiplexer]
        /// By group, then machine.
        var replicas: [UInt64: [RaftNode]] = [:]
        var maps: [UInt64: [KeyValueStateMachine]] = [:]
        var storages: [UInt64: [InMemoryRaftStorage]] = [:]
        var acknowledged: [UInt64: Int] = [:]

        init(seed: UInt64, groups: ClosedRange<UInt64>) throws {
            let network = SimulatedNetwork(seed: seed)
            self.network = network
            nodes = (0..<3).map { _ in network.addNode() }
            multiplexers = try nodes.map { try RaftGroupMultiplexer(transport: $0, scheduler: $0) }
            for group in groups {
                maps[group] = (0..<3).map { _ in KeyValueStateMachine() }
                storages[group] = (0..<3).map { _ in InMemoryRaftStorage() }
                replicas[group] = try (0..<3).map { try start(group: group, on: $0) }
            }
        }

        /// A node of `group` on `machine`, on a new channel, on the
        /// machine's storage of the group (a restart, after the first).
        func start(group: UInt64, on machine: Int) throws -> RaftNode {
            var peers: [NodeID: Endpoint] = [:]
            for other in 0..<3 where other != machine { peers[NodeID(UInt64(other + 1))] = nodes[other].localEndpoint }
            return try RaftNode(
                id: NodeID(UInt64(machine + 1)), group: group, peers: peers, storage: storages[group]![machine],
                stateMachine: maps[group]![machine], transport: multiplexers[machine].channel(for: group),
                scheduler: nodes[machine], seed: network.seed &+ group &* 3 &+ UInt64(machine))
        }

        func leader(of group: UInt64) -> RaftNode? {
            replicas[group]!.filter { !$0.stopped && $0.role == .leader }.max { $0.term < $1.term }
        }

        /// Puts `key` in `group` through its leader.
        func put(_ key: String, in group: UInt64) {
            leader(of: group)?.propose(KeyValueCommand.put(key: key, value: [UInt8(group)]).encoded) { result in
                if case .success = result { self.acknowledged[group, default: 0] += 1 }
            }
        }

        /// Runs until every group has a leader (at most `limit`).
        func runUntilLeaders(within limit: Duration = .seconds(10)) -> Bool {
            let deadline = network.now + limit
            while replicas.keys.contains(where: { leader(of: $0) == nil }), network.now < deadline {
                network.run(for: .milliseconds(10))
            }
            return replicas.keys.allSatisfy { leader(of: $0) != nil }
        }
    }

    @Test("five groups share one transport per machine under loss and duplication; each applies its own writes only")
    func groupsAreIndependent() throws {
        let machines = try Machines(seed: 21, groups: 1...5)
        var conditions = machines.network.defaultConditions
        conditions.lossProbability = 0.05
        conditions.duplicateProbability = 0.05
        try machines.network.setDefaultConditions(conditions)
        #expect(machines.runUntilLeaders())
        for group: UInt64 in 1...5 {
            for write in 0..<Int(group) { machines.put("g\(group)-\(write)", in: group) }
        }
        machines.network.run(for: .seconds(5))

        for group: UInt64 in 1...5 {
            #expect(machines.acknowledged[group] == Int(group), "group \(group)")
            let expected = Dictionary(uniqueKeysWithValues: (0..<Int(group)).map { ("g\(group)-\($0)", [UInt8(group)]) })
            for map in machines.maps[group]! { #expect(map.values == expected, "group \(group)") }
        }
        for multiplexer in machines.multiplexers {
            #expect(multiplexer.groups == [1, 2, 3, 4, 5])
            #expect(multiplexer.counters.delivered > 0)
            #expect(multiplexer.counters.malformed == 0)
            #expect(multiplexer.counters.unclaimed == 0)
        }
        for replicas in machines.replicas.values {
            #expect(replicas.allSatisfy { $0.counters.malformedFramesDropped == 0 })
        }
    }

    @Test("datagrams that are not Raft frames, or that name no group here, are dropped and counted; a corrupted frame reaches its group's node, which drops it")
    func hostileDatagrams() throws {
        let machines = try Machines(seed: 22, groups: 1...2)
        #expect(machines.runUntilLeaders())
        let attacker = machines.network.addNode()
        let target = machines.nodes[0].localEndpoint
        var group1 = RaftMessage(
            group: 1, from: NodeID(9), to: NodeID(1), term: 1, body: .voteResponse(granted: true, isPreVote: false))
        var corrupted = try Self.encoded(group1)
        corrupted[corrupted.count - 1] ^= 0xFF
        group1.group = 77
        let unknownGroup = try Self.encoded(group1)

        let malformed: [[UInt8]] = [
            [],
            [0x05, 0xC4, 1],
            Array(repeating: 0xAB, count: 40),
            try Self.frame(.gossip, [0, 1]),
            try Self.frame(.raft, []),
            try Self.frame(.raft, [1]),
            try Self.frame(.raft, [1] + Array(repeating: 0xFF, count: 11)),
        ]
        for datagram in malformed { try attacker.send(datagram, to: target) }
        try attacker.send(unknownGroup, to: target)
        try attacker.send(corrupted, to: target)
        machines.network.run(for: .seconds(1))

        let counters = machines.multiplexers[0].counters
        #expect(counters.malformed == UInt64(malformed.count))
        #expect(counters.unclaimed == 1)
        #expect(machines.replicas[1]![0].counters.malformedFramesDropped == 1)
        #expect(machines.replicas[2]![0].counters.malformedFramesDropped == 0)

        // The groups go on.
        machines.put("after", in: 1)
        machines.put("after", in: 2)
        machines.network.run(for: .seconds(2))
        #expect(machines.acknowledged == [1: 1, 2: 1])
    }

    @Test("a stopped group's frames are unclaimed while the other groups go on; its replacement, created before the stop, keeps receiving")
    func stoppedGroup() throws {
        let machines = try Machines(seed: 23, groups: 1...2)
        #expect(machines.runUntilLeaders())

        // Group 2 on machine 3 is replaced: the new node (on the old one's
        // storage, with a new map it rebuilds from the log) is created
        // first, then the old one stops.
        let old = machines.replicas[2]![2]
        machines.maps[2]![2] = KeyValueStateMachine()
        let replacement = try machines.start(group: 2, on: 2)
        old.stop()
        machines.replicas[2]![2] = replacement
        machines.put("kept", in: 2)
        machines.network.run(for: .seconds(3))
        #expect(machines.acknowledged[2] == 1)
        #expect(machines.maps[2]![2].values["kept"] == [2], "the replacement receives its group's frames")
        #expect(machines.multiplexers[2].counters.unclaimed == 0)

        // A follower of group 1 stops: the frames the leader sends it are
        // dropped on its machine as unclaimed; group 1 still commits on
        // the other two, and group 2 on all three.
        let stopped = try #require(machines.replicas[1]!.firstIndex { $0.role != .leader })
        machines.replicas[1]![stopped].stop()
        machines.put("one", in: 1)
        machines.put("two", in: 2)
        machines.network.run(for: .seconds(3))
        #expect(machines.multiplexers[stopped].counters.unclaimed > 0)
        #expect(machines.multiplexers[stopped].groups == [2])
        #expect(machines.acknowledged == [1: 1, 2: 2])
        for machine in 0..<3 {
            #expect(machines.maps[1]![machine].values["one"] == (machine == stopped ? nil : [1]))
            #expect(machines.maps[2]![machine].values["two"] == [2])
        }
    }

    /// A frame of `protocolID` whose body is `body`.
    static func frame(_ protocolID: ProtocolID, _ body: [UInt8]) throws -> [UInt8] {
        var writer = WireWriter()
        try Frame.encode(protocol: protocolID, into: &writer) { frame in
            body.withUnsafeBytes { frame.writeRawBytes($0) }
        }
        return Array(writer.bytes)
    }

    /// A batch of Raft frames, as a multiplexer sends it: a Raft frame whose
    /// body is 0xFF and then the frames.
    static func batch(_ frames: [[UInt8]]) throws -> [UInt8] {
        try frame(.raft, [0xFF] + frames.joined())
    }

    /// `message`'s frame.
    static func encoded(_ message: RaftMessage) throws -> [UInt8] {
        var writer = WireWriter()
        try message.encodeFrame(into: &writer)
        return Array(writer.bytes)
    }

    @Test("idle groups' heartbeats to a peer, and the answers, travel in one datagram: 40 groups on 3 machines send 4 datagrams a machine per heartbeat interval")
    func heartbeatsCoalesce() throws {
        let machines = try Machines(seed: 24, groups: 1...40)
        #expect(machines.runUntilLeaders())
        machines.network.run(for: .seconds(1))
        let before = machines.multiplexers.map(\.counters)
        let leaderships = machines.replicas.values.joined().map(\.counters.leadershipsWon).reduce(0, +)
        let intervals = 40  // of the default 50 ms
        machines.network.run(for: .seconds(2))

        for (machine, multiplexer) in machines.multiplexers.enumerated() {
            let frames = multiplexer.counters.framesSent - before[machine].framesSent
            let datagrams = multiplexer.counters.datagramsSent - before[machine].datagramsSent
            // At each grid instant, a batch of heartbeats to each peer; on
            // each batch of heartbeats received, a batch of answers. Some
            // machines lead no group: a few datagrams are spare.
            #expect(datagrams <= UInt64(4 * (intervals + 1)), "machine \(machine + 1): \(datagrams) datagrams")
            #expect(frames >= 10 * datagrams, "machine \(machine + 1): \(frames) frames in \(datagrams) datagrams")
            #expect(multiplexer.counters.sendFailures == 0 && multiplexer.counters.malformed == 0)
        }
        // Nothing but heartbeats: no leader lost its place.
        #expect(machines.replicas.values.joined().map(\.counters.leadershipsWon).reduce(0, +) == leaderships)
        for group: UInt64 in [1, 20, 40] { machines.put("after", in: group) }
        machines.network.run(for: .seconds(1))
        #expect(machines.acknowledged == [1: 1, 20: 1, 40: 1])
    }

    @Test("a batch reaches each of its frames' groups; a batch that is not whole Raft frames is dropped entire and counted once")
    func hostileBatches() throws {
        let machines = try Machines(seed: 25, groups: 1...2)
        #expect(machines.runUntilLeaders())
        let attacker = machines.network.addNode()
        let target = machines.nodes[0].localEndpoint
        var message = RaftMessage(
            group: 1, from: NodeID(9), to: NodeID(1), term: 1, body: .voteResponse(granted: true, isPreVote: false))
        let valid = try Self.encoded(message)
        var corrupted = valid
        corrupted[corrupted.count - 1] ^= 0xFF
        message.group = 2
        let ofGroup2 = try Self.encoded(message)
        message.group = 77
        let unknownGroup = try Self.encoded(message)

        // Whole frames: each goes its way, checked by its node.
        try attacker.send(try Self.batch([valid, ofGroup2, unknownGroup, corrupted]), to: target)
        machines.network.run(for: .seconds(1))
        var counters = machines.multiplexers[0].counters
        let delivered = counters.delivered
        #expect(counters.malformed == 0)
        #expect(counters.unclaimed == 1)
        #expect(machines.replicas[1]![0].counters.malformedFramesDropped == 1)
        #expect(machines.replicas[2]![0].counters.malformedFramesDropped == 0)

        var outerCorrupted = try Self.batch([valid, valid])
        outerCorrupted[FrameHeader.size + 1] ^= 0x01
        let malformed: [[UInt8]] = [
            try Self.frame(.raft, [0xFF]),  // no frames
            try Self.batch([valid, Array(valid.dropLast())]),  // the last one cut short
            try Self.batch([valid, try Self.frame(.gossip, [0, 1])]),  // another protocol inside
            try Self.batch([valid, try Self.batch([valid])]),  // a batch inside
            try Self.batch([valid, Array(repeating: 0xAB, count: 20)]),  // no frame header
            try Self.batch([valid, try Self.frame(.raft, [1])]),  // a frame that names no group
            outerCorrupted,  // the batch's checksum fails
        ]
        for datagram in malformed { try attacker.send(datagram, to: target) }
        machines.network.run(for: .seconds(1))
        counters = machines.multiplexers[0].counters
        #expect(counters.malformed == UInt64(malformed.count))
        #expect(counters.unclaimed == 1)
        // Nothing of a dropped batch reached a node, though each held a
        // valid frame (heartbeats may have come since).
        #expect(machines.replicas[1]![0].counters.malformedFramesDropped == 1)

        machines.put("after", in: 1)
        machines.put("after", in: 2)
        machines.network.run(for: .seconds(2))
        #expect(machines.acknowledged == [1: 1, 2: 1])
        #expect(machines.multiplexers[0].counters.delivered > delivered)
    }

    @Test("a node on a transport of its own serves a group with multiplexed machines: it reads their batches and answers each frame")
    func plainNodeAmongMultiplexed() throws {
        let network = SimulatedNetwork(seed: 26)
        let nodes = (0..<3).map { _ in network.addNode() }
        let multiplexers = try nodes.map { try RaftGroupMultiplexer(transport: $0, scheduler: $0) }
        let maps = (0..<3).map { _ in KeyValueStateMachine() }
        let replicas = try (0..<3).map { machine in
            var peers: [NodeID: Endpoint] = [:]
            for other in 0..<3 where other != machine { peers[NodeID(UInt64(other + 1))] = nodes[other].localEndpoint }
            // The plain node, on machine 1, campaigns first and leads.
            var configuration = RaftConfiguration()
            configuration.electionTimeout = machine == 0 ? .milliseconds(100) : .seconds(1)
            configuration.heartbeatInterval = .milliseconds(40)
            return try RaftNode(
                id: NodeID(UInt64(machine + 1)), group: 1, peers: peers, storage: InMemoryRaftStorage(),
                stateMachine: maps[machine],
                transport: machine == 0 ? nodes[0] as any Transport : multiplexers[machine].channel(for: 1),
                scheduler: nodes[machine], configuration: configuration, seed: UInt64(machine))
        }
        network.run(for: .seconds(1))
        #expect(replicas[0].role == .leader)

        // Five proposals at once on a multiplexed follower: forwarded to
        // the leader in one batch.
        var acknowledged = 0
        let before = multiplexers[1].counters
        for write in 0..<5 {
            replicas[1].propose(KeyValueCommand.put(key: "k\(write)", value: [1]).encoded) { result in
                if case .success = result { acknowledged += 1 }
            }
        }
        network.run(for: .seconds(1))
        #expect(acknowledged == 5)
        #expect(replicas[0].counters.forwardedProposalsReceived == 5)
        #expect(multiplexers[1].counters.framesSent - before.framesSent > multiplexers[1].counters.datagramsSent - before.datagramsSent)
        let expected = Dictionary(uniqueKeysWithValues: (0..<5).map { ("k\($0)", [UInt8(1)]) })
        #expect(maps.allSatisfy { $0.values == expected })
        #expect(replicas.allSatisfy { $0.counters.malformedFramesDropped == 0 })

        // A batch cut short reaches the plain node whole: dropped, counted
        // once, none of its frames taken.
        let heartbeat = try Self.encoded(
            RaftMessage(group: 1, from: NodeID(2), to: NodeID(1), term: 99, body: .heartbeatResponse(readRound: 0)))
        let attacker = network.addNode()
        try attacker.send(try Self.batch([heartbeat, Array(heartbeat.dropLast())]), to: nodes[0].localEndpoint)
        network.run(for: .milliseconds(100))
        #expect(replicas[0].counters.malformedFramesDropped == 1)
        #expect(replicas[0].term < 99 && replicas[0].role == .leader)
    }

    /// A transport that records the size of every message sent through it.
    final class RecordingTransport: Transport {
        let base: SimulatedNode
        var sentSizes: [Int] = []

        init(_ base: SimulatedNode) {
            self.base = base
        }

        var localEndpoint: Endpoint { base.localEndpoint }
        var maximumMessageSize: Int { base.maximumMessageSize }

        func send(_ message: UnsafeRawBufferPointer, to destination: Endpoint) throws(TransportError) {
            sentSizes.append(message.count)
            try base.send(message, to: destination)
        }

        func setReceiveHandler(_ handler: @escaping TransportReceiveHandler) { base.setReceiveHandler(handler) }
        func removeReceiveHandler() { base.removeReceiveHandler() }
    }

    @Test("a turn's frames to a peer leave in order, packed greedily into batches of at most maximumBatchSize bytes; a frame too long for a batch goes alone", arguments: [31, 32, 33] as [UInt64])
    func batchPacking(seed: UInt64) throws {
        let network = SimulatedNetwork(seed: seed)
        let sender = network.addNode()
        let receiver = network.addNode()
        let recording = RecordingTransport(sender)
        let outgoing = try RaftGroupMultiplexer(transport: recording, scheduler: sender, maximumBatchSize: 200)
        let incoming = try RaftGroupMultiplexer(transport: receiver, scheduler: receiver)
        var received: [UInt64: [[UInt8]]] = [:]
        for group: UInt64 in 1...3 {
            incoming.channel(for: group).setReceiveHandler { frame, _, _ in received[group, default: []].append(Array(frame)) }
        }
        #expect(throws: ConfigurationError.self) {
            try RaftGroupMultiplexer(transport: sender, scheduler: sender, maximumBatchSize: 63)
        }

        var random = SeededRandomGenerator(seed: seed)
        var sent: [UInt64: [[UInt8]]] = [:]
        var sizes: [Int] = []
        for request in 0..<60 as Range<UInt64> {
            let group = UInt64.random(in: 1...3, using: &random)
            // Commands from empty to longer than a batch holds.
            let command = [UInt8](repeating: UInt8(request), count: Int.random(in: 0...220, using: &random))
            let frame = try Self.encoded(RaftMessage(
                group: group, from: NodeID(1), to: NodeID(2), term: 1,
                body: .forwardedProposal(requestID: request, command: command)))
            try frame.withUnsafeBytes { try outgoing.channel(for: group).send($0, to: receiver.localEndpoint) }
            sent[group, default: []].append(frame)
            sizes.append(frame.count)
        }
        #expect(recording.sentSizes.isEmpty, "nothing leaves before the end of the turn")
        network.run(for: .milliseconds(100))

        #expect(received == sent)
        // The same packing, done here: runs in order, each as long as fits.
        var expected: [Int] = []
        var run: [Int] = []
        for size in sizes {
            if !run.isEmpty && 14 + run.reduce(0, +) + size > 200 {
                expected.append(run.count == 1 ? run[0] : 14 + run.reduce(0, +))
                run = []
            }
            run.append(size)
        }
        expected.append(run.count == 1 ? run[0] : 14 + run.reduce(0, +))
        #expect(recording.sentSizes == expected)
        #expect(expected.contains { $0 > 200 } && expected.count < sizes.count, "both cases met")
        #expect(outgoing.counters.framesSent == 60 && outgoing.counters.datagramsSent == UInt64(expected.count))
        #expect(incoming.counters.delivered == 60 && incoming.counters.malformed == 0)
    }
}
