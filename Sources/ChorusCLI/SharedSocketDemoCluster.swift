import CASPaxos
import Chorus
import EventCore
import Raft
import SWIM
import UDPTransport

/// The machines of `chorus demo`'s one-socket scenario on one event loop:
/// each a ``ChorusNode`` on a UDP socket: a SWIM member, a CASPaxos node
/// (acceptor and proposer) and a Raft replica of a key-value map (group
/// 1), whose acceptors and peers are the members SWIM found.
/// Loop-confined.
///
/// Each machine writes its own key in both (`m<machine>`, the values 1, 2,
/// 3, ...), one write at a time per protocol, and retries a write until it
/// is acknowledged (a retry writes the same value, so a write that did
/// take effect changes nothing when it is retried). So each key ends at
/// its writer's last acknowledged value, or at the value in flight when
/// its machine stopped.
final class SharedSocketDemoCluster {
    /// One machine's writer in one protocol: the value it is writing (or
    /// writes next), the last acknowledged, and whether a write of `value`
    /// is in flight or waits to be retried.
    struct Writer {
        var value = 1
        var acknowledged = 0
        var isBusy = false
        var failedAttempts = 0
        /// Writes acknowledged after a machine stopped.
        var acknowledgedAfterStop = 0

        /// The write of `value` was acknowledged.
        mutating func acknowledge(afterStop: Bool) {
            acknowledged = value
            value += 1
            isBusy = false
            if afterStop { acknowledgedAfterStop += 1 }
        }
    }

    static let machineCount = 3
    let loop: EventLoop
    let startedAt: Instant
    private(set) var transports: [UDPSocketTransport] = []
    private(set) var machines: [ChorusNode] = []
    /// The members SWIM found, once consensus started on them.
    private var consensusMembers: [Member] = []
    private(set) var maps: [KeyValueStateMachine] = []
    /// Per machine: its CASPaxos writer and its Raft writer.
    private(set) var casPaxosWriters = Array(repeating: Writer(), count: machineCount)
    private(set) var raftWriters = Array(repeating: Writer(), count: machineCount)
    private var isWriting = false
    /// The machine stopped.
    private(set) var stopped: Int?
    /// What the last reads through a running machine's CASPaxos node
    /// returned, by machine (nil: not read yet, or the read failed).
    private(set) var readBack: [Int: [UInt8]?] = [:]
    private(set) var timeline: [DemoEvent] = []

    /// Binds a socket per machine on 127.0.0.1 and starts SWIM on each,
    /// machine 1 the seed.
    init(loop: EventLoop) throws {
        self.loop = loop
        startedAt = loop.now
        for index in 0..<Self.machineCount {
            let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
            let machine = try ChorusNode(id: NodeID(UInt64(index + 1)), transport: transport, scheduler: loop)
            machine.member.setEventHandler { [unowned self] event in
                guard event.kind == .suspect || event.kind == .dead else { return }
                record("machine \(index + 1) sees machine \(event.member.id.rawValue) \(event.kind)")
            }
            transports.append(transport)
            machines.append(machine)
        }
        machines[0].start()
        for machine in machines.dropFirst() { machine.start(seeds: [transports[0].localEndpoint]) }
    }

    /// Whether every machine's member knows every machine, all alive.
    var hasConverged: Bool {
        machines.allSatisfy { (try? $0.initialMembers(count: Self.machineCount)) != nil }
    }

    /// Starts CASPaxos and Raft on every machine, on the members its SWIM
    /// member found.
    func startConsensus() throws {
        for machine in machines {
            let members = try machine.initialMembers(count: Self.machineCount)
            consensusMembers = members
            _ = try machine.startRegisters(on: members, acceptorStore: InMemoryAcceptorStore())
            let map = KeyValueStateMachine()
            maps.append(map)
            _ = try machine.startGroup(1, on: members, storage: InMemoryRaftStorage(), stateMachine: map)
        }
        let endpoints = consensusMembers.map { "\($0.endpoint)" }.sorted().joined(separator: ", ")
        record("CASPaxos acceptors and Raft peers: the members SWIM found (\(endpoints))")
    }

    /// Machine `machine`'s CASPaxos node and Raft replica (once started).
    private func registers(_ machine: Int) -> CASPaxosNode? { machines[machine].registers }
    private func replica(_ machine: Int) -> RaftNode? { machines[machine].replicas[1] }

