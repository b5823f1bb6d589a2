import CASPaxos
import Chorus
import EventCore
import Gossip
import Raft
import SWIM
import Simulation
import Testing
import WireCodec

/// ``ProtocolMultiplexer`` in the simulator: SWIM and CASPaxos on one
/// transport per node, and what the multiplexer does with datagrams no
/// node should see.
@Suite("ProtocolMultiplexer")
struct ProtocolMultiplexerTests {
    /// Three simulated machines, each with one transport shared by a SWIM
    /// member and (once ``startRegisters()`` runs) a CASPaxos node with
    /// both roles, whose acceptors are the members SWIM found.
    final class SharedMachines {
        let network: SimulatedNetwork
        let nodes: [SimulatedNode]
        let multiplexers: [ProtocolMultiplexer]
        let members: [SWIMNode]
        private(set) var registers: [CASPaxosNode] = []

        init(seed: UInt64) throws {
            let network = SimulatedNetwork(seed: seed)
            let nodes = (0..<3).map { _ in network.addNode() }
            let multiplexers = nodes.map { ProtocolMultiplexer(transport: $0) }
            self.network = network
            self.nodes = nodes
            self.multiplexers = multiplexers
            members = try (0..<3).map { index in
                try SWIMNode(
                    id: NodeID(UInt64(index + 1)), transport: multiplexers[index].channel(for: .swim),
                    scheduler: nodes[index], seed: seed &+ UInt64(index))
            }
            members[0].start()
            for member in members.dropFirst() { member.start(seeds: [nodes[0].localEndpoint]) }
        }

        /// Starts a CASPaxos node beside each member, on the acceptors the
        /// member at `observer` sees alive (itself included).
        func startRegisters(asSeenBy observer: Int) throws {
            let acceptors = members[observer].healthyMembers.map(\.endpoint)
            registers = try (0..<3).map { index in
                try CASPaxosNode(
                    transport: multiplexers[index].channel(for: .casPaxos), scheduler: nodes[index],
                    quorums: .majority(of: acceptors), acceptorStore: InMemoryAcceptorStore(), proposers: acceptors,
                    seed: network.seed &+ 100 &+ UInt64(index))
            }
        }

        /// Runs `operation` on the CASPaxos node at `index` and the network
        /// until its completion.
        func complete(
            _ index: Int,
            _ operation: (CASPaxosNode, @escaping (Result<[UInt8]?, CASPaxosError>) -> Void) -> Void
        ) -> Result<[UInt8]?, CASPaxosError>? {
            var outcome: Result<[UInt8]?, CASPaxosError>?
            operation(registers[index]) { outcome = $0 }
            let deadline = network.now + .seconds(10)
            while outcome == nil && network.now < deadline && network.step() {}
            return outcome
        }
    }

    @Test("SWIM and CASPaxos share each machine's transport; the acceptors are the members SWIM found")
    func swimFeedsCASPaxos() throws {
        let machines = try SharedMachines(seed: 11)
        machines.network.run(for: .seconds(5))
        #expect(machines.members.allSatisfy { $0.memberCount(.alive) == 3 })

        try machines.startRegisters(asSeenBy: 2)
        let key = Array("leader".utf8)
        let written = machines.complete(0) { node, done in
            node.propose(key: key, change: { _ in Array("node-1".utf8) }, completion: done)
        }
        #expect(try written?.get() == Array("node-1".utf8))
        let read = machines.complete(2) { node, done in node.read(key: key, completion: done) }
        #expect(try read?.get() == Array("node-1".utf8))

        // SWIM went on beside CASPaxos: a member stopped is found dead.
        machines.members[1].stop()
        machines.network.run(for: .seconds(20))
        #expect(machines.members[0].member(NodeID(2))?.status == .dead)
        #expect(machines.members[2].member(NodeID(2))?.status == .dead)

        // Every datagram reached its protocol's node, and only it; the
        // stopped member's machine dropped the SWIM frames sent to it after
        // its stop, as unclaimed.
        for (index, multiplexer) in machines.multiplexers.enumerated() {
            #expect(Set(multiplexer.counters.deliveredByProtocol.keys) == [.swim, .casPaxos])
            #expect(multiplexer.counters.malformed == 0)
            if index == 1 {
                #expect(multiplexer.counters.unclaimed > 0)
            } else {
                #expect(multiplexer.counters.unclaimed == 0)
            }
        }
        #expect(machines.members.allSatisfy { $0.counters.malformedFramesDropped == 0 })
        #expect(machines.registers.allSatisfy { $0.counters.malformedFramesDropped == 0 })
        #expect(machines.registers.allSatisfy { $0.counters.messagesSent > 0 })
    }

