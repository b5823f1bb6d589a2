import EventCore
import Raft
import UDPTransport

/// The nodes of `chorus demo`'s Raft scenario on one event loop, the
/// clients writing to them, and what happened when. Loop-confined.
///
/// The leader is stopped halfway through the writes; once they end, it is
/// restarted from its directory (its storage opened as existing) on its
/// old port, and catches up with the new leader (by a snapshot if the
/// leader compacted the entries it lacks).
///
/// Each client puts keys of its own (`c<client>-<sequence>`), one put at a
/// time (closed loop), and retries a put until it is acknowledged: at the
/// hinted leader after ``RaftError/notLeader(leaderHint:)``, at the next
/// node when the leader is unknown or the node was stopped. A put sent to a
/// follower is forwarded to the leader (the default); one whose forward
/// went unanswered when the leader stopped fails as
/// ``RaftError/outcomeUnknown`` and is sent again. A retried put
/// writes the same value again, so retrying one that did commit changes
/// nothing, and every acknowledged put must be in every surviving node's map.
final class RaftDemoCluster {
    /// One client: the node it proposes to, the put it is on, and when that
    /// put was first proposed.
    private struct Client {
        var target: Int
        var sequence = 0
        var acknowledged = 0
        var startedAt = Instant.zero
        var isBusy = false
    }

    let loop: EventLoop
    /// When the nodes were created.
    let startedAt: Instant
    /// Where each node's storage lives (`node-<n>` under it).
    private let directory: String
    private var transports: [UDPSocketTransport] = []
    private var nodes: [RaftNode] = []
    private var stores: [KeyValueStateMachine] = []
    private var clients: [Client]
    private var isIssuing = false
    private var isClosed = false
    /// What happened so far, in order.
    private(set) var timeline: [DemoEvent] = []
    /// The last leader put in the timeline (once its no-op was committed).
    private var announced: (node: Int, term: UInt64)?
    private var leadersElected = 0
    /// When the first leader's no-op was committed.
    private(set) var electedAt: Instant?
    /// The leader stopped, when, and its term.
    private var stopped: (node: Int, at: Instant, term: UInt64)?
    /// When the next leader's no-op was committed, after the stop.
    private var reelectedAt: Instant?
    /// When the next leader acknowledged its first put, after the stop.
    private var failoverAt: Instant?
    /// The stopped node, restarted from its storage, and when.
    private var restarted: (node: Int, at: Instant)?
    /// When the restarted node had applied the whole log.
    private(set) var caughtUpAt: Instant?
    private var writingStartedAt: Instant?
    private var writingEndedAt: Instant?
    private var settledAt: Instant?
    /// Puts acknowledged so far.
    private(set) var commits = 0
    /// Put to acknowledgement (retries included), before the stop and after.
    private var latencies: (before: [Duration], after: [Duration]) = ([], [])
    /// Failed proposals (each retried), by ``RaftError`` case.
    private var failures: [String: Int] = [:]

    /// Binds a socket per node on 127.0.0.1 and starts the nodes, which
    /// begin as followers, each with a `FileRaftStorage` (fsync on) in a
    /// directory of its own under `directory`; watches for leaders from
    /// then on.
    init(nodeCount: Int, clientCount: Int, directory: String, loop: EventLoop) throws {
        self.loop = loop
        self.directory = directory
        startedAt = loop.now
        clients = (0..<clientCount).map { Client(target: $0 % nodeCount) }
        transports = try (0..<nodeCount).map { _ in try UDPSocketTransport.bind(to: .loopbackV4(), on: loop) }
        for index in 0..<nodeCount {
            let store = KeyValueStateMachine()
            stores.append(store)
            // A fresh directory: the group is bootstrapped here.
            nodes.append(try makeNode(index, store: store, opening: .new))
        }
        record("\(nodeCount) nodes start as followers")
        watch()
    }

