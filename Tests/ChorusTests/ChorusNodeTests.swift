import CASPaxos
import Chorus
import EventCore
import Raft
import SWIM
import Simulation
import Testing

/// ``ChorusNode`` in the simulator: SWIM finds the members, CASPaxos and
/// Raft groups start on them, on one transport per machine.
@Suite("ChorusNode")
struct ChorusNodeTests {
    /// Three machines, each a ``ChorusNode`` on a simulated node; machine 1
    /// the seed.
    final class Cluster {
        let network: SimulatedNetwork
        private(set) var nodes: [SimulatedNode] = []
        private(set) var machines: [ChorusNode] = []
        var maps: [UInt64: [KeyValueStateMachine]] = [:]

        /// Where the machines log.
        let logger: any LogSink

        init(seed: UInt64, logger: any LogSink = DiscardingLogSink()) throws {
            network = SimulatedNetwork(seed: seed)
            self.logger = logger
            for _ in 0..<3 { try addMachine() }
        }

        /// Starts machine `machines.count + 1`, joining SWIM through the
        /// first.
        @discardableResult
        func addMachine() throws -> ChorusNode {
            let node = network.addNode()
            let machine = try ChorusNode(
                id: NodeID(UInt64(machines.count + 1)), transport: node, scheduler: node,
                seed: network.seed &+ UInt64(machines.count), logger: logger)
            machine.start(seeds: nodes.isEmpty ? [] : [nodes[0].localEndpoint])
            nodes.append(node)
            machines.append(machine)
            return machine
        }

        /// Starts CASPaxos and Raft groups 1 and 2 on every machine, on
        /// the members its SWIM member found.
        func startConsensus() throws {
            for group: UInt64 in [1, 2] { maps[group] = (0..<3).map { _ in KeyValueStateMachine() } }
            for (index, machine) in machines.enumerated() {
                let members = try machine.initialMembers(count: 3)
                _ = try machine.startRegisters(
                    on: members, acceptorStore: InMemoryAcceptorStore(), seed: network.seed &+ 10 &+ UInt64(index))
                for group: UInt64 in [1, 2] {
                    _ = try machine.startGroup(
                        group, on: members, storage: InMemoryRaftStorage(), stateMachine: maps[group]![index],
                        seed: network.seed &+ group &* 100 &+ UInt64(index))
                }
            }
        }

        /// Writes `value` at `key` through machine `index`'s registers and
        /// runs until the write completes (at most 10 s).
        func write(_ value: [UInt8], at key: String, through index: Int) -> Result<[UInt8]?, CASPaxosError>? {
            var outcome: Result<[UInt8]?, CASPaxosError>?
            machines[index].registers?.propose(key: Array(key.utf8), change: { _ in value }) { outcome = $0 }
            let deadline = network.now + .seconds(10)
            while outcome == nil, network.now < deadline, network.step() {}
            return outcome
        }

        /// Puts `key` in `group` through its leader among the running
        /// machines; returns whether the put was acknowledged (within 10 s).
        func put(_ key: String, in group: UInt64) -> Bool {
            let deadline = network.now + .seconds(10)
            while network.now < deadline {
                let replicas = machines.compactMap { $0.replicas[group] }.filter { !$0.stopped }
                if let leader = replicas.first(where: { $0.role == .leader }) {
                    var acknowledged: Bool?
                    leader.propose(KeyValueCommand.put(key: key, value: [UInt8(group)]).encoded) { result in
                        if case .success = result { acknowledged = true } else { acknowledged = false }
                    }
                    while acknowledged == nil, network.now < deadline, network.step() {}
                    if acknowledged == true { return true }
                }
                network.run(for: .milliseconds(50))
            }
            return false
        }
    }