    @Test("datagrams that are not frames, and frames of a protocol with no node here, are dropped and counted")
    func hostileDatagrams() throws {
        let machines = try SharedMachines(seed: 12)
        machines.network.run(for: .seconds(5))
        let target = machines.multiplexers[1]
        let before = target.counters
        let attacker = machines.network.addNode()
        let destination = machines.nodes[1].localEndpoint

        var datagrams: [[UInt8]] = [
            [],  // empty
            Array(repeating: 0xC4, count: FrameHeader.size - 1),  // shorter than a header
            Array(repeating: 0, count: 64),  // wrong magic
        ]
        var valid = WireWriter()
        try Frame.encode(protocol: .swim, into: &valid) { $0.writeBytes([1, 2, 3]) }
        var otherVersion = Array(valid.bytes)
        otherVersion[2] = FrameHeader.currentVersion &+ 1
        var unknownProtocol = Array(valid.bytes)
        unknownProtocol[3] = 0xEE
        datagrams += [otherVersion, unknownProtocol]
        // A well-formed frame of a protocol no node runs here.
        var raft = WireWriter()
        try Frame.encode(protocol: .raft, into: &raft) { $0.writeBytes([0]) }
        datagrams.append(Array(raft.bytes))
        // A SWIM frame whose body is garbage: the multiplexer passes it on,
        // and the member drops it.
        datagrams.append(Array(valid.bytes))

        let memberDropsBefore = machines.members[1].counters.malformedFramesDropped
        for datagram in datagrams { try attacker.send(datagram, to: destination) }
        machines.network.run(for: .milliseconds(100))

        #expect(target.counters.malformed - before.malformed == 5)
        #expect(target.counters.unclaimed - before.unclaimed == 1)
        #expect(machines.members[1].counters.malformedFramesDropped - memberDropsBefore == 1)

        // The members go on as before.
        machines.network.run(for: .seconds(5))
        #expect(machines.members.allSatisfy { $0.memberCount(.alive) == 3 })
    }

    @Test("the latest receive handler of a protocol's channels gets its frames")
    func latestHandlerWins() throws {
        let network = SimulatedNetwork(seed: 13)
        let (sender, receiver) = (network.addNode(), network.addNode())
        let multiplexer = ProtocolMultiplexer(transport: receiver)
        var first = 0
        var second = 0
        var gossip = 0
        multiplexer.channel(for: .casPaxos).setReceiveHandler { _, _, _ in first += 1 }
        let channel = multiplexer.channel(for: .casPaxos)
        multiplexer.channel(for: .gossip).setReceiveHandler { _, _, _ in gossip += 1 }
        channel.setReceiveHandler { _, _, _ in second += 1 }

        var frame = WireWriter()
        try Frame.encode(protocol: .casPaxos, into: &frame) { $0.writeBytes([7]) }
        try sender.send(Array(frame.bytes), to: receiver.localEndpoint)
        _ = network.runUntilIdle()
        #expect((first, second, gossip) == (0, 1, 0))
        #expect(multiplexer.counters.deliveredByProtocol == [.casPaxos: 1])
        #expect(multiplexer.counters.delivered == 1)

        // A channel speaks with the shared transport's endpoint and limit.
        #expect(channel.localEndpoint == receiver.localEndpoint)
        #expect(channel.maximumMessageSize == receiver.maximumMessageSize)
    }

    @Test("Raft groups nest under the protocol multiplexer: SWIM and two Raft groups, on the members SWIM found, share each machine's transport")
    func raftGroupsBesideSWIM() throws {
        let machines = try SharedMachines(seed: 17)
        machines.network.run(for: .seconds(5))
        #expect(machines.members.allSatisfy { $0.memberCount(.alive) == 3 })
        let groups = try machines.nodes.indices.map { index in
            try RaftGroupMultiplexer(
                transport: machines.multiplexers[index].channel(for: .raft), scheduler: machines.nodes[index])
        }
        let found = machines.members[0].healthyMembers
        var maps: [UInt64: [KeyValueStateMachine]] = [:]
        var replicas: [UInt64: [RaftNode]] = [:]
        for group: UInt64 in [1, 2] {
            maps[group] = (0..<3).map { _ in KeyValueStateMachine() }
            replicas[group] = try (0..<3).map { index in
                var peers: [NodeID: Endpoint] = [:]
                for member in found where member.id != machines.members[index].id { peers[member.id] = member.endpoint }
                return try RaftNode(
                    id: machines.members[index].id, group: group, peers: peers, storage: InMemoryRaftStorage(),
                    stateMachine: maps[group]![index], transport: groups[index].channel(for: group),
                    scheduler: machines.nodes[index], seed: group &* 10 &+ UInt64(index))
            }
        }
        machines.network.run(for: .seconds(3))
        var acknowledged = 0
        for group: UInt64 in [1, 2] {
            let leader = try #require(replicas[group]!.first { $0.role == .leader }, "group \(group)")
            leader.propose(KeyValueCommand.put(key: "k", value: [UInt8(group)]).encoded) { result in
                if case .success = result { acknowledged += 1 }
            }
        }
        machines.network.run(for: .seconds(2))
        #expect(acknowledged == 2)
        for group: UInt64 in [1, 2] {
            #expect(maps[group]!.allSatisfy { $0.values == ["k": [UInt8(group)]] }, "group \(group)")
        }
        for (multiplexer, groups) in zip(machines.multiplexers, groups) {
            #expect(Set(multiplexer.counters.deliveredByProtocol.keys) == [.swim, .raft])
            #expect(groups.counters.malformed == 0 && groups.counters.unclaimed == 0)
            // The two groups' heartbeats to a peer share datagrams.
            #expect(groups.counters.delivered > multiplexer.counters.deliveredByProtocol[.raft]!)
        }
    }