    /// Node `index` on its transport, with `store`, its storage opened in
    /// its directory as `opening`.
    private func makeNode(_ index: Int, store: KeyValueStateMachine, opening: FileRaftStorage.Opening) throws -> RaftNode {
        var peers: [NodeID: Endpoint] = [:]
        for other in transports.indices where other != index { peers[Self.id(other)] = transports[other].localEndpoint }
        let storage = try FileRaftStorage(directory: "\(directory)/node-\(index + 1)", opening: opening)
        return try RaftNode(
            id: Self.id(index), group: 1, peers: peers, storage: storage, stateMachine: store,
            transport: transports[index], scheduler: loop)
    }


    private static func id(_ index: Int) -> NodeID { NodeID(UInt64(index + 1)) }

    private static func name(_ index: Int) -> String { "node \(index + 1)" }

    private func record(_ text: String) { timeline.append(DemoEvent(at: loop.now, text: text)) }

    // MARK: Leaders

    /// The running node that is leader in the highest term, if any.
    var leader: Int? {
        nodes.indices.filter { !nodes[$0].stopped && nodes[$0].role == .leader }.max { nodes[$0].term < nodes[$1].term }
    }

    /// The leader and its term, for the progress line.
    var leaderDescription: String {
        guard let leader else { return "no leader" }
        return "leader \(Self.name(leader)), term \(nodes[leader].term)"
    }

    /// Every millisecond: puts a new leader in the timeline once its no-op
    /// entry is committed (its commit index is then in its own term), and,
    /// after writing stopped, notes when the run settles.
    private func watch() {
        guard !isClosed else { return }
        if writingEndedAt != nil, settledAt == nil, clients.allSatisfy({ !$0.isBusy }) {
            let running = nodes.filter { !$0.stopped }
            let last = running.map(\.lastIndex).max() ?? 0
            if running.allSatisfy({ $0.appliedIndex == last }) {
                settledAt = loop.now
                record("every put is acknowledged; every running node applied the log through index \(last)")
            }
        }
        if let restarted, caughtUpAt == nil, let leader, leader != restarted.node,
            nodes[restarted.node].appliedIndex == nodes[leader].lastIndex
        {
            caughtUpAt = loop.now
            let node = nodes[restarted.node]
            let snapshots = node.counters.snapshotsInstalled
            record(
                "\(Self.name(restarted.node)) caught up: applied through index \(node.appliedIndex)"
                    + (snapshots > 0 ? " (\(snapshots) snapshot\(snapshots == 1 ? "" : "s") from the leader)" : ""))
        }
        watchReplacement()
        if let leader, announced?.node != leader || announced?.term != nodes[leader].term {
            let node = nodes[leader]
            if node.storage.term(at: node.commitIndex) == node.term {
                announced = (leader, node.term)
                leadersElected += 1
                record("\(Self.name(leader)) is leader in term \(node.term), its no-op committed")
                if electedAt == nil { electedAt = loop.now }
                if stopped != nil, reelectedAt == nil { reelectedAt = loop.now }
            }
        }
        loop.schedule(at: loop.now + .milliseconds(1)) { [weak self] in self?.watch() }
    }

    /// Stops the leader abruptly, as a crash: the node stops (its pending
    /// proposals fail with ``RaftError/stopped``) and its socket closes.
    func stopLeader() {
        guard let leader else { return record("no leader to stop") }
        nodes[leader].stop()
        transports[leader].close()
        stopped = (leader, loop.now, nodes[leader].term)
        record("\(Self.name(leader)), the leader, is stopped abruptly and its socket closed")
    }

    /// Starts the stopped node again on its old port, its storage opened
    /// as existing: it recovers its log, restores its map, and catches up
    /// with the leader.
    func restartStopped() throws {
        guard let stopped else { return record("no stopped node to restart") }
        let index = stopped.node
        // The stopped node's store lets go of the directory's lock.
        (nodes[index].storage as? FileRaftStorage)?.close()
        transports[index] = try UDPSocketTransport.bind(to: transports[index].localEndpoint, on: loop)
        let store = KeyValueStateMachine()
        let node = try makeNode(index, store: store, opening: .existing)
        nodes[index] = node
        stores[index] = store
        restarted = (index, loop.now)
        record(
            "\(Self.name(index)) restarts from its directory on its old port: term \(node.term), snapshot at "
                + "index \(node.snapshotIndex), log through index \(node.lastIndex)")
    }

