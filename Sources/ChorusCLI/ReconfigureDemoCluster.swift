import Chorus
import EventCore
import Raft
import SWIM
import UDPTransport

/// The machines of `chorus demo`'s reconfigure scenario on one event loop:
/// each a ``ChorusNode`` on a UDP socket, a SWIM member and a replica of
/// Raft group 1 (a key-value map) started with a `RaftMembershipPolicy`,
/// so that the group's members follow what SWIM sees. Loop-confined.
///
/// A writer puts keys `w1`, `w2`, ... one at a time through a running
/// machine (forwarded to the leader), retrying a write until it is
/// acknowledged; every acknowledged key must be in every running replica's
/// map at the end.
final class ReconfigureDemoCluster {
    /// The policy: short times, so that the run takes seconds.
    static let policy: RaftMembershipPolicy = {
        var policy = RaftMembershipPolicy()
        policy.failedMemberGrace = .seconds(2)
        policy.stabilization = .seconds(1)
        policy.interval = .milliseconds(200)
        return policy
    }()
    static let firstMachines = 3
    static let machineCount = 5

    let loop: EventLoop
    let startedAt: Instant
    private(set) var transports: [UDPSocketTransport] = []
    private(set) var machines: [ChorusNode] = []
    private(set) var maps: [KeyValueStateMachine] = []
    /// The machines stopped (crashed, or left SWIM and then stopped).
    private(set) var stopped: Set<Int> = []
    private(set) var timeline: [DemoEvent] = []
    /// The membership last seen at the leader, to tell its changes.
    private var lastMembership: RaftMembership?
    /// The writer: the next key's number, the keys acknowledged, the
    /// attempts that failed (each retried).
    private var nextWrite = 1
    private(set) var acknowledged = 0
    private(set) var failedAttempts = 0
    private var isWriting = false
    private(set) var isWriteInFlight = false
    /// The keys acknowledged when a machine crashed.
    private var acknowledgedAtCrash: Int?

    /// Binds a socket per machine on 127.0.0.1, and starts SWIM on the
    /// first three (machine 1 the seed).
    init(loop: EventLoop) throws {
        self.loop = loop
        startedAt = loop.now
        for index in 0..<Self.machineCount {
            let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
            transports.append(transport)
            machines.append(try ChorusNode(id: NodeID(UInt64(index + 1)), transport: transport, scheduler: loop))
            maps.append(KeyValueStateMachine())
        }
        for index in 0..<Self.firstMachines { startMember(index) }
    }

    /// Starts machine `index`'s SWIM member (seeded with machine 1).
    func startMember(_ index: Int) {
        machines[index].start(seeds: index == 0 ? [] : [transports[0].localEndpoint])
    }

    /// Whether machine `index`'s member sees `count` machines alive.
    func sees(_ index: Int, alive count: Int) -> Bool {
        machines[index].member.memberCount(.alive) == count
    }

    /// Starts group 1 on the first three machines, on the members SWIM
    /// found.
    func startGroup() throws {
        for index in 0..<Self.firstMachines {
            let members = try machines[index].initialMembers(count: Self.firstMachines)
            try start(index, on: members, joining: false)
        }
        record("machines 1-3 start Raft group 1 on the members SWIM found, with a membership policy")
    }

    /// Starts a joining replica of group 1 on machine `index`, whose peers
    /// are the machines SWIM sees alive advertising the group.
    func join(_ index: Int) throws {
        let members = machines[index].member.allMembers.filter {
            $0.status == .alive && ChorusNode.raftGroups(advertisedBy: $0).contains(1)
        }
        try start(index, on: members, joining: true)
        record("machine \(index + 1) starts a joining replica of group 1 (peers: the machines advertising it)")
    }

    private func start(_ index: Int, on members: [Member], joining: Bool) throws {
        _ = try machines[index].startGroup(
            1, on: members, joining: joining, storage: InMemoryRaftStorage(), stateMachine: maps[index],
            policy: Self.policy)
    }

    private func replica(_ index: Int) -> RaftNode? { machines[index].replicas[1] }

    /// The machine whose replica leads, if one does.
    var leader: Int? {
        running.first { replica($0)?.role == .leader }
    }

    /// Records which machine leads, if one does.
    func recordLeader() {
        if let leader { record("Raft: machine \(leader + 1) leads") }
    }

    /// The group's membership at its leader.
    var membership: RaftMembership? { leader.flatMap { replica($0)?.membership } }

    /// The machines not stopped.
    var running: [Int] { machines.indices.filter { !stopped.contains($0) } }

    /// Records the leader's membership changes since the last call.
    func noteMembership() {
        guard let current = membership, current != lastMembership else { return }
        defer { lastMembership = current }
        guard let last = lastMembership else { return }
        let name = { (id: NodeID) in "machine \(id.rawValue)" }
        for id in current.learnerIDs where !last.hasLearner(id) { record("the leader adds \(name(id)) as a learner") }
        for id in current.ids where !last.contains(id) {
            record(last.hasLearner(id) ? "the leader promotes \(name(id)): it has caught up" : "\(name(id)) is a voter")
        }
        for id in last.ids + last.learnerIDs where !current.includes(id) {
            record("the leader removes \(name(id)) (SWIM sees it \(seenStatus(of: id)))")
        }
        if current.ids != last.ids {
            record("voters now: \(current.ids.map { String($0.rawValue) }.joined(separator: ", "))")
        }
    }