    @Test("SWIM finds the members; CASPaxos and two Raft groups start on them and work; a stopped machine is reported unavailable, and both go on without it")
    func swimFeedsConsensus() throws {
        let cluster = try Cluster(seed: 31)
        let early = #expect(throws: ChorusError.self) { try cluster.machines[1].initialMembers(count: 3) }
        #expect(early?.code == .membersNotSettled)

        cluster.network.run(for: .seconds(5))
        let members = try cluster.machines[0].initialMembers(count: 3)
        #expect(members.map(\.id) == [NodeID(1), NodeID(2), NodeID(3)])
        for machine in cluster.machines {
            let seen = try machine.initialMembers(count: 3)
            #expect(seen.map(\.id) == members.map(\.id) && seen.map(\.endpoint) == members.map(\.endpoint))
        }
        #expect(throws: ChorusError.self) { try cluster.machines[0].initialMembers(count: 4) }
        // Alive at another endpoint than the one consensus is given (a
        // machine restarted elsewhere with its ID): not reached there.
        var elsewhere = members[1]
        elsewhere.endpoint = try Endpoint(parsing: "10.9.9.9:7946")
        let moved = cluster.machines[0].unavailable(among: [members[0], elsewhere])
        #expect(moved.map(\.id) == [members[1].id] && moved.first?.endpoint == members[1].endpoint)
        try cluster.startConsensus()

        #expect(try cluster.write(Array("one".utf8), at: "k", through: 0)?.get() == Array("one".utf8))
        #expect(cluster.put("a", in: 1))
        #expect(cluster.put("a", in: 2))

        cluster.machines[2].stop()
        cluster.network.run(for: .seconds(20))
        #expect(cluster.machines[0].replicas[1]?.membership.ids == members.map(\.id), "no policy: SWIM only reports")
        let unavailable = cluster.machines[0].unavailable(among: members)
        #expect(unavailable.map(\.id) == [NodeID(3)])
        #expect(unavailable.first?.status == .dead)
        #expect(cluster.machines[2].unavailable(among: members).map(\.id) == [NodeID(3)], "a stopped node counts itself out")

        #expect(try cluster.write(Array("two".utf8), at: "k", through: 1)?.get() == Array("two".utf8))
        #expect(cluster.put("b", in: 1))
        #expect(cluster.put("b", in: 2))
        cluster.network.run(for: .seconds(1))
        for group: UInt64 in [1, 2] {
            for index in 0..<2 {
                #expect(cluster.maps[group]![index].values == ["a": [UInt8(group)], "b": [UInt8(group)]])
            }
        }
        // The stopped machine's frames are dropped there, counted.
        #expect(cluster.machines[2].multiplexer.counters.unclaimed > 0)
        for machine in cluster.machines {
            #expect(machine.multiplexer.counters.malformed == 0)
            #expect(machine.raftGroups?.counters.malformed == 0)
        }
    }