    // MARK: Clients

    /// Starts every client on its first put; returns when.
    func startWriting() -> Instant {
        writingStartedAt = loop.now
        isIssuing = true
        record("\(clients.count) clients start writing puts, one in flight each")
        for client in clients.indices { issue(client) }
        return loop.now
    }

    /// Lets every client finish (retrying until acknowledged) the put it is
    /// on, without starting another.
    func stopWriting() {
        isIssuing = false
        writingEndedAt = loop.now
        record("writing stops; the clients finish the puts in flight")
    }

    /// Whether, after writing stopped, every put was acknowledged and every
    /// running node applied the whole log.
    var isSettled: Bool { settledAt != nil }

    private static func key(client: Int, sequence: Int) -> String { "c\(client)-\(sequence)" }

    private static func value(client: Int, sequence: Int) -> [UInt8] { Array("\(client).\(sequence)".utf8) }

    private func issue(_ client: Int) {
        guard isIssuing else { return }
        clients[client].sequence += 1
        clients[client].startedAt = loop.now
        clients[client].isBusy = true
        send(client)
    }

    /// Proposes the client's current put to its target (again, after a
    /// failure).
    private func send(_ client: Int) {
        guard !isClosed else { return }
        let state = clients[client]
        let command = KeyValueCommand.put(
            key: Self.key(client: client, sequence: state.sequence),
            value: Self.value(client: client, sequence: state.sequence))
        nodes[state.target].propose(command.encoded) { [unowned self] result in self.completed(client, result) }
    }

    private func completed(_ client: Int, _ result: Result<[UInt8], RaftError>) {
        switch result {
        case .success:
            commits += 1
            let latency = loop.now - clients[client].startedAt
            // Puts the old leader committed are acknowledged by followers
            // for a moment after it stops: failover is the first put of a
            // later term.
            if let stopped, nodes[clients[client].target].term > stopped.term {
                latencies.after.append(latency)
                if failoverAt == nil {
                    failoverAt = loop.now
                    record("\(Self.name(clients[client].target)) acknowledges the first put of term \(nodes[clients[client].target].term)")
                }
            } else {
                latencies.before.append(latency)
            }
            clients[client].acknowledged = clients[client].sequence
            clients[client].isBusy = false
            issue(client)
        case .failure(let error):
            failures[Self.caseName(error), default: 0] += 1
            retry(client, after: error)
        }
    }

    /// Sends the put again, on the next loop turn (a refusal arrives
    /// synchronously, and two nodes may hint at each other for a moment):
    /// at once to the hinted leader or after a dropped entry, after 10 ms to
    /// the next node when no leader is known or the node is stopped, after
    /// 10 ms to the same node otherwise.
    private func retry(_ client: Int, after error: RaftError) {
        var pause = Duration.milliseconds(10)
        switch error {
        case .notLeader(let hint?):
            clients[client].target = Int(hint.rawValue) - 1
            pause = .zero
        case .notLeader(nil), .stopped:
            clients[client].target = (clients[client].target + 1) % nodes.count
        case .proposalDropped:
            pause = .zero
        case .outcomeUnknown, .commandTooLarge, .uncommittedLimitExceeded, .cancelled, .withdrawn,
            .membershipChangePending, .invalidMembershipChange, .invalidTransfer:
            break  // a put is safe to repeat: the same key gets the same value
        }
        loop.schedule(at: loop.now + pause) { [weak self] in self?.send(client) }
    }

    /// The name of `error`'s case.
    private static func caseName(_ error: RaftError) -> String {
        switch error {
        case .notLeader: "notLeader"
        case .commandTooLarge: "commandTooLarge"
        case .uncommittedLimitExceeded: "uncommittedLimitExceeded"
        case .proposalDropped: "proposalDropped"
        case .outcomeUnknown: "outcomeUnknown"
        case .stopped: "stopped"
        case .cancelled: "cancelled"
        case .withdrawn: "withdrawn"
        case .membershipChangePending: "membershipChangePending"
        case .invalidMembershipChange: "invalidMembershipChange"
        case .invalidTransfer: "invalidTransfer"
        }
    }

    // MARK: Reading back