    /// The machine whose replica leads Raft, if one does.
    var raftLeader: Int? {
        machines.indices.first { $0 != stopped && replica($0)?.role == .leader }
    }

    /// What each running machine's node reports of the consensus members
    /// it no longer sees alive, for the timeline.
    func recordUnavailable() {
        for index in running {
            let unavailable = machines[index].unavailable(among: consensusMembers)
                .map { "machine \($0.id.rawValue) (\($0.status))" }.joined(separator: ", ")
            record("machine \(index + 1) reports its consensus members unavailable: \(unavailable); CASPaxos and Raft run on the others")
        }
    }

    func startWriting() {
        isWriting = true
        record("every machine writes its key through its CASPaxos node and its Raft replica")
        for machine in 0..<Self.machineCount {
            writeRegister(machine)
            writeMap(machine)
        }
    }

    /// Stops `machine` abruptly: its nodes stop and its socket closes.
    func stop(_ machine: Int) {
        stopped = machine
        record("machine \(machine + 1) (the Raft leader) stops abruptly: its socket closes")
        shutDown(machine)
    }

    /// Stops issuing writes: each writer finishes the one it is on,
    /// retrying it until it is acknowledged.
    func stopWriting() { isWriting = false }

    /// Whether no write is in flight on a running machine.
    var isSettled: Bool {
        running.allSatisfy { !casPaxosWriters[$0].isBusy && !raftWriters[$0].isBusy }
    }

    /// Whether every running machine sees the stopped one dead.
    var stopSeenDead: Bool {
        running.allSatisfy(seesStoppedDead)
    }

    /// Whether `machine`'s member sees the stopped machine dead.
    private func seesStoppedDead(_ machine: Int) -> Bool {
        guard let stopped else { return false }
        return machines[machine].member.member(machines[stopped].member.id)?.status == .dead
    }

    /// The machines not stopped.
    var running: [Int] { (0..<Self.machineCount).filter { $0 != stopped } }

    /// Reads every machine's key through a running machine's CASPaxos node.
    func readBackRegisters() {
        guard let reader = running.first else { return }
        for machine in 0..<Self.machineCount {
            registers(reader)?.read(key: Self.key(machine)) { [unowned self] result in
                readBack[machine] = try? result.get()
            }
        }
    }

    /// Whether the running replicas have applied the same map.
    var mapsAgree: Bool { Set(running.map { maps[$0].values }).count == 1 }

    func close() {
        for index in running { shutDown(index) }
    }

    /// Stops `machine`'s nodes and closes its socket.
    private func shutDown(_ machine: Int) {
        machines[machine].stop()
        transports[machine].close()
    }

    static func key(_ machine: Int) -> [UInt8] { Array("m\(machine + 1)".utf8) }