    private func seenStatus(of id: NodeID) -> String {
        guard let leader else { return "?" }
        return machines[leader].member.member(id).map { "\($0.status)" } ?? "gone"
    }

    /// Whether the leader's voters are exactly `ids`, with no learner.
    func votersAre(_ ids: [Int]) -> Bool {
        membership.map { $0.ids == ids.map { NodeID(UInt64($0 + 1)) } && $0.learnerIDs.isEmpty } ?? false
    }

    func startWriting() {
        isWriting = true
        record("a client writes keys w1, w2, ... one at a time through a running machine")
        write()
    }

    func stopWriting() { isWriting = false }

    /// Crashes machine `index`: its nodes stop and its socket closes.
    func crash(_ index: Int) {
        record("machine \(index + 1)\(index == leader ? " (the leader)" : "") crashes: its socket closes")
        acknowledgedAtCrash = acknowledged
        stopped.insert(index)
        machines[index].stop()
        transports[index].close()
    }

    /// Machine `index` leaves SWIM gracefully; once gone from the group,
    /// ``retire(_:)`` stops it.
    func leave(_ index: Int) {
        record("machine \(index + 1) leaves SWIM gracefully")
        machines[index].member.leave()
    }

    /// Stops machine `index` (after it left and was removed).
    func retire(_ index: Int) {
        stopped.insert(index)
        machines[index].stop()
        transports[index].close()
    }

    func close() {
        for index in running { retire(index) }
    }

    /// Whether every running replica has applied what the leader has.
    var isCaughtUp: Bool {
        guard let leader, let target = replica(leader)?.commitIndex else { return false }
        return running.allSatisfy { (replica($0)?.appliedIndex ?? 0) >= target }
    }

    /// Puts `text` in the timeline, now.
    func record(_ text: String) { timeline.append(DemoEvent(at: loop.now, text: text)) }

    /// Writes key `w<nextWrite>` through the leader (or any running
    /// replica, which forwards); retries in 20 ms on failure.
    private func write() {
        guard isWriting, let through = leader ?? running.first(where: { replica($0) != nil }),
              let replica = replica(through)
        else {
            if isWriting { _ = loop.schedule(at: loop.now + .milliseconds(20)) { [unowned self] in write() } }
            return
        }
        isWriteInFlight = true
        let command = KeyValueCommand.put(key: "w\(nextWrite)", value: Array(String(nextWrite).utf8)).encoded
        replica.propose(command) { [unowned self] result in
            isWriteInFlight = false
            if case .success = result {
                acknowledged = nextWrite
                nextWrite += 1
                loop.onNextTurn { [unowned self] in write() }
            } else {
                failedAttempts += 1
                _ = loop.schedule(at: loop.now + .milliseconds(20)) { [unowned self] in write() }
            }
        }
    }

    /// The summary table, and what is wrong: a running machine's map
    /// without an acknowledged key, maps that differ, a membership that is
    /// not the running machines or not on every one of them, no write
    /// acknowledged after the crash.
    func report() -> (table: String, problems: [String]) {
        var problems: [String] = []
        var rows = [["machine", "socket", "SWIM sees", "Raft", "voters it knows", "applied", "keys"]]
        for index in machines.indices {
            let replica = replica(index)
            let isStopped = stopped.contains(index)
            let view = isStopped
                ? "(stopped)"
                : "\(machines[index].member.memberCount(.alive)) alive, \(machines[index].member.memberCount(.dead)) dead, "
                    + "\(machines[index].member.memberCount(.left)) left"
            rows.append([
                "\(index + 1)", "\(transports[index].localEndpoint)", view,
                isStopped ? "-" : replica.map { "\($0.role)" } ?? "-",
                replica.map { $0.membership.ids.map { String($0.rawValue) }.joined(separator: ",") } ?? "-",
                replica.map { "\($0.appliedIndex)" } ?? "-", "\(maps[index].values.count)",
            ])
        }
        let runningIDs = running.map { NodeID(UInt64($0 + 1)) }
        if membership?.ids != runningIDs || membership?.learnerIDs.isEmpty != true {
            problems.append("the group's members are \(String(describing: membership)), the running machines \(runningIDs)")
        }
        for index in running where replica(index)?.membership != membership {
            problems.append("machine \(index + 1) lacks the leader's membership, which every running replica must hold")
        }
        for index in running {
            let missing = (0..<acknowledged).filter { maps[index].values["w\($0 + 1)"] == nil }
            if !missing.isEmpty { problems.append("machine \(index + 1) lacks \(missing.count) acknowledged keys") }
        }
        if Set(running.map { maps[$0].values }).count != 1 { problems.append("the running replicas' maps differ") }
        if acknowledged <= acknowledgedAtCrash ?? .max {
            problems.append("no write was acknowledged after the crash")
        }
        let summary = "keys acknowledged: \(acknowledged); failed attempts (each retried): \(failedAttempts)"
        return (DemoReport.render(rows) + "\n\n" + summary, problems)
    }
}
