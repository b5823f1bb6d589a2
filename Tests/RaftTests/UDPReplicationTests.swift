import EventCore
import Raft
import TestSupport
import Testing
import UDPTransport

/// Raft on real sockets: a 3-node group on 127.0.0.1 with ports from the
/// kernel, on one EventLoop. Waits poll the outcome with a deadline;
/// nothing depends on a fixed sleep, and no timing is asserted.
@Suite("Raft over real UDP")
struct UDPReplicationTests {
    /// Appends every command it applies. Loop-only.
    final class CommandLog: RaftStateMachine {
        var commands: [[UInt8]] = []

        func apply(_ command: [UInt8], at index: UInt64) -> [UInt8] {
            commands.append(command)
            return Array("\(index)".utf8)
        }

        func snapshot() -> [UInt8] { commands.flatMap { [UInt8(truncatingIfNeeded: $0.count)] + $0 } }

        func restore(from snapshot: [UInt8]) throws {
            var rest = snapshot[...]
            commands = []
            while let count = rest.popFirst() {
                commands.append(Array(rest.prefix(Int(count))))
                rest = rest.dropFirst(Int(count))
            }
        }
    }

    /// The nodes of a loopback group. Loop-only.
    final class LoopbackGroup {
        var transports: [UDPSocketTransport] = []
        var nodes: [RaftNode] = []
        var logs: [CommandLog] = []
        var acknowledged: [[UInt8]] = []
        var refused = 0

        init(count: Int, loop: EventLoop, checkQuorum: Bool = true) throws {
            var configuration = RaftConfiguration()
            configuration.checkQuorum = checkQuorum
            configuration.electionTimeout = .milliseconds(300)
            configuration.heartbeatInterval = .milliseconds(50)
            transports = try (0..<count).map { _ in try UDPSocketTransport.bind(to: .loopbackV4(), on: loop) }
            for index in 0..<count {
                var peers: [NodeID: Endpoint] = [:]
                for other in 0..<count where other != index {
                    peers[NodeID(UInt64(other + 1))] = transports[other].localEndpoint
                }
                let log = CommandLog()
                logs.append(log)
                nodes.append(try RaftNode(
                    id: NodeID(UInt64(index + 1)), group: 42, peers: peers, storage: InMemoryRaftStorage(),
                    stateMachine: log, transport: transports[index], scheduler: loop, configuration: configuration,
                    seed: UInt64(index + 1)))
            }
        }

        var leader: Int? {
            nodes.indices.filter { !nodes[$0].stopped && nodes[$0].role == .leader }.max { nodes[$0].term < nodes[$1].term }
        }

        /// Proposes `commands` at the current leader, if there is one.
        func proposeAtLeader(_ commands: [[UInt8]]) -> Bool {
            guard let leader else { return false }
            for command in commands {
                nodes[leader].propose(command) { [unowned self] result in
                    switch result {
                    case .success: acknowledged.append(command)
                    case .failure: refused += 1
                    }
                }
            }
            return true
        }

        /// Whether the running nodes all applied exactly `commands`, in order.
        func applied(_ commands: [[UInt8]]) -> Bool {
            nodes.indices.filter { !nodes[$0].stopped }.allSatisfy { logs[$0].commands == commands }
        }

        func close() {
            for node in nodes { node.stop() }
            for transport in transports { transport.close() }
        }
    }