    /// The summary tables, and what is wrong: a running machine that does
    /// not see the stopped one dead, a key not at its writer's last
    /// acknowledged value (or, for the stopped machine's, the value in
    /// flight), running replicas that disagree, a datagram a multiplexer
    /// dropped.
    func report() -> (table: String, problems: [String]) {
        var problems: [String] = []
        var machineRows = [["machine", "socket", "SWIM sees", "datagrams in: SWIM", "CASPaxos", "Raft", "dropped"]]
        for index in 0..<Self.machineCount {
            let counters = machines[index].multiplexer.counters
            let dropped = counters.malformed + counters.unclaimed
            let isStopped = index == stopped
            let view =
                isStopped
                ? "(stopped)"
                : "\(machines[index].member.memberCount(.alive)) alive, \(machines[index].member.memberCount(.dead)) dead"
            machineRows.append([
                "\(index + 1)", "\(transports[index].localEndpoint)", view,
                "\(counters.deliveredByProtocol[.swim] ?? 0)", "\(counters.deliveredByProtocol[.casPaxos] ?? 0)",
                "\(counters.deliveredByProtocol[.raft] ?? 0)", "\(dropped)",
            ])
            if dropped > 0 { problems.append("machine \(index + 1)'s multiplexer dropped \(dropped) datagrams") }
            if let stopped, !isStopped, !seesStoppedDead(index) {
                problems.append("machine \(index + 1) does not see machine \(stopped + 1) dead")
            }
        }
        var writes = [["key", "CASPaxos: acked", "read back", "Raft: acked", "applied"]]
        for machine in 0..<Self.machineCount {
            let register = readBack[machine].flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) }
            let applied = running.first.flatMap { maps[$0].values["m\(machine + 1)"] }
                .map { String(decoding: $0, as: UTF8.self) }
            writes.append([
                "m\(machine + 1)", "\(casPaxosWriters[machine].acknowledged)", register ?? "-",
                "\(raftWriters[machine].acknowledged)", applied ?? "-",
            ])
            let check = { (protocolName: String, writer: Writer, found: String?) in
                var allowed = [writer.acknowledged == 0 ? nil : String(writer.acknowledged)]
                if machine == self.stopped && writer.isBusy { allowed.append(String(writer.value)) }
                if !allowed.contains(found) {
                    problems.append("\(protocolName): m\(machine + 1) is \(found ?? "empty"), acknowledged \(writer.acknowledged)")
                }
            }
            check("CASPaxos", casPaxosWriters[machine], register)
            check("Raft", raftWriters[machine], applied)
        }
        if !mapsAgree { problems.append("Raft: the running replicas' maps differ") }
        let afterStop = (
            casPaxos: casPaxosWriters.map(\.acknowledgedAfterStop).reduce(0, +),
            raft: raftWriters.map(\.acknowledgedAfterStop).reduce(0, +)
        )
        if afterStop.casPaxos == 0 || afterStop.raft == 0 {
            problems.append("writes stopped with the machine: \(afterStop) acknowledged after it")
        }
        let failed = (
            casPaxos: casPaxosWriters.map(\.failedAttempts).reduce(0, +), raft: raftWriters.map(\.failedAttempts).reduce(0, +)
        )
        let summary = """
            writes acknowledged after the stop: CASPaxos \(afterStop.casPaxos), Raft \(afterStop.raft); \
            failed attempts (each retried): CASPaxos \(failed.casPaxos), Raft \(failed.raft)
            """
        return (DemoReport.render(machineRows) + "\n\n" + DemoReport.render(writes) + "\n\n" + summary, problems)
    }

    /// Puts `text` in the timeline, now.
    func record(_ text: String) { timeline.append(DemoEvent(at: loop.now, text: text)) }

    private func writeRegister(_ machine: Int) {
        guard machine != stopped else { return }
        casPaxosWriters[machine].isBusy = true
        let value = Array(String(casPaxosWriters[machine].value).utf8)
        registers(machine)?.propose(key: Self.key(machine), change: { _ in value }) { [unowned self] result in
            complete(\.casPaxosWriters, machine, succeeded: Self.succeeded(result)) { self.writeRegister(machine) }
        }
    }

    private func writeMap(_ machine: Int) {
        guard machine != stopped else { return }
        raftWriters[machine].isBusy = true
        let value = Array(String(raftWriters[machine].value).utf8)
        let command = KeyValueCommand.put(key: "m\(machine + 1)", value: value).encoded
        replica(machine)?.propose(command) { [unowned self] result in
            complete(\.raftWriters, machine, succeeded: Self.succeeded(result)) { self.writeMap(machine) }
        }
    }

    /// Takes the outcome of a write of machine `machine`'s writer in
    /// `writers`: acknowledged, the writer moves on to its next value (and
    /// `write`s it while writing goes on); failed, it `write`s the same
    /// value again in 20 ms. A stopped machine's outcomes are ignored.
    private func complete(
        _ writers: ReferenceWritableKeyPath<SharedSocketDemoCluster, [Writer]>, _ machine: Int, succeeded: Bool,
        write: @escaping () -> Void
    ) {
        guard machine != stopped else { return }
        guard succeeded else {
            self[keyPath: writers][machine].failedAttempts += 1
            retry(write)
            return
        }
        self[keyPath: writers][machine].acknowledge(afterStop: stopped != nil)
        if isWriting { loop.onNextTurn(write) }
    }

    private static func succeeded<Value, Failure>(_ result: Result<Value, Failure>) -> Bool {
        if case .success = result { return true }
        return false
    }

    /// Runs `write` again in 20 ms: while a leader is elected or an
    /// acceptor is missed, a retry at once would fail the same way.
    private func retry(_ write: @escaping () -> Void) {
        _ = loop.schedule(at: loop.now + .milliseconds(20), write)
    }
}
