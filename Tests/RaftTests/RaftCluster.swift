import EventCore
import Raft
import Simulation
import TestSupport
import WireCodec

/// A Raft group in the simulator for the tests: `count` nodes with IDs
/// 1 ... count on one `SimulatedNetwork`, in-memory storage that survives
/// crashes (standing for a durable store) or, with `fileStorage`, a
/// `FileRaftStorage` per node in a temporary directory, dropped at a crash
/// and reopened from its files at the restart (so recovery runs), and the
/// safety invariants of Raft (§5.2, §5.4.3, Figure 3) checked as the run
/// goes:
///
/// - election safety: at most one leader per term;
/// - leader completeness: a new leader holds every entry applied anywhere;
/// - state machine safety: every node applies the same command at an index;
/// - applied in order, once: each incarnation applies rising indices;
/// - log matching (``checkLogMatching()``): two logs with an entry of the
///   same index and term are identical up to it.
final class RaftCluster {
    /// Records every command with the cluster, then applies it to the
    /// node's `inner` state machine, if any. Its snapshots carry the
    /// node's whole applied history (then the inner snapshot), so a node
    /// restored from one still answers for every command before it.
    final class RecordingStateMachine: RaftStateMachine {
        unowned let cluster: RaftCluster
        let node: Int
        let inner: (any RaftStateMachine)?

        init(cluster: RaftCluster, node: Int, inner: (any RaftStateMachine)?) {
            self.cluster = cluster
            self.node = node
            self.inner = inner
        }

        func apply(_ command: [UInt8], at index: UInt64) -> [UInt8] {
            cluster.recordApply(node: node, index: index, command: command)
            return inner?.apply(command, at: index) ?? Array("applied \(index)".utf8)
        }

        func snapshot() -> [UInt8] {
            var writer = WireWriter()
            writer.writeVarint(UInt64(cluster.applied[node].count))
            for command in cluster.applied[node] {
                writer.writeVarint(command.index)
                writer.writeBytes(command.command)
            }
            writer.writeBytes(inner?.snapshot() ?? [])
            return writer.bytes
        }

        func restore(from snapshot: [UInt8]) throws {
            var history: [AppliedCommand] = []
            let innerBytes = try snapshot.withUnsafeBytes { raw in
                var reader = WireReader(raw)
                for _ in 0..<(try reader.readVarint()) {
                    history.append(AppliedCommand(index: try reader.readVarint(), command: try reader.readByteArray()))
                }
                return try reader.readByteArray()
            }
            try inner?.restore(from: innerBytes)
            cluster.recordRestore(node: node, history: history)
        }
    }

    struct AppliedCommand: Equatable {
        var index: UInt64
        var command: [UInt8]
    }

    struct Acknowledgement {
        var command: [UInt8]
        var result: [UInt8]
        var invokedAt: Instant
        var completedAt: Instant
    }

    let network: SimulatedNetwork
    /// Each node's configuration at its next start (the cluster's,
    /// unless a test changes one).
    var configurations: [RaftConfiguration]
    let simulatedNodes: [SimulatedNode]
    /// Each node's storage; nil while a node with file storage is down.
    private(set) var storages: [(any RaftStorage)?]
    /// Whether each node's file store was created (by its first start).
    private var hasFileStore: [Bool]
    /// Where the nodes' file stores live (a subdirectory per node) and how
    /// they write, if the nodes have file stores.
    let fileStores: (directory: TemporaryDirectory, options: FileRaftStorage.Options)?
    private(set) var rafts: [RaftNode?]
    /// What each node's current incarnation writes through: fenced when a
    /// forced fault crashes the node mid-turn (see `SimulatedNode.onCrash`).
    private var fences: [FencedRaftStorage?]
    /// What each node's current incarnation applied, in order (a leader's
    /// no-op entries never reach the state machine, so indices skip them).
    private(set) var applied: [[AppliedCommand]]
    /// The command committed at each index, as first applied anywhere.
    private(set) var committed: [UInt64: [UInt8]] = [:]
    private(set) var leaders: [UInt64: NodeID] = [:]
    private(set) var violations: [String] = []
    private(set) var acknowledged: [Acknowledgement] = []
    private(set) var failures: [RaftError] = []
    /// Snapshots restored by nodes (from storage at a restart, or from a
    /// leader).
    private(set) var restores = 0
    private var commandsSent = 0
    private let makeStateMachine: () -> (any RaftStateMachine)?
    /// Where every node logs.
    private let logger: any LogSink
    /// Each node's current inner state machine.
    private(set) var stateMachines: [(any RaftStateMachine)?]

    /// The group's first members: nodes 0 ..< `initialMembers`; the others
    /// start later, joining (``startJoining(_:)``).
    let initialMembers: Int

