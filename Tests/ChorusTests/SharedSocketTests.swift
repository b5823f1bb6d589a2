import CASPaxos
import Chorus
import EventCore
import Raft
import SWIM
import TestSupport
import Testing
import UDPTransport

/// SWIM, CASPaxos and Raft on real sockets, one UDP socket per machine (a
/// ``ChorusNode`` each): three machines on 127.0.0.1 with ports from the
/// kernel, on one EventLoop; the consensus protocols' peers are the members
/// SWIM found.
/// Waits poll the outcome with a deadline; no timing is asserted.
@Suite("One socket per machine over real UDP")
struct SharedSocketTests {
    /// The machines: a ``ChorusNode`` each. Loop-only.
    final class Machines {
        var transports: [UDPSocketTransport] = []
        var nodes: [ChorusNode] = []
        var maps: [KeyValueStateMachine] = []

        init(count: Int, loop: EventLoop) throws {
            for index in 0..<count {
                let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
                transports.append(transport)
                nodes.append(
                    try ChorusNode(
                        id: NodeID(UInt64(index + 1)), transport: transport, scheduler: loop, seed: UInt64(index + 1)))
            }
            nodes[0].start()
            for node in nodes.dropFirst() { node.start(seeds: [transports[0].localEndpoint]) }
        }

        var converged: Bool { nodes.allSatisfy { (try? $0.initialMembers(count: nodes.count)) != nil } }
        var members: [SWIMNode] { nodes.map(\.member) }
        var registers: [CASPaxosNode] { nodes.compactMap(\.registers) }
        var replicas: [RaftNode] { nodes.compactMap { $0.replicas[1] } }

        /// A CASPaxos node with both roles and a Raft replica of a
        /// key-value map (group 1) on each machine, on the members its
        /// SWIM member found.
        func startConsensus() throws {
            maps = nodes.map { _ in KeyValueStateMachine() }
            for (index, node) in nodes.enumerated() {
                let members = try node.initialMembers(count: nodes.count)
                _ = try node.startRegisters(on: members, acceptorStore: InMemoryAcceptorStore())
                _ = try node.startGroup(
                    1, on: members, storage: InMemoryRaftStorage(), stateMachine: maps[index], seed: UInt64(index + 1))
            }
        }

        func close() {
            for node in nodes { node.stop() }
            for transport in transports { transport.close() }
        }

        /// The group's voters at its leader, once there is one.
        var leaderVoters: [NodeID]? {
            replicas.first { !$0.stopped && $0.role == .leader }?.membership.ids
        }
    }