    /// The ReadIndex read-back: reads asked, and how they ended.
    private(set) var readBack = RaftDemoReport.ReadBack()

    /// Whether every read of the read-back has ended.
    var isReadBackDone: Bool { readBack.asked == readBack.matched + readBack.stale + readBack.failed }

    /// Reads back each client's last acknowledged put on every running node
    /// by ReadIndex (no log entry; a follower's read is forwarded to the
    /// leader, then served once the follower has applied the leader's
    /// index), and checks each saw it.
    func startReadBack() {
        readBack.startedAt = loop.now
        for index in nodes.indices where !nodes[index].stopped {
            let store = stores[index]
            for (client, state) in clients.enumerated() where state.acknowledged > 0 {
                let key = Self.key(client: client, sequence: state.acknowledged)
                let expected = Self.value(client: client, sequence: state.acknowledged)
                readBack.asked += 1
                nodes[index].read { [weak self] result in
                    guard let self else { return }
                    switch result {
                    case .success where store.values[key] == expected: readBack.matched += 1
                    case .success: readBack.stale += 1
                    case .failure: readBack.failed += 1
                    }
                    if isReadBackDone { readBack.endedAt = loop.now }
                }
            }
        }
    }

    // MARK: Replacing a member

    /// The membership phase: what happened when.
    private(set) var replacement = RaftDemoReport.Replacement()
    /// The node joining, and the node it replaces.
    private var newcomer: Int?
    private var replaced: Int?

    /// Whether the membership phase has ended (done, or failed).
    var isReplacementDone: Bool { replacement.endedAt != nil || replacement.failure != nil }

    /// Starts a new node, joining, with the group's members as its peers,
    /// and has the leader add it as a learner; once it has caught up
    /// (``watch()``) it is promoted, then the node that was stopped and
    /// restarted is removed from the group and stopped: the member that
    /// crashed is replaced, with the group taking writes' fault tolerance
    /// with it all along.
    func startReplacement() throws {
        let index = nodes.count
        guard let old = restarted?.node else { return record("no restarted node to replace") }
        let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
        var peers: [NodeID: Endpoint] = [:]
        for other in nodes.indices where !nodes[other].stopped { peers[Self.id(other)] = transports[other].localEndpoint }
        let store = KeyValueStateMachine()
        let storage = try FileRaftStorage(directory: "\(directory)/node-\(index + 1)", opening: .new)
        let node = try RaftNode(
            id: Self.id(index), group: 1, peers: peers, joining: true, storage: storage, stateMachine: store,
            transport: transport, scheduler: loop)
        transports.append(transport)
        nodes.append(node)
        stores.append(store)
        newcomer = index
        replaced = old
        replacement.startedAt = loop.now
        record("\(Self.name(index)) starts, joining with an empty log; the leader adds it as a learner")
        change(.addLearner(Self.id(index), endpoint: transport.localEndpoint)) { [self] in
            replacement.learnerAt = loop.now
            record("\(Self.name(index)) is a learner (the change committed): sent the log, not counted")
        }
    }

    /// Asks the leader for `change`, again 20 ms later while there is no
    /// leader or another change is pending; runs `then` once it committed.
    private func change(_ change: RaftMembershipChange, then: @escaping () -> Void) {
        guard !isClosed else { return }
        let retry: () -> Void = { [self] in
            _ = loop.schedule(at: loop.now + .milliseconds(20)) { [weak self] in self?.change(change, then: then) }
        }
        guard let leader else { return retry() }
        nodes[leader].changeMembership(change) { [self] result in
            switch result {
            case .success: then()
            case .failure(.membershipChangePending), .failure(.notLeader), .failure(.proposalDropped): retry()
            case .failure(let error): replacement.failure = "\(change): \(error)"
            }
        }
    }