    @Test("3 nodes on 127.0.0.1 elect a leader, commit writes, and go on committing after the leader stops")
    func loopbackGroup() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let group = try await loop.submit { LoopBound(try LoopbackGroup(count: 3, loop: loop), on: loop) }
        let first = (0..<20).map { Array("first \($0)".utf8) }
        let second = (0..<20).map { Array("second \($0)".utf8) }

        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { group.value.leader != nil })
        #expect(try await loop.submit { group.value.proposeAtLeader(first) })
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            group.value.acknowledged.count == 20 && group.value.applied(first)
        })

        let stopped = try await loop.submit { () -> Int in
            let leader = group.value.leader ?? 0
            group.value.nodes[leader].stop()
            group.value.transports[leader].close()
            return leader
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            group.value.leader.map { $0 != stopped } ?? false
        }, "a new leader among the two left")
        #expect(try await loop.submit { group.value.proposeAtLeader(second) })
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            group.value.acknowledged.count == 40 && group.value.applied(first + second)
        }, "the remaining majority commits")
        #expect(try await loop.submit { group.value.acknowledged == first + second })
        try await loop.submit { group.value.close() }
    }

    @Test("over 127.0.0.1 a fourth node joins as a learner, is promoted, and replaces a member (async changes), and the group commits through the change")
    func membershipOverUDP() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let group = try await loop.submit { LoopBound(try LoopbackGroup(count: 3, loop: loop), on: loop) }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { group.value.leader != nil })
        let first = (0..<20).map { Array("first \($0)".utf8) }
        #expect(try await loop.submit { group.value.proposeAtLeader(first) })
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { group.value.acknowledged.count == 20 })

        // Node 4 starts joining, with the members as its peers.
        let (leader, newcomer) = try await loop.submit { () -> (LoopBound<RaftNode>, Endpoint) in
            let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
            var peers: [NodeID: Endpoint] = [:]
            for index in 0..<3 { peers[NodeID(UInt64(index + 1))] = group.value.transports[index].localEndpoint }
            let log = CommandLog()
            let node = try RaftNode(
                id: NodeID(4), group: 42, peers: peers, joining: true, storage: InMemoryRaftStorage(), stateMachine: log,
                transport: transport, scheduler: loop, seed: 4)
            group.value.transports.append(transport)
            group.value.nodes.append(node)
            group.value.logs.append(log)
            return (LoopBound(group.value.nodes[group.value.leader!], on: loop), transport.localEndpoint)
        }
        try await leader.changeMembership(.addLearner(NodeID(4), endpoint: newcomer))
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            (leader.value.replicationProgress(of: NodeID(4))?.match ?? 0) == leader.value.lastIndex
        }, "the learner caught up")
        try await leader.changeMembership(.promote(NodeID(4)))
        // Remove a follower, then stop it.
        let removed = try await loop.submit { group.value.nodes.firstIndex { $0 !== leader.value && $0.id != NodeID(4) }! }
        try await leader.changeMembership(.remove(NodeID(UInt64(removed + 1))))
        try await loop.submit {
            group.value.nodes[removed].stop()
            group.value.transports[removed].close()
        }
        do {
            try await leader.changeMembership(.promote(NodeID(4)))
            Issue.record("promoting a voter succeeded")
        } catch {
            #expect(error == .invalidMembershipChange("\(NodeID(4)) is not a learner"))
        }
        let second = (0..<20).map { Array("second \($0)".utf8) }
        #expect(try await loop.submit { group.value.proposeAtLeader(second) })
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            group.value.acknowledged.count == 40 && group.value.applied(first + second)
        }, "every running node, the new one included, applied every write")
        let memberships = try await loop.submit {
            group.value.nodes.filter { !$0.stopped }.map { Set($0.membership.ids) }
        }
        let expected = Set([NodeID(1), NodeID(2), NodeID(3), NodeID(4)].filter { $0 != NodeID(UInt64(removed + 1)) })
        #expect(memberships.count == 3 && memberships.allSatisfy { $0 == expected })
        try await loop.submit { group.value.close() }
    }

    @Test("ten groups on one socket per machine over 127.0.0.1 (a RaftGroupMultiplexer each): every group elects and commits its own writes")
    func groupsOnOneSocket() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        final class Machines {
            var transports: [UDPSocketTransport] = []
            var multiplexers: [RaftGroupMultiplexer] = []
            /// By group (1 ... 10), then machine.
            var nodes: [[RaftNode]] = []
            var maps: [[KeyValueStateMachine]] = []
            var acknowledged = 0
        }
        let groups = 10
        let machines = try await loop.submit { () -> LoopBound<Machines> in
            let machines = Machines()
            machines.transports = try (0..<3).map { _ in try UDPSocketTransport.bind(to: .loopbackV4(), on: loop) }
            machines.multiplexers = try machines.transports.map { try RaftGroupMultiplexer(transport: $0, scheduler: loop) }
            var configuration = RaftConfiguration()
            configuration.electionTimeout = .milliseconds(300)
            configuration.heartbeatInterval = .milliseconds(50)
            for group in 1...groups {
                machines.maps.append((0..<3).map { _ in KeyValueStateMachine() })
                machines.nodes.append(try (0..<3).map { index in
                    var peers: [NodeID: Endpoint] = [:]
                    for other in 0..<3 where other != index {
                        peers[NodeID(UInt64(other + 1))] = machines.transports[other].localEndpoint
                    }
                    return try RaftNode(
                        id: NodeID(UInt64(index + 1)), group: UInt64(group), peers: peers,
                        storage: InMemoryRaftStorage(), stateMachine: machines.maps[group - 1][index],
                        transport: machines.multiplexers[index].channel(for: UInt64(group)), scheduler: loop,
                        configuration: configuration)
                })
            }
            return LoopBound(machines, on: loop)
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            machines.value.nodes.allSatisfy { group in group.contains { $0.role == .leader } }
        })
        try await loop.submit {
            for (group, nodes) in machines.value.nodes.enumerated() {
                let leader = nodes.first { $0.role == .leader }!
                leader.propose(KeyValueCommand.put(key: "group", value: [UInt8(group + 1)]).encoded) { result in
                    if case .success = result { machines.value.acknowledged += 1 }
                }
            }
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            machines.value.acknowledged == groups
                && machines.value.maps.enumerated().allSatisfy { group, maps in
                    maps.allSatisfy { $0.values == ["group": [UInt8(group + 1)]] }
                }
        })
        try await loop.submit {
            for multiplexer in machines.value.multiplexers {
                #expect(multiplexer.groups == Array(1...UInt64(groups)))
                #expect(multiplexer.counters.malformed == 0)
            }
            for nodes in machines.value.nodes { for node in nodes { node.stop() } }
            for transport in machines.value.transports { transport.close() }
        }
    }

    @Test("a node started late receives a 400 KB snapshot in chunks over 127.0.0.1 and holds the same map")
    func lateNodeGetsSnapshot() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let configuration = {
            var configuration = RaftConfiguration()
            configuration.snapshotInterval = 20
            configuration.entriesKeptAfterSnapshot = 5
            return configuration
        }()
        final class Nodes {
            var transports: [UDPSocketTransport] = []
            var stores: [KeyValueStateMachine] = []
            var nodes: [RaftNode] = []
            var acknowledged = 0
        }
        let group = try await loop.submit { () -> LoopBound<Nodes> in
            let group = Nodes()
            group.transports = try (0..<3).map { _ in try UDPSocketTransport.bind(to: .loopbackV4(), on: loop) }
            group.stores = (0..<3).map { _ in KeyValueStateMachine() }
            return LoopBound(group, on: loop)
        }
        @Sendable func start(_ index: Int, on group: Nodes) throws {
            var peers: [NodeID: Endpoint] = [:]
            for other in 0..<3 where other != index { peers[NodeID(UInt64(other + 1))] = group.transports[other].localEndpoint }
            group.nodes.append(try RaftNode(
                id: NodeID(UInt64(index + 1)), group: 5, peers: peers, storage: InMemoryRaftStorage(),
                stateMachine: group.stores[index], transport: group.transports[index], scheduler: loop,
                configuration: configuration, seed: UInt64(index + 1)))
        }
        try await loop.submit { try start(0, on: group.value); try start(1, on: group.value) }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            group.value.nodes.contains { $0.role == .leader }
        })
        try await loop.submit {
            let leader = group.value.nodes.first { $0.role == .leader }!
            for number in 0..<100 {
                let value = Array(repeating: UInt8(number), count: 4_096)
                leader.propose(KeyValueCommand.put(key: "key\(number)", value: value).encoded) { result in
                    if case .success = result { group.value.acknowledged += 1 }
                }
            }
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { group.value.acknowledged == 100 })
        try await loop.submit { try start(2, on: group.value) }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            group.value.stores[2].values.count == 100
        })
        try await loop.submit {
            let late = group.value.nodes[2]
            #expect(late.counters.snapshotsInstalled == 1)
            #expect(group.value.stores[2].values == group.value.stores[0].values)
            for node in group.value.nodes { node.stop() }
            for transport in group.value.transports { transport.close() }
        }
    }

    @Test("async proposals from any task: committed at the leader and through a follower, then read back by ReadIndex at both; .withdrawn or .cancelled when the task is cancelled, before or after the node took it; .stopped when the loop shuts down first",
        .timeLimit(.minutes(2)))
    func asyncProposals() async throws {
        let loop = try EventLoop()
        try loop.start()
        // Without CheckQuorum the leader stays one once its followers stop
        // (with it, it steps down after an election timeout, and a slow
        // test could propose too late, to be refused as not the leader).
        let group = try await loop.submit {
            LoopBound(try LoopbackGroup(count: 3, loop: loop, checkQuorum: false), on: loop)
        }
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { group.value.leader != nil })
        let (leader, follower) = try await loop.submit { () -> (LoopBound<RaftNode>, LoopBound<RaftNode>) in
            let leader = group.value.leader!
            let follower = (leader + 1) % 3
            return (LoopBound(group.value.nodes[leader], on: loop), LoopBound(group.value.nodes[follower], on: loop))
        }
        // CommandLog answers with the index it applied the command at.
        let first = try await leader.propose(Array("at the leader".utf8))
        let second = try await follower.propose(Array("through a follower".utf8))
        #expect(UInt64(String(decoding: second, as: UTF8.self))! > UInt64(String(decoding: first, as: UTF8.self))!)
        // A ReadIndex read sees both writes applied, at the leader and
        // through the follower (forwarded to the leader).
        for node in [leader, follower] {
            let applied = try await node.read { node in node.appliedIndex }
            #expect(applied >= UInt64(String(decoding: second, as: UTF8.self))!)
        }
        // The followers stop: the leader's next proposal cannot commit, and
        // waits until the loop's shutdown stops the node.
        try await loop.submit {
            for index in group.value.nodes.indices where group.value.nodes[index] !== leader.value {
                group.value.nodes[index].stop()
            }
        }
        // Its task cancelled, a proposal stops waiting (before, it waited
        // on); the proposal itself stays pending, and may still commit.
        /// Proposes `command` at the leader in a task of its own (cancelled
        /// before it proposes, if `cancelledFirst`), whose value is the
        /// outcome.
        func proposing(_ command: String, cancelledFirst: Bool = false) -> Task<Result<[UInt8], RaftError>, Never> {
            Task {
                if cancelledFirst { withUnsafeCurrentTask { $0?.cancel() } }
                do throws(RaftError) {
                    return .success(try await leader.propose(Array(command.utf8)))
                } catch {
                    return .failure(error)
                }
            }
        }
        // Cancelled before the node took it, a proposal is withdrawn:
        // nothing was proposed.
        let withdrawn = proposing("withdrawn", cancelledFirst: true)
        #expect(try await BoundedWait.value(of: withdrawn) == .failure(.withdrawn))
        #expect(try await loop.submit { leader.value.pendingProposalCount } == 0)
        let cancelled = proposing("cancelled")
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { leader.value.pendingProposalCount == 1 })
        cancelled.cancel()
        #expect(try await BoundedWait.value(of: cancelled) == .failure(.cancelled))
        #expect(try await loop.submit { leader.value.pendingProposalCount } == 1)
        // Awaited apart: were the node never stopped, the proposal would
        // wait forever, and the test must fail, not hang.
        let stranded = proposing("stranded")
        #expect(try await LoopPolling.eventually(on: loop, within: .seconds(10)) { leader.value.pendingProposalCount == 2 })
        loop.shutdown()
        #expect(try await BoundedWait.value(of: stranded) == .failure(.stopped))
        // After the shutdown, a proposal is refused at once.
        await #expect(throws: RaftError.stopped) { try await leader.propose([1]) }
    }
}
