import CASPaxos
import EventCore
import Testing
import Simulation
import TestSupport

typealias RegisterHistory = HistoryRecorder<[UInt8], RegisterOperation<[UInt8]>, [UInt8]?>

/// A CASPaxos cluster in the simulator: acceptor-only nodes and
/// proposer-only nodes (or, `colocated`, proposers on the first acceptor
/// nodes, both roles in one ``CASPaxosNode``), each proposer with its own
/// clients that issue random reads, writes and compare-and-sets one after
/// another, all recorded in a history for the linearizability checker.
final class SimulatedCASCluster {
    let network: SimulatedNetwork
    let configuration: CASPaxosConfiguration
    private(set) var acceptorNodes: [SimulatedNode] = []
    private(set) var proposerNodes: [SimulatedNode] = []
    private(set) var acceptors: [CASPaxosNode?] = []
    private(set) var proposers: [CASPaxosNode] = []
    /// Per acceptor: its store (kept across crashes, standing for the disk).
    private(set) var memoryStores: [InMemoryAcceptorStore] = []
    /// With file storage: the directory and each acceptor's log path.
    private(set) var directory: TemporaryDirectory?
    let history = RegisterHistory()
    /// Operations invoked and not ended yet (neither with a value nor with
    /// an error).
    private(set) var unfinished = 0
    private let initialQuorums: AcceptorQuorums
    private var random: SeededRandomGenerator
    /// Acceptors `0 ..< colocatedProposers` are also the proposers.
    private let colocatedProposers: Int

    /// Proposer-only nodes keep their configuration in a file of their
    /// own (`configurationStore`), and restart from it.
    private let recordsProposerConfigurations: Bool
    private let keepsAcceptorsInFiles: Bool
    /// Quorums a proposer-only node restarts on instead of the initial
    /// ones (``restartProposer(_:on:)``).
    private var restartQuorums: [Int: AcceptorQuorums] = [:]

    init(
        seed: UInt64, acceptorCount: Int = 3, proposerCount: Int = 2, colocated: Bool = false,
        fileStorage: Bool = false, proposerConfigurationStores: Bool = false, link: LinkConditions = LinkConditions(),
        configuration: CASPaxosConfiguration = CASPaxosConfiguration()
    ) throws {
        recordsProposerConfigurations = proposerConfigurationStores
        keepsAcceptorsInFiles = fileStorage
        let network = SimulatedNetwork(seed: seed)
        try network.setDefaultConditions(link)
        self.network = network
        self.configuration = configuration
        random = network.makeRandomGenerator()
        if fileStorage || proposerConfigurationStores { directory = try TemporaryDirectory() }
        let acceptorNodes = (0..<acceptorCount).map { _ in network.addNode() }
        self.acceptorNodes = acceptorNodes
        initialQuorums = AcceptorQuorums.majority(of: acceptorNodes.map(\.localEndpoint))
        colocatedProposers = colocated ? proposerCount : 0
        if colocated {
            precondition(proposerCount <= acceptorCount, "a colocated proposer per acceptor at most")
            proposerNodes = Array(acceptorNodes[0..<proposerCount])
        }
        for (index, node) in acceptorNodes.enumerated() {
            memoryStores.append(InMemoryAcceptorStore())
            acceptors.append(nil)
            node.onRestart = { [unowned self] _ in self.startAcceptor(index) }
            startAcceptor(index)
        }
        for index in 0..<proposerCount where !colocated {
            let node = network.addNode()
            proposerNodes.append(node)
            node.onRestart = { [unowned self] _ in self.proposers[index] = self.makeProposer(index) }
        }
        for index in 0..<proposerCount where !colocated { proposers.append(makeProposer(index)) }
    }

    /// A proposer with a fresh ID (unique per incarnation) and the initial
    /// quorums (or those ``restartProposer(_:on:)`` gave it, or the newer
    /// ones its configuration store kept); the
    /// clients whose operation a crash cut short stay silent (their
    /// operation stays unknown in the history).
    private func makeProposer(_ index: Int) -> CASPaxosNode {
        let node = proposerNodes[index]
        let configurationStore = recordsProposerConfigurations ? proposerConfigurationStore(index) : nil
        return try! CASPaxosNode(
            id: NodeID(random.next()), transport: node, scheduler: node, configuration: configuration,
            quorums: restartQuorums[index] ?? initialQuorums, acceptorStore: nil, configurationStore: configurationStore,
            proposers: proposerNodes.map(\.localEndpoint), seed: random.next())
    }

    /// Crashes proposer-only node `index` and restarts it on `quorums`, as
    /// an operator who gives a proposer its configuration by hand.
    func restartProposer(_ index: Int, on quorums: AcceptorQuorums) {
        restartQuorums[index] = quorums
        network.crash(proposerNodes[index])
        network.restart(proposerNodes[index])
    }

    /// Crashes acceptor node `index` (in memory) and restarts it from
    /// `snapshot`, as if its store had held that.
    func restartAcceptor(_ index: Int, from snapshot: AcceptorSnapshot) {
        memoryStores[index] = InMemoryAcceptorStore(snapshot)
        network.crash(acceptorNodes[index])
        network.restart(acceptorNodes[index])
    }

