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
            multiplexers = nodes.map { RaftGroupMultiplexer(transport: $0) }
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
        func frame(_ protocolID: ProtocolID, _ body: [UInt8]) throws -> [UInt8] {
            var writer = WireWriter()
            try Frame.encode(protocol: protocolID, into: &writer) { frame in
                body.withUnsafeBytes { frame.writeRawBytes($0) }
            }
            return Array(writer.bytes)
        }
        var group1 = RaftMessage(
            group: 1, from: NodeID(9), to: NodeID(1), term: 1, body: .voteResponse(granted: true, isPreVote: false))
        var writer = WireWriter()
        try group1.encodeFrame(into: &writer)
        var corrupted = Array(writer.bytes)
        corrupted[corrupted.count - 1] ^= 0xFF
        group1.group = 77
        writer = WireWriter()
        try group1.encodeFrame(into: &writer)
        let unknownGroup = Array(writer.bytes)

        let malformed: [[UInt8]] = [
            [],
            [0x05, 0xC4, 1],
            Array(repeating: 0xAB, count: 40),
            try frame(.gossip, [0, 1]),
            try frame(.raft, []),
            try frame(.raft, [1]),
            try frame(.raft, [1] + Array(repeating: 0xFF, count: 11)),
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
}