    init(count: Int, seed: UInt64, link: LinkConditions = LinkConditions(), initialMembers: Int? = nil,
         configuration: RaftConfiguration = RaftConfiguration(), fileStorage: FileRaftStorage.Options? = nil,
         logger: any LogSink = DiscardingLogSink(),
         makeStateMachine: @escaping () -> (any RaftStateMachine)? = { nil }) throws {
        self.initialMembers = initialMembers ?? count
        let network = SimulatedNetwork(seed: seed)
        try network.setDefaultConditions(link)
        self.network = network
        configurations = Array(repeating: configuration, count: count)
        simulatedNodes = (0..<count).map { _ in network.addNode() }
        fileStores = try fileStorage.map { (try TemporaryDirectory(), $0) }
        storages = Array(repeating: nil, count: count)
        hasFileStore = Array(repeating: false, count: count)
        rafts = Array(repeating: nil, count: count)
        fences = Array(repeating: nil, count: count)
        self.makeStateMachine = makeStateMachine
        self.logger = logger
        stateMachines = Array(repeating: nil, count: count)
        applied = Array(repeating: [], count: count)
        for index in 0..<count {
            simulatedNodes[index].onCrash = { [unowned self] _ in self.fences[index]?.fence() }
            if index < self.initialMembers { try start(index) }
        }
    }

    deinit {
        fileStores?.directory.remove()
    }

    static func id(_ index: Int) -> NodeID { NodeID(UInt64(index + 1)) }

    var indices: Range<Int> { simulatedNodes.indices }

    /// Starts (or restarts, from its storage) node `index`; a file store
    /// is opened as `opening` if given, else as new at the node's first
    /// start and as existing after.
    /// A node past ``initialMembers`` starts (and restarts) joining, with
    /// the first members as its peers (the group's membership when the
    /// tests start one).
    func start(_ index: Int, opening: FileRaftStorage.Opening? = nil) throws {
        var peers: [NodeID: Endpoint] = [:]
        for other in 0..<initialMembers where other != index {
            peers[Self.id(other)] = simulatedNodes[other].localEndpoint
        }
        applied[index] = []
        stateMachines[index] = makeStateMachine()
        let node = simulatedNodes[index]
        var generator = network.makeRandomGenerator()
        let storage = try storages[index] ?? openStorage(index, opening: opening)
        storages[index] = storage
        let fence = FencedRaftStorage(storage)
        fences[index] = fence
        rafts[index] = try RaftNode(
            id: Self.id(index), group: 1, peers: peers, joining: index >= initialMembers, storage: fence,
            stateMachine: RecordingStateMachine(cluster: self, node: index, inner: stateMachines[index]), transport: node, scheduler: node,
            configuration: configurations[index], seed: generator.next(), logger: logger)
    }

    /// The directory of node `index`'s file store.
    func fileStoreDirectory(of index: Int) -> String? {
        fileStores.map { "\($0.directory.path)/node-\(index + 1)" }
    }

    /// A storage for node `index`: its file store, opened as `opening`
    /// (by default created at its first start and opened, and recovered,
    /// from its directory at a restart), or a new in-memory one.
    private func openStorage(_ index: Int, opening: FileRaftStorage.Opening?) throws -> any RaftStorage {
        guard let fileStores, let directory = fileStoreDirectory(of: index) else { return InMemoryRaftStorage() }
        let storage = try FileRaftStorage(
            directory: directory, opening: opening ?? (hasFileStore[index] ? .existing : .new),
            options: fileStores.options)
        hasFileStore[index] = true
        return storage
    }

    func crash(_ index: Int) {
        rafts[index]?.stop()
        rafts[index] = nil
        fences[index] = nil
        if fileStores != nil { storages[index] = nil }
        network.crash(simulatedNodes[index])
    }

    /// Every entry node `index`'s storage holds (none while a node with file
    /// storage is down).
    func log(of index: Int) -> [RaftEntry] {
        guard let storage = storages[index] else { return [] }
        return storage.entries(from: storage.firstIndex, through: storage.lastIndex, maximumBytes: .max)
    }

    func restart(_ index: Int, opening: FileRaftStorage.Opening? = nil) throws {
        network.restart(simulatedNodes[index])
        try start(index, opening: opening)
    }

    var live: [Int] { indices.filter { rafts[$0] != nil } }

    /// The live leader with the highest term, if any.
    var leader: Int? {
        live.filter { rafts[$0]?.role == .leader }.max { rafts[$0]!.term < rafts[$1]!.term }
    }

    /// Proposes a fresh command at node `index`, recording the outcome.
    func propose(at index: Int, prefix: String = "c") {
        commandsSent += 1
        propose(Array("\(prefix)\(commandsSent)".utf8), at: index)
    }