    /// Proposer `index`'s configuration store, re-opened on every start.
    func proposerConfigurationStore(_ index: Int) -> FileAcceptorStore {
        openLog("\(directory!.path)/proposer-\(index).log")
    }

    /// The last store opened on each log: each is new on its first start
    /// only.
    private var openedLogs: [String: FileAcceptorStore] = [:]

    /// The store of the log at `path`, as a node opens it when it starts:
    /// new the first time, existing after. The store opened before on it
    /// is closed first, its lock released, as the crash of its process
    /// would release it.
    private func openLog(_ path: String, compactionThreshold: Int = 4 << 20) -> FileAcceptorStore {
        let previous = openedLogs[path]
        previous?.close()
        let store = try! FileAcceptorStore(
            path: path, opening: previous == nil ? .new : .existing, compactionThreshold: compactionThreshold)
        openedLogs[path] = store
        return store
    }

    deinit {
        directory?.remove()
    }

    func store(_ index: Int) -> any AcceptorStore {
        if let directory, keepsAcceptorsInFiles {
            // Re-opened on every start: what was not synced is gone, as after a crash.
            return openLog("\(directory.path)/acceptor-\(index).log", compactionThreshold: 4_096)
        }
        return memoryStores[index]
    }

    private func startAcceptor(_ index: Int) {
        let node = acceptorNodes[index]
        guard index < colocatedProposers else {
            acceptors[index] = try! CASPaxosNode(
                transport: node, scheduler: node, configuration: configuration, quorums: nil,
                acceptorStore: store(index), seed: random.next())
            return
        }
        let both = try! CASPaxosNode(
            id: NodeID(random.next()), transport: node, scheduler: node, configuration: configuration,
            quorums: initialQuorums, acceptorStore: store(index), proposers: proposerNodes.map(\.localEndpoint),
            seed: random.next())
        acceptors[index] = both
        // Started in order at first, then again after each restart.
        if index < proposers.count { proposers[index] = both } else { proposers.append(both) }
    }

    /// Adds an acceptor node that is not in any proposer's quorums yet.
    func addAcceptor() -> SimulatedNode {
        let index = acceptorNodes.count
        let node = network.addNode()
        acceptorNodes.append(node)
        memoryStores.append(InMemoryAcceptorStore())
        acceptors.append(nil)
        node.onRestart = { [unowned self] _ in self.startAcceptor(index) }
        startAcceptor(index)
        return node
    }

    // MARK: Clients

    /// Starts `clientsPerProposer` clients on every proposer, each running
    /// `operations` random operations on `keys` (plus a key of its own),
    /// pausing up to `thinkTime` between them. They are numbered from
    /// `firstClient` (a second batch must not reuse the first's numbers).
    ///
    /// With `impatience`, a client withdraws half its operations
    /// (``CASPaxosNode/withdraw(_:)``) at a random moment up to
    /// `impatience` after it made them; one that sent no accept by then
    /// ends definitely, as never made.
    func startClients(
        clientsPerProposer: Int, operations: Int, keys: [[UInt8]], thinkTime: Duration = .milliseconds(20),
        impatience: Duration? = nil, firstClient: Int = 0
    ) {
        var client = firstClient
        for proposer in proposers.indices {
            for _ in 0..<clientsPerProposer {
                let own: [UInt8] = Array("client-\(client)".utf8)
                runClient(
                    client, proposer: proposer, remaining: operations, keys: keys + [own], thinkTime: thinkTime,
                    impatience: impatience)
                client += 1
            }
        }
    }

    private func runClient(
        _ client: Int, proposer: Int, remaining: Int, keys: [[UInt8]], thinkTime: Duration, impatience: Duration?
    ) {
        guard remaining > 0 else { return }
        let pause = Duration.nanoseconds(Int64.random(in: 0...thinkTime.nanoseconds, using: &random))
        network.schedule(at: network.now + pause) { [unowned self] _ in
            let key = keys[Int.random(in: 0..<keys.count, using: &self.random)]
            let value: [UInt8] = [UInt8(truncatingIfNeeded: client), UInt8(truncatingIfNeeded: remaining)]
            let operation: RegisterOperation<[UInt8]>
            switch Int.random(in: 0..<3, using: &self.random) {
            case 0: operation = .read
            case 1: operation = .write(value)
            default:
                // Compare-and-set against what a read might plausibly return.
                let expected: [UInt8]? =
                    Bool.random(using: &self.random) ? nil : [UInt8(truncatingIfNeeded: Int.random(in: 0..<4, using: &self.random)), UInt8(truncatingIfNeeded: remaining + 1)]
                operation = .compareAndSet(expected: expected, new: value)
            }
            let withdrawAfter = impatience.flatMap { impatience in
                Bool.random(using: &self.random)
                    ? Duration.nanoseconds(Int64.random(in: 0...impatience.nanoseconds, using: &self.random)) : nil
            }
            self.perform(operation, key: key, client: client, proposer: proposer, withdrawAfter: withdrawAfter) { _ in
                self.runClient(
                    client, proposer: proposer, remaining: remaining - 1, keys: keys, thinkTime: thinkTime,
                    impatience: impatience)
            }
        }
    }