    @Test("a membership policy over real UDP: a fourth machine that starts a joining replica is added and promoted, a machine that leaves SWIM is removed, and the group commits through it all")
    func membershipPolicyOverUDP() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let policy = {
            var policy = RaftMembershipPolicy()
            policy.failedMemberGrace = .seconds(1)
            policy.stabilization = .milliseconds(200)
            policy.interval = .milliseconds(50)
            return policy
        }()
        let machines = try await loop.submit { LoopBound(try Machines(count: 3, loop: loop), on: loop) }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { machines.value.converged })
        try await loop.submit {
            let value = machines.value
            value.maps = value.nodes.map { _ in KeyValueStateMachine() }
            for (index, node) in value.nodes.enumerated() {
                _ = try node.startGroup(
                    1, on: try node.initialMembers(count: 3), storage: InMemoryRaftStorage(), stateMachine: value.maps[index],
                    policy: policy)
            }
            // The fourth machine, found by SWIM through the first.
            let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
            let node = try ChorusNode(id: NodeID(4), transport: transport, scheduler: loop, seed: 4)
            node.start(seeds: [value.transports[0].localEndpoint])
            value.transports.append(transport)
            value.nodes.append(node)
            value.maps.append(KeyValueStateMachine())
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            machines.value.nodes[3].member.memberCount(.alive) == 4 && machines.value.leaderVoters != nil
        })
        try await loop.submit {
            let value = machines.value
            let peers = value.nodes[3].member.allMembers.filter { ChorusNode.raftGroups(advertisedBy: $0).contains(1) }
            _ = try value.nodes[3].startGroup(
                1, on: peers, joining: true, storage: InMemoryRaftStorage(), stateMachine: value.maps[3], policy: policy)
        }
        let everyone = (1...4).map { NodeID(UInt64($0)) }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { machines.value.leaderVoters == everyone })

        // A follower's machine leaves SWIM; its replica keeps answering
        // until the removal, then it stops.
        let leaving = try #require(try await loop.submit {
            machines.value.nodes.indices.first { machines.value.nodes[$0].replicas[1]?.role == .follower }
        })
        try await loop.submit { machines.value.nodes[leaving].member.leave() }
        let rest = everyone.filter { $0 != NodeID(UInt64(leaving + 1)) }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { machines.value.leaderVoters == rest })
        try await loop.submit { machines.value.nodes[leaving].stopGroup(1) }

        let through = try await loop.submit {
            LoopBound(machines.value.nodes[(leaving + 1) % 4].replicas[1]!, on: loop)
        }
        _ = try await through.propose(KeyValueCommand.put(key: "after", value: [1]).encoded)
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            machines.value.maps.indices.filter { $0 != leaving }.allSatisfy { machines.value.maps[$0].values["after"] == [1] }
        })
        try await loop.submit { machines.value.close() }
    }

    @Test("three machines, one socket each: SWIM finds the members, CASPaxos and Raft on them write and read")
    func threeProtocolsOnOneSocket() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let machines = try await loop.submit { LoopBound(try Machines(count: 3, loop: loop), on: loop) }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { machines.value.converged })

        let (registers, replicas) = try await loop.submit {
            try machines.value.startConsensus()
            return (
                machines.value.registers.map { LoopBound($0, on: loop) },
                machines.value.replicas.map { LoopBound($0, on: loop) }
            )
        }
        let key = Array("config".utf8)
        #expect(try await registers[0].propose(key: key) { _ in Array("v1".utf8) } == Array("v1".utf8))
        #expect(try await registers[2].read(key: key) == Array("v1".utf8))
        // Every replica knows the leader: a follower that has not heard
        // from it yet would refuse the proposal (notLeader), not forward it.
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            let leaders = machines.value.replicas.map(\.leader)
            return leaders[0] != nil && Set(leaders).count == 1
        })
        let follower = try #require(try await loop.submit { machines.value.replicas.firstIndex { $0.role != .leader } })
        // Through a follower, which forwards it to the leader.
        _ = try await replicas[follower].propose(KeyValueCommand.put(key: "config", value: Array("v2".utf8)).encoded)
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            machines.value.maps.allSatisfy { $0.values["config"] == Array("v2".utf8) }
        })
        #expect(try await loop.submit { machines.value.replicas[follower].counters.proposalsForwarded } == 1)

        let (counters, sockets, ports, nodeDrops) = try await loop.submit {
            let value = machines.value
            return (
                value.nodes.map(\.multiplexer.counters), Set(value.transports.map(\.localEndpoint)),
                value.registers.map(\.transport.localEndpoint) + value.members.map(\.localMember.endpoint)
                    + value.replicas.map(\.transport.localEndpoint),
                value.members.map(\.counters.malformedFramesDropped)
                    + value.registers.map(\.counters.malformedFramesDropped)
                    + value.replicas.map(\.counters.malformedFramesDropped)
            )
        }
        #expect(nodeDrops.allSatisfy { $0 == 0 }, "no node was handed another protocol's frame")
        #expect(Set(ports) == sockets, "each machine's three nodes speak from its one socket")
        for counter in counters {
            #expect(Set(counter.deliveredByProtocol.keys) == [.swim, .casPaxos, .raft])
            #expect(counter.malformed == 0 && counter.unclaimed == 0)
        }
        try await loop.submit { machines.value.close() }
    }
}