    /// Proposes `command` at node `index`, recording the outcome.
    func propose(_ command: [UInt8], at index: Int) {
        guard let raft = rafts[index] else { return }
        let invokedAt = network.now
        raft.propose(command) { [unowned self] result in
            switch result {
            case .success(let value):
                acknowledged.append(Acknowledgement(command: command, result: value, invokedAt: invokedAt,
                                                    completedAt: network.now))
            case .failure(let error):
                failures.append(error)
            }
        }
    }

    // MARK: Invariants

    fileprivate func recordApply(node: Int, index: UInt64, command: [UInt8]) {
        if let previous = applied[node].last?.index, previous >= index {
            violations.append("node \(node + 1) applied index \(index) after \(previous)")
        }
        applied[node].append(AppliedCommand(index: index, command: command))
        if let known = committed[index] {
            if known != command { violations.append("index \(index): node \(node + 1) applied another command") }
        } else {
            committed[index] = command
        }
    }

    /// A node restored a snapshot carrying `history`: it must agree with
    /// what was committed, and it replaces the node's applied record.
    fileprivate func recordRestore(node: Int, history: [AppliedCommand]) {
        restores += 1
        for command in history where committed[command.index].map({ $0 != command.command }) ?? false {
            violations.append("index \(command.index): node \(node + 1) restored another command")
        }
        if let last = history.last?.index, let previous = applied[node].last?.index, last < previous {
            violations.append("node \(node + 1) restored a snapshot through \(last) after applying \(previous)")
        }
        applied[node] = history
    }

    /// Election safety and leader completeness, at this instant.
    func checkLeaders() {
        for index in live {
            guard let raft = rafts[index], raft.role == .leader else { continue }
            if let known = leaders[raft.term] {
                if known != raft.id { violations.append("term \(raft.term) has leaders \(known) and \(raft.id)") }
                continue
            }
            leaders[raft.term] = raft.id
            let log = log(of: index)
            let first = storages[index]?.firstIndex ?? 1
            for (entryIndex, command) in committed.sorted(by: { $0.key < $1.key }) where entryIndex >= first {
                let position = Int(entryIndex - first)
                guard position < log.count else {
                    violations.append("leader \(raft.id) of term \(raft.term) lacks committed index \(entryIndex)")
                    break
                }
                let entry = log[position]
                let held = entry.kind == .command ? entry.command : []
                if held != command {
                    violations.append("leader \(raft.id) of term \(raft.term) holds another entry at \(entryIndex)")
                }
            }
        }
    }

    /// Log matching over every pair of stored logs.
    func checkLogMatching() {
        for a in indices {
            for b in indices where b > a {
                // Compare from the later of the two first indices: what one
                // of them compacted is covered by its snapshot.
                guard let leftStorage = storages[a], let rightStorage = storages[b] else { continue }
                let first = max(leftStorage.firstIndex, rightStorage.firstIndex)
                let left = log(of: a).drop { $0.index < first }
                let right = log(of: b).drop { $0.index < first }
                let shared = min(left.count, right.count)
                guard let last = (0..<shared).last(where: {
                    left[left.startIndex + $0].term == right[right.startIndex + $0].term
                }) else { continue }
                if Array(left.prefix(last + 1)) != Array(right.prefix(last + 1)) {
                    violations.append("logs of nodes \(a + 1) and \(b + 1) share index \(Int(first) + last) and term but differ before")
                }
            }
        }
    }

    /// Runs `duration` of simulated time (to the first event past it),
    /// checking leaders after each event.
    func run(for duration: Duration) {
        let end = network.now + duration
        while network.now < end && network.step() { checkLeaders() }
    }

    /// Runs until `condition` holds, checking every 10 ms of simulated time
    /// for at most `limit`; returns whether it held.
    @discardableResult
    func run(until condition: () -> Bool, limit: Duration) -> Bool {
        let end = network.now + limit
        while network.now < end {
            if condition() { return true }
            run(for: .milliseconds(10))
        }
        return condition()
    }

    /// Whether every live node has applied the same commands through the
    /// same commit index.
    var converged: Bool {
        let nodes = live
        guard let first = nodes.first, let commit = rafts[first]?.commitIndex else { return false }
        return nodes.allSatisfy { rafts[$0]?.appliedIndex == commit && rafts[$0]?.commitIndex == commit }
            && nodes.allSatisfy { applied[$0] == applied[first] }
    }

    /// Every acknowledged command appears in every live node's applied log.
    func lostAcknowledgements() -> [String] {
        var lost: [String] = []
        for index in live {
            let commands = Set(applied[index].map(\.command))
            for ack in acknowledged where !commands.contains(ack.command) {
                lost.append("node \(index + 1) lacks \(String(decoding: ack.command, as: UTF8.self))")
            }
        }
        return lost
    }
}
