import EventCore
import Foundation
import Raft
import RaftStateMachines
import UDPTransport

#if canImport(Glibc)
import Glibc
#endif

/// CASPaxos's Raft peer over loopback UDP, with the same two loops and the
/// same clients as ``CASPaxosLoopbackRun``: three ``RaftNode``s (in-memory
/// storage, the replicated ``KeyValueStateMachine``) on 127.0.0.1, and
/// closed-loop clients each writing its own key (an 8-byte counter, as
/// CASPaxos's clients write theirs) as soon as its last write was applied.
/// With `counting`, the replicas run Raft's pipelined-throughput state
/// machine instead (``CountingStateMachine``: each command counted, none
/// applied), and each client proposes its 8-byte counter alone.
///
/// The shape favours Raft: the leader and the clients share one loop (a
/// client proposes at the leader with no hop), the two followers have the
/// other loop to themselves. Replica 1 is made the leader by a shorter
/// election timeout (30 ms against the others' 150 ms), so that the loops
/// are laid out before the election.
///
/// With several `groups`, each machine runs a replica of every group, the
/// first machine every group's leader, and the workload's clients and
/// operations are split evenly over the groups. The replicas of a machine
/// share one socket through a ``RaftGroupMultiplexer``, or, with
/// `socketPerGroup`, each has a socket of its own (what a host without the
/// multiplexer needs).
final class RaftLoopbackRun {
    private let workload: CASPaxosWorkload
    private let counting: Bool
    private let groups: Int
    private let socketPerGroup: Bool
    private let leaderLoop: EventLoop
    private let followerLoop: EventLoop

    init(_ workload: CASPaxosWorkload, counting: Bool = false, groups: Int = 1, socketPerGroup: Bool = false) throws {
        self.workload = workload
        self.counting = counting
        self.groups = groups
        self.socketPerGroup = socketPerGroup
        leaderLoop = try EventLoop()
        followerLoop = try EventLoop()
        try leaderLoop.start()
        try followerLoop.start()
    }

    deinit {
        leaderLoop.shutdown()
        followerLoop.shutdown()
    }

    /// Runs the workload once on fresh, elected groups.
    func run() throws -> CASPaxosRunOutcome {
        let (groups, socketPerGroup) = (self.groups, self.socketPerGroup)
        let sockets = socketPerGroup ? groups : 1
        let leaderTransports = try onLoop(leaderLoop) { loop in
            LoopBound(try (0..<sockets).map { _ in try UDPSocketTransport.bind(to: .loopbackV4(), on: loop) }, on: loop)
        }
        let followerTransports = try onLoop(followerLoop) { loop in
            LoopBound(
                try (0..<2).map { _ in
                    try (0..<sockets).map { _ in try UDPSocketTransport.bind(to: .loopbackV4(), on: loop) }
                }, on: loop)
        }
        // By machine, then socket.
        let endpoints = try [onLoop(leaderLoop) { _ in leaderTransports.value.map(\.localEndpoint) }]
            + onLoop(followerLoop) { _ in followerTransports.value.map { $0.map(\.localEndpoint) } }
        @Sendable func peers(of index: Int, group: Int) -> [NodeID: Endpoint] {
            var peers: [NodeID: Endpoint] = [:]
            for other in endpoints.indices where other != index {
                peers[NodeID(UInt64(other + 1))] = endpoints[other][socketPerGroup ? group : 0]
            }
            return peers
        }
        let counting = counting
        @Sendable func stateMachine() -> any RaftStateMachine {
            counting ? CountingStateMachine() : KeyValueStateMachine()
        }
        /// The transport of `group`'s replica among a machine's sockets
        /// (a channel of `multiplexer` when the groups share one).
        @Sendable func transport(
            of group: Int, in transports: [UDPSocketTransport], multiplexer: RaftGroupMultiplexer?
        ) -> any Transport {
            multiplexer?.channel(for: UInt64(group + 1)) ?? transports[socketPerGroup ? group : 0]
        }
        let leaders = try onLoop(leaderLoop) { loop in
            var configuration = RaftConfiguration()
            configuration.electionTimeout = .milliseconds(30)
            configuration.heartbeatInterval = .milliseconds(10)
            let transports = leaderTransports.value
            let multiplexer = groups > 1 && !socketPerGroup
                ? try RaftGroupMultiplexer(transport: transports[0], scheduler: loop) : nil
            let nodes = try (0..<groups).map { group in
                try RaftNode(
                    id: NodeID(1), group: UInt64(group + 1), peers: peers(of: 0, group: group),
                    storage: InMemoryRaftStorage(), stateMachine: stateMachine(),
                    transport: transport(of: group, in: transports, multiplexer: multiplexer), scheduler: loop,
                    configuration: configuration, seed: 1)
            }
            return LoopBound(nodes, on: loop)
        }
        let followers = try onLoop(followerLoop) { loop in
            let nodes = try (1...2).flatMap { index in
                let transports = followerTransports.value[index - 1]
                let multiplexer = groups > 1 && !socketPerGroup
                    ? try RaftGroupMultiplexer(transport: transports[0], scheduler: loop) : nil
                return try (0..<groups).map { group in
                    try RaftNode(
                        id: NodeID(UInt64(index + 1)), group: UInt64(group + 1), peers: peers(of: index, group: group),
                        storage: InMemoryRaftStorage(), stateMachine: stateMachine(),
                        transport: transport(of: group, in: transports, multiplexer: multiplexer),
                        scheduler: loop, seed: UInt64(index + 1))
                }
            }
            return LoopBound(nodes, on: loop)
        }
        try waitForElection(of: leaders)
        var groupWorkload = workload
        groupWorkload.clients = max(1, workload.clients / groups)
        groupWorkload.operations = workload.operations / groups
        let starts = (0..<groups).map { group in
            let workload = groupWorkload
            let start: @Sendable (@escaping (CASPaxosRunOutcome) -> Void) -> Void = { done in
                RaftLoopbackClients(
                    workload: workload, counting: counting, loop: leaders.loop, leader: leaders.value[group]
                ).start(done)
            }
            return (leaderLoop, start)
        }
        var outcome = try awaitOutcomes(starts)
        let leaderDatagrams = try onLoop(leaderLoop) { _ in
            for node in leaders.value { node.stop() }
            for transport in leaderTransports.value { transport.close() }
            return leaderTransports.value.reduce(0) { $0 + Int($1.counters.datagramsSent) }
        }
        let followerDatagrams = try onLoop(followerLoop) { _ in
            for node in followers.value { node.stop() }
            for transport in followerTransports.value.joined() { transport.close() }
            return followerTransports.value.joined().reduce(0) { $0 + Int($1.counters.datagramsSent) }
        }
        if outcome.succeeded > 0 {
            outcome.messagesPerOp = Double(leaderDatagrams + followerDatagrams) / Double(outcome.succeeded)
        }
        return outcome
    }