    @Test("SWIM membership feeds Raft's: a fourth machine SWIM finds joins group 1 as a learner, is promoted, and holds its writes")
    func machineJoinsAGroup() throws {
        let cluster = try Cluster(seed: 33)
        cluster.network.run(for: .seconds(5))
        try cluster.startConsensus()
        #expect(cluster.put("before", in: 1))
        let newcomer = try cluster.addMachine()
        cluster.network.run(for: .seconds(5))
        // The group's members now: those SWIM sees alive, but the newcomer.
        let alive = newcomer.member.allMembers.filter { $0.status == .alive }
        #expect(alive.count == 4)
        let members = alive.filter { $0.id != NodeID(4) }
        let joiningMap = KeyValueStateMachine()
        let joining = #expect(throws: ChorusError.self) {
            try newcomer.startGroup(1, on: alive, joining: true, storage: InMemoryRaftStorage(), stateMachine: joiningMap)
        }
        #expect(joining?.code == .alreadyAMember)
        let replica = try newcomer.startGroup(
            1, on: members, joining: true, storage: InMemoryRaftStorage(), stateMachine: joiningMap, seed: 34)
        let leader = try #require(cluster.machines.compactMap { $0.replicas[1] }.first { $0.role == .leader })
        for change: RaftMembershipChange in [.addLearner(NodeID(4), endpoint: cluster.nodes[3].localEndpoint), .promote(NodeID(4))] {
            var outcome: Result<Void, RaftError>?
            leader.changeMembership(change) { outcome = $0 }
            let deadline = cluster.network.now + .seconds(5)
            while outcome == nil, cluster.network.now < deadline, cluster.network.step() {}
            #expect(outcome.map { (try? $0.get()) != nil } == true, "\(change): \(String(describing: outcome))")
        }
        #expect(cluster.put("after", in: 1))
        cluster.network.run(for: .seconds(1))
        #expect(replica.membership.ids == [NodeID(1), NodeID(2), NodeID(3), NodeID(4)])
        #expect(joiningMap.values["before"] == [1] && joiningMap.values["after"] == [1])
    }

    @Test("a protocol started twice, or a replica on members that leave this node out, is refused with a typed error")
    func misuse() throws {
        let cluster = try Cluster(seed: 32)
        cluster.network.run(for: .seconds(5))
        try cluster.startConsensus()
        let node = cluster.machines[0]
        let members = try node.initialMembers(count: 3)

        let twice = #expect(throws: ChorusError.self) {
            try node.startRegisters(on: members, acceptorStore: InMemoryAcceptorStore())
        }
        #expect(twice?.code == .alreadyRunning)
        let group = #expect(throws: ChorusError.self) {
            try node.startGroup(1, on: members, storage: InMemoryRaftStorage(), stateMachine: KeyValueStateMachine())
        }
        #expect(group?.code == .alreadyRunning)
        let others = Array(members.dropFirst())
        let outside = #expect(throws: ChorusError.self) {
            try node.startGroup(3, on: others, storage: InMemoryRaftStorage(), stateMachine: KeyValueStateMachine())
        }
        #expect(outside?.code == .notAMember)
        #expect(node.replicas.keys.sorted() == [1, 2])
        #expect(node.raftGroups?.groups == [1, 2])
    }

    @Test("a replica or registers stopped directly (not through the node) start again on their stores, and pick up where they left off")
    func restartAfterDirectStop() throws {
        let cluster = try Cluster(seed: 35)
        cluster.network.run(for: .seconds(5))
        let node = cluster.machines[0]
        let members = try node.initialMembers(count: 3)
        let acceptorStores = cluster.machines.map { _ in InMemoryAcceptorStore() }
        let storages = cluster.machines.map { _ in InMemoryRaftStorage() }
        let maps = cluster.machines.map { _ in KeyValueStateMachine() }
        for (index, machine) in cluster.machines.enumerated() {
            _ = try machine.startRegisters(on: members, acceptorStore: acceptorStores[index], seed: 40 + UInt64(index))
            _ = try machine.startGroup(
                1, on: members, storage: storages[index], stateMachine: maps[index], seed: 50 + UInt64(index))
        }
        #expect(try cluster.write([1], at: "k", through: 0)?.get() == [1])
        #expect(cluster.put("before", in: 1))

        try #require(node.registers).stop()
        try #require(node.replicas[1]).stop()
        cluster.network.run(for: .seconds(1))
        #expect(throws: Never.self, "registers that stopped are not running") {
            _ = try node.startRegisters(on: members, acceptorStore: acceptorStores[0], seed: 60)
        }
        let restarted = try node.startGroup(1, on: members, storage: storages[0], stateMachine: maps[0], seed: 61)
        #expect(node.replicas[1] === restarted)
        let again = #expect(throws: ChorusError.self) {
            try node.startGroup(1, on: members, storage: storages[0], stateMachine: maps[0])
        }
        #expect(again?.code == .alreadyRunning, "the restarted replica runs")

        // The acceptor came back with what it had accepted, and a write
        // through the restarted registers lands; the replica rejoins and
        // applies what it missed.
        #expect(node.registers?.acceptor?.register(Array("k".utf8))?.value == [1])
        #expect(try cluster.write([2], at: "k", through: 0)?.get() == [2])
        #expect(cluster.put("after", in: 1))
        cluster.network.run(for: .seconds(2))
        #expect(maps[0].values["before"] == [1] && maps[0].values["after"] == [1])
        #expect(node.registers?.acceptor?.register(Array("k".utf8))?.value == [2])
    }
}