    /// From ``watch()``: promotes the learner once it has applied the
    /// leader's log, then removes the replaced node.
    private func watchReplacement() {
        guard let newcomer, let replaced, replacement.learnerAt != nil, replacement.caughtUpAt == nil, let leader,
            nodes[newcomer].appliedIndex >= nodes[leader].commitIndex
        else { return }
        replacement.caughtUpAt = loop.now
        let snapshots = nodes[newcomer].counters.snapshotsInstalled
        record(
            "\(Self.name(newcomer)) caught up: applied through index \(nodes[newcomer].appliedIndex)"
                + (snapshots > 0 ? " (\(snapshots) snapshot\(snapshots == 1 ? "" : "s") from the leader)" : "")
                + "; the leader promotes it")
        change(.promote(Self.id(newcomer))) { [self] in
            replacement.promotedAt = loop.now
            record("\(Self.name(newcomer)) is a voter; the leader removes \(Self.name(replaced))")
            change(.remove(Self.id(replaced))) { [self] in
                nodes[replaced].stop()
                transports[replaced].close()
                replacement.endedAt = loop.now
                let members = nodes.indices.filter { !nodes[$0].stopped }.map { "\($0 + 1)" }.joined(separator: ", ")
                record("\(Self.name(replaced)) is removed and stopped; the members are nodes \(members)")
                replacement.members = self.leader.map { nodes[$0].membership.ids.map(\.rawValue) } ?? []
                replacement.expected = nodes.indices.filter { !nodes[$0].stopped }.map { UInt64($0 + 1) }
            }
        }
    }

    // MARK: Results

    /// The figures of the run, and each node's state checked against the
    /// acknowledged puts: every running node must hold the same map, with
    /// every acknowledged put in it and every put the stopped leader had
    /// applied (it was committed).
    func report() -> RaftDemoReport {
        let running = nodes.indices.filter { !nodes[$0].stopped }
        let reference = running.first.map { stores[$0].values } ?? [:]
        var missing = 0
        for (client, state) in clients.enumerated() where state.acknowledged > 0 {
            for sequence in 1...state.acknowledged
            where reference[Self.key(client: client, sequence: sequence)] != Self.value(client: client, sequence: sequence) {
                missing += 1
            }
        }
        let checks = nodes.indices.map { index in
            let values = stores[index].values
            let verdict: String
            if nodes[index].stopped {
                let lost = values.filter { reference[$0.key] != $0.value }.count
                verdict = lost == 0 ? "ok" : "\(lost) of its puts missing elsewhere"
            } else if values != reference {
                verdict = "map differs from \(Self.name(running[0]))'s"
            } else {
                verdict = missing == 0 ? "ok" : "\(missing) acknowledged puts missing"
            }
            let state: RaftDemoReport.NodeCheck.State =
                if replaced == index && replacement.endedAt != nil { .removed }
                else if nodes[index].stopped { .stopped }
                else if newcomer == index { .joined }
                else if restarted?.node == index { .restarted }
                else { .running }
            return RaftDemoReport.NodeCheck(
                name: Self.name(index), state: state, appliedIndex: nodes[index].appliedIndex,
                keys: values.count, syncs: (nodes[index].storage as? FileRaftStorage)?.syncCount ?? 0,
                verdict: verdict)
        }
        func seconds(_ from: Instant?, _ to: Instant?) -> Double {
            guard let from, let to else { return 0 }
            return Double((to - from).nanoseconds) / 1e9
        }
        return RaftDemoReport(
            electionTime: electedAt.map { $0 - startedAt },
            reelectionTime: reelectedAt.flatMap { at in stopped.map { at - $0.at } },
            failoverTime: failoverAt.flatMap { at in stopped.map { at - $0.at } },
            catchUpTime: caughtUpAt.flatMap { at in restarted.map { at - $0.at } },
            leadersElected: leadersElected,
            phases: [
                RaftDemoReport.Phase(
                    name: "before the stop", latencies: latencies.before,
                    seconds: seconds(writingStartedAt, stopped?.at)),
                RaftDemoReport.Phase(
                    name: "after failover", latencies: latencies.after, seconds: seconds(failoverAt, writingEndedAt)),
            ],
            failures: failures, unresolved: clients.filter(\.isBusy).count, acknowledged: commits, nodes: checks,
            readBack: readBack, replacement: replacement)
    }

    /// Stops every node and closes every socket.
    func close() {
        isClosed = true
        isIssuing = false
        for node in nodes { node.stop() }
        for transport in transports { transport.close() }
    }
}