    @Test("a channel removes only its own handler: a replaced node's stop leaves its successor receiving")
    func removalByChannel() throws {
        let network = SimulatedNetwork(seed: 16)
        let (sender, receiver) = (network.addNode(), network.addNode())
        let multiplexer = ProtocolMultiplexer(transport: receiver)
        let old = multiplexer.channel(for: .gossip)
        let new = multiplexer.channel(for: .gossip)
        var (oldReceived, newReceived) = (0, 0)
        old.setReceiveHandler { _, _, _ in oldReceived += 1 }
        new.setReceiveHandler { _, _, _ in newReceived += 1 }
        var frame = WireWriter()
        try Frame.encode(protocol: .gossip, into: &frame) { $0.writeBytes([7]) }
        func deliverOne() throws {
            try sender.send(Array(frame.bytes), to: receiver.localEndpoint)
            _ = network.runUntilIdle()
        }

        old.removeReceiveHandler()
        try deliverOne()
        #expect((oldReceived, newReceived) == (0, 1))
        #expect(multiplexer.counters.unclaimed == 0)

        new.removeReceiveHandler()
        try deliverOne()
        #expect((oldReceived, newReceived) == (0, 1))
        #expect(multiplexer.counters.unclaimed == 1)
        #expect(multiplexer.counters.deliveredByProtocol == [.gossip: 1])
    }

    @Test("a channel keeps its multiplexer alive; once neither is kept, the transport's handler keeps nothing")
    func channelKeepsMultiplexer() throws {
        let network = SimulatedNetwork(seed: 14)
        let (sender, receiver) = (network.addNode(), network.addNode())
        weak var released: ProtocolMultiplexer?
        var channel: ProtocolChannel? = {
            let multiplexer = ProtocolMultiplexer(transport: receiver)
            released = multiplexer
            return multiplexer.channel(for: .swim)
        }()
        var received = 0
        channel?.setReceiveHandler { _, _, _ in received += 1 }
        var frame = WireWriter()
        try Frame.encode(protocol: .swim, into: &frame) { $0.writeBytes([7]) }

        try sender.send(Array(frame.bytes), to: receiver.localEndpoint)
        _ = network.runUntilIdle()
        #expect(received == 1, "the channel alone kept the multiplexer")

        channel = nil
        #expect(released == nil, "the transport's handler holds the multiplexer weakly: no cycle")
        try sender.send(Array(frame.bytes), to: receiver.localEndpoint)
        _ = network.runUntilIdle()
        #expect(received == 1)
    }

    @Test("a gossip node shares the transport with a SWIM member; its broadcast reaches every machine")
    func gossipBesideSWIM() throws {
        let machines = try SharedMachines(seed: 15)
        let gossip = try machines.nodes.indices.map { index in
            try GossipNode(
                id: NodeID(UInt64(index + 10)), transport: machines.multiplexers[index].channel(for: .gossip),
                scheduler: machines.nodes[index], seed: machines.network.seed &+ UInt64(index))
        }
        var delivered = [0, 0, 0]
        for index in gossip.indices { gossip[index].setDeliveryHandler { _ in delivered[index] += 1 } }
        gossip[0].start()
        for node in gossip.dropFirst() { node.start(seeds: [machines.nodes[0].localEndpoint]) }
        machines.network.run(for: .seconds(5))

        try gossip[1].broadcast(Array("hello".utf8))
        machines.network.run(for: .seconds(5))
        #expect(delivered == [1, 0, 1], "every machine but the origin delivers it once")
        #expect(machines.members.allSatisfy { $0.memberCount(.alive) == 3 })
        #expect(gossip.allSatisfy { $0.counters.malformedFramesDropped == 0 })
        #expect(machines.members.allSatisfy { $0.counters.malformedFramesDropped == 0 })
        #expect(machines.multiplexers.allSatisfy { $0.counters.malformed == 0 && $0.counters.unclaimed == 0 })
    }
}