    /// Waits (up to 10 s) until each of `leaders` leads and has committed
    /// an entry of its term.
    private func waitForElection(of leaders: LoopBound<[RaftNode]>) throws {
        for _ in 0..<10_000 {
            if try onLoop(leaderLoop, { _ in leaders.value.allSatisfy { $0.role == .leader && $0.commitIndex > 0 } }) {
                return
            }
            usleep(1_000)
        }
        throw LoopbackSetupError("replica 1 did not become the Raft leader of every group within 10 s")
    }
}

/// The clients of a ``RaftLoopbackRun``, on the leader's loop: each puts
/// its key's next counter value, and again as soon as the write is applied
/// on the leader, until the workload's operations are done. Loop-confined.
final class RaftLoopbackClients {
    private let workload: CASPaxosWorkload
    /// Commands are the bare counters (for ``CountingStateMachine``), not
    /// key-value puts.
    private let counting: Bool
    private let loop: EventLoop
    private let leader: RaftNode
    private var issued = 0
    private var counters: [UInt64]
    private var tally: ClosedLoopTally
    private var done: ((CASPaxosRunOutcome) -> Void)?

    init(workload: CASPaxosWorkload, counting: Bool, loop: EventLoop, leader: RaftNode) {
        self.workload = workload
        self.counting = counting
        self.loop = loop
        self.leader = leader
        counters = Array(repeating: 0, count: workload.clients)
        tally = ClosedLoopTally(operations: workload.operations, startingAt: .zero)
    }

    /// Starts every client; `done` gets the outcome once every operation
    /// has completed.
    func start(_ done: @escaping (CASPaxosRunOutcome) -> Void) {
        self.done = done
        tally = ClosedLoopTally(operations: workload.operations, startingAt: loop.now)
        for client in counters.indices { issue(client) }
    }

    private func issue(_ client: Int) {
        guard issued < workload.operations else { return }
        issued += 1
        counters[client] &+= 1
        let value = withUnsafeBytes(of: counters[client].bigEndian) { Array($0) }
        let began = loop.now
        // The completion holds the clients until their last write is done.
        let command = counting ? value : KeyValueCommand.put(key: "key-\(client)", value: value).encoded
        leader.propose(command) { [self] result in
            let succeeded = if case .success = result { true } else { false }
            if tally.end(succeeded: succeeded, began: began, now: loop.now) {
                finish()
            } else {
                issue(client)
            }
        }
    }

    private func finish() {
        var outcome = tally.outcome
        // One replication round per write: the leader's append to both
        // followers and their acknowledgements (many writes share one).
        outcome.roundTripsPerOp = 1
        done?(outcome)
        done = nil
    }
}

/// A loopback run that could not be set up.
struct LoopbackSetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