    /// Runs `body` every `interval` of virtual time for as long as
    /// `condition` holds (checked before each run).
    func every(_ interval: Duration, while condition: @escaping () -> Bool, _ body: @escaping () -> Void) {
        network.schedule(at: network.now + interval) { [unowned self] _ in
            guard condition() else { return }
            body()
            every(interval, while: condition, body)
        }
    }

    /// Runs one recorded operation on `proposer` and the network for
    /// `duration`; returns the operation's outcome (`.unknown` if it has
    /// not ended by then).
    func outcome(
        of operation: RegisterOperation<[UInt8]>, key: [UInt8], client: Int, proposer: Int, within duration: Duration
    ) -> OperationOutcome<[UInt8]?> {
        let number = history.operations.count
        perform(operation, key: key, client: client, proposer: proposer)
        network.run(for: duration)
        return history.operations[number].outcome
    }

    /// Runs one recorded operation on `proposer` (the node at that index
    /// now, restarted or not); calls `then` with its result when it ends.
    /// With `withdrawAfter`, withdraws it then (on that node: a restarted
    /// proposer numbers its proposals afresh).
    func perform(
        _ operation: RegisterOperation<[UInt8]>, key: [UInt8], client: Int, proposer: Int,
        withdrawAfter: Duration? = nil, then: @escaping (Result<[UInt8]?, CASPaxosError>) -> Void = { _ in }
    ) {
        let number = invoke(operation, key: key, client: client)
        let change: CASPaxosChange
        switch operation {
        case .read: change = { $0 }  // unused: reads go through `read(key:)`
        case .write(let value): change = { _ in value }
        case .compareAndSet(let expected, let new): change = { $0 == expected ? new : $0 }
        }
        let completion: (Result<[UInt8]?, CASPaxosError>) -> Void = { [unowned self] result in
            complete(number, with: result)
            then(result)
        }
        let node = proposers[proposer]
        let id =
            if case .read = operation {
                node.read(key: key, completion: completion)
            } else {
                node.propose(key: key, change: change, completion: completion)
            }
        if let withdrawAfter, let id {
            network.schedule(at: network.now + withdrawAfter) { _ in node.withdraw(id) }
        }
    }

    /// Writes one key per acceptor through proposer 0 with that acceptor cut
    /// off from it, so that each key is on a bare majority (with three
    /// acceptors: on two, a different two each); returns the keys.
    func writeOnMinimalQuorums(client: Int) -> [[UInt8]] {
        let proposerNode = proposerNodes[0]
        return acceptorNodes.enumerated().map { index, acceptor in
            let key = Array("without-\(index)".utf8)
            network.block(from: proposerNode, to: acceptor)
            perform(.write([UInt8(truncatingIfNeeded: index)]), key: key, client: client, proposer: 0)
            network.run(for: .milliseconds(20))
            network.unblock(from: proposerNode, to: acceptor)
            return key
        }
    }

    /// Deletes `key` on `proposer` (recorded as a write of nil) and, once
    /// that succeeded or ended indeterminate, collects its garbage
    /// (``CASPaxosNode/delete(key:completion:collected:)``); `collected`
    /// gets the collection's result, `then` the delete's.
    func delete(
        _ key: [UInt8], client: Int, proposer: Int,
        collected: @escaping (Result<Void, CASPaxosError>) -> Void = { _ in },
        then: @escaping (Result<[UInt8]?, CASPaxosError>) -> Void = { _ in }
    ) {
        let number = invoke(.write(nil), key: key, client: client)
        proposers[proposer].delete(
            key: key,
            completion: { [unowned self] result in
                complete(number, with: result)
                then(result)
            },
            collected: collected)
    }

    private func invoke(_ operation: RegisterOperation<[UInt8]>, key: [UInt8], client: Int) -> Int {
        unfinished += 1
        return history.invoke(client: client, key: key, input: operation, at: network.now)
    }

    /// Records how operation `number` ended: its value, or for an error
    /// `.failed` (definite: it changed nothing) or `.unknown`
    /// (indeterminate).
    private func complete(_ number: Int, with result: Result<[UInt8]?, CASPaxosError>) {
        unfinished -= 1
        switch result {
        case .success(let value): history.complete(number, with: .ok(value), at: network.now)
        case .failure(let error):
            history.complete(number, with: error.isIndeterminate ? .unknown : .failed, at: network.now)
        }
    }

    /// Operations that completed with a value.
    var succeeded: Int {
        history.operations.filter { if case .ok = $0.outcome { true } else { false } }.count
    }

    func check() -> LinearizabilityVerdict<[UInt8]> {
        #expect(history.repeatedCompletions.isEmpty, "operations completed twice: \(history.repeatedCompletions)")
        return LinearizabilityChecker(model: RegisterModel<[UInt8]>()).check(history.operations)
    }
}
