import CASPaxos
import EventCore
import Foundation
import Synchronization
import UDPTransport

#if canImport(Glibc)
import Glibc
#endif

/// Where a ``CASPaxosLoopbackRun``'s proposers run.
enum ProposerPlacement: Sendable {
    /// Every proposer on a node of its own, on the clients' loop; the
    /// three acceptors on the other loop.
    case apart
    /// One proposer, on the first acceptor's node (both roles), on the
    /// clients' loop; the other two acceptors on the other loop. Raft's
    /// shape: its leader is a replica and shares the clients' loop.
    case firstAcceptor
    /// A proposer on every acceptor's node: the first node on one loop, the
    /// other two on the other, half of the clients on each loop (on the
    /// second, half each for its two nodes). The leaderless shape: no node
    /// every write must pass through.
    case everyAcceptor
}

/// The shape of one CASPaxos benchmark run.
struct CASPaxosWorkload: Sendable {
    /// Proposer nodes with ``ProposerPlacement/apart`` (the other
    /// placements have one or three).
    var proposers = 1
    /// Closed-loop clients (one proposal in flight each), spread evenly
    /// over the loops with proposers, then over each loop's proposers.
    var clients = 32
    /// Every client on one key (contended), or each on its own.
    var sharedKey = false
    /// When above 0, each write goes to a key drawn at random from this
    /// many, which every client shares (no key belongs to a proposer: the
    /// one-round-trip cache is usually stale); `sharedKey` is then unused.
    var randomKeys = 0
    var oneRoundTrip = true
    /// Accepts name their value's parent
    /// (``CASPaxosConfiguration/isParentBallotEnabled``), which decides
    /// most retries that would otherwise fail indeterminate.
    var parents = true
    /// Acceptor stores: ``FileAcceptorStore``s (fdatasync before every
    /// answer) in a temporary directory removed after the run, or in memory.
    var durable = false
    /// Proposals completed (succeeded or failed) per run.
    var operations = 20_000
    var placement = ProposerPlacement.apart
}

/// What some nodes did: datagrams sent, store syncs and acceptor answers
/// (promises and acceptances), proposer attempts (and those that failed),
/// requests (one prepare or accept to one acceptor), and the proposals that
/// succeeded, in all and on the proposer that made the most.
struct NodeFigures: Sendable {
    var datagrams = 0
    var syncs = 0
    var answers = 0
    var attempts = 0
    var failedAttempts = 0
    var requests = 0
    var proposalsSucceeded = 0
    var busiestProposerSucceeded = 0

    init() {}

    init(_ nodes: [CASPaxosNode]) {
        for node in nodes {
            let counters = node.counters
            syncs += counters.syncs
            answers += counters.acceptor.promises + counters.acceptor.acceptances
            attempts += counters.proposer.attempts
            failedAttempts += counters.proposer.failedAttempts
            requests += counters.proposer.requestsSent
            proposalsSucceeded += counters.proposer.proposalsSucceeded
            busiestProposerSucceeded = max(busiestProposerSucceeded, counters.proposer.proposalsSucceeded)
            datagrams += Int((node.transport as? UDPSocketTransport)?.counters.datagramsSent ?? 0)
        }
    }

    mutating func add(_ other: NodeFigures) {
        datagrams += other.datagrams
        syncs += other.syncs
        answers += other.answers
        attempts += other.attempts
        failedAttempts += other.failedAttempts
        requests += other.requests
        proposalsSucceeded += other.proposalsSucceeded
        busiestProposerSucceeded = max(busiestProposerSucceeded, other.busiestProposerSucceeded)
    }
}

/// What one run measured.
struct CASPaxosRunOutcome: Sendable {
    var succeeded = 0
    var failed = 0
    var seconds = 0.0
    /// Datagrams sent by every node, per successful proposal.
    var messagesPerOp = 0.0
    /// Request rounds (one prepare or accept to each acceptor) per
    /// successful proposal.
    var roundTripsPerOp = 0.0
    /// Attempts refused or unanswered, per attempt.
    var failedAttemptRate = 0.0
    /// The p99 latency of the successful proposals.
    var p99Nanoseconds = 0.0
    /// The longest proposal, succeeded or failed: a proposer starved on a
    /// hot key shows here (its clients' proposals wait until the busiest
    /// proposer's clients stop, or fail at their deadline), not in the p99
    /// of successes.
    var maxNanoseconds = 0.0
    /// Proposals that ended more than 50 ms after their deadline (livelock
    /// or a lost completion would show here; must be 0).
    var overran = 0
    /// Store syncs (fdatasync with durable stores) of the three acceptors.
    var syncs = 0
    /// Acceptor writes answered (promises and acceptances) per sync.
    var answersPerSync = 0.0
    /// The share of the successful proposals that the busiest proposer
    /// made (fairness: 1 / proposers when the clients' writes go through
    /// as evenly as they are issued).
    var busiestProposerShare = 0.0

    var opsPerSecond: Double { seconds > 0 ? Double(succeeded) / seconds : 0 }
    var failedRate: Double { succeeded + failed > 0 ? Double(failed) / Double(succeeded + failed) : 0 }
    var syncsPerSecond: Double { seconds > 0 ? Double(syncs) / seconds : 0 }

    /// Adds the closed-loop figures of clients that ran beside these, on
    /// another loop: the operations and overruns add up, the run lasts
    /// as long as the longer of the two, the p99 is the higher of the
    /// two (an upper bound of the p99 of all), and the maximum is the
    /// higher of the two.
    mutating func merge(_ other: CASPaxosRunOutcome) {
        succeeded += other.succeeded
        failed += other.failed
        overran += other.overran
        seconds = max(seconds, other.seconds)
        p99Nanoseconds = max(p99Nanoseconds, other.p99Nanoseconds)
        maxNanoseconds = max(maxNanoseconds, other.maxNanoseconds)
    }
}

/// One node of a ``CASPaxosLoopbackRun``: the acceptor it is (its
/// position in the quorums), if any, and whether it proposes.
private struct NodeRole: Sendable {
    var acceptor: Int?
    var proposes: Bool
}

/// Three acceptors and the proposers, laid out on two `EventLoop`s as the
/// workload's ``ProposerPlacement`` says, over UDP on 127.0.0.1 in this
/// process; clients increment their key in a closed loop until the
/// workload's operations are done. The clients of a proposer run on its
/// loop.
final class CASPaxosLoopbackRun {
    let workload: CASPaxosWorkload
    /// The loop of the first acceptor's node, or of the proposers apart.
    private let clientLoop: EventLoop
    private let otherLoop: EventLoop

    init(_ workload: CASPaxosWorkload) throws {
        self.workload = workload
        clientLoop = try EventLoop()
        otherLoop = try EventLoop()
        try clientLoop.start()
        try otherLoop.start()
    }

    deinit {
        clientLoop.shutdown()
        otherLoop.shutdown()
    }

    /// The nodes of each loop: the clients' loop's, then the other's.
    private var layout: (client: [NodeRole], other: [NodeRole]) {
        switch workload.placement {
        case .apart:
            (Array(repeating: NodeRole(acceptor: nil, proposes: true), count: workload.proposers),
             (0..<3).map { NodeRole(acceptor: $0, proposes: false) })
        case .firstAcceptor:
            ([NodeRole(acceptor: 0, proposes: true)], (1..<3).map { NodeRole(acceptor: $0, proposes: false) })
        case .everyAcceptor:
            ([NodeRole(acceptor: 0, proposes: true)], (1..<3).map { NodeRole(acceptor: $0, proposes: true) })
        }
    }

    /// Runs the workload once on fresh nodes (and fresh store files).
    func run() throws -> CASPaxosRunOutcome {
        var directory: String?
        if workload.durable {
            let url = FileManager.default.temporaryDirectory
                .appendingPathComponent("chorus-caspaxos-bench-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))")
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            directory = url.path
        }
        defer { if let directory { try? FileManager.default.removeItem(atPath: directory) } }
        let storeDirectory = directory
        let workload = workload
        @Sendable func store(_ index: Int) throws -> any AcceptorStore {
            guard let storeDirectory else { return InMemoryAcceptorStore() }
            return try FileAcceptorStore(path: "\(storeDirectory)/acceptor-\(index).log", opening: .new)
        }
        let layout = layout
        let loops = [(clientLoop, layout.client), (otherLoop, layout.other)]
        let transports = try loops.map { loop, roles in
            try onLoop(loop) { loop in
                LoopBound(try roles.map { _ in try UDPSocketTransport.bind(to: .loopbackV4(), on: loop) }, on: loop)
            }
        }
        // Every acceptor's endpoint, in quorum order.
        var acceptorEndpoints = Array(repeating: Endpoint.loopbackV4(port: 0), count: 3)
        for ((loop, roles), bound) in zip(loops, transports) {
            let endpoints = try onLoop(loop) { _ in bound.value.map(\.localEndpoint) }
            for (role, endpoint) in zip(roles, endpoints) {
                if let acceptor = role.acceptor { acceptorEndpoints[acceptor] = endpoint }
            }
        }
        let quorums = AcceptorQuorums.majority(of: acceptorEndpoints)
        let configuration = {
            var configuration = CASPaxosConfiguration()
            configuration.isOneRoundTripEnabled = workload.oneRoundTrip
            configuration.isParentBallotEnabled = workload.parents
            configuration.maximumPendingProposals = max(4_096, workload.clients)
            return configuration
        }()
        // The clients are shared evenly by the loops with proposers (each
        // loop stands for one machine's core), and on a loop by its
        // proposers in turn; each loop's group runs its clients' share of
        // the operations.
        let proposingLoops = loops.filter { $0.1.contains { $0.proposes } }.count
        var firstClient = 0
        var operationsLeft = workload.operations
        var groups: [LoopBound<ClosedLoopClients>] = []
        for (index, ((loop, roles), bound)) in zip(loops, transports).enumerated() {
            let proposing = roles.count { $0.proposes }
            let share = workload.clients / proposingLoops + (index == 0 ? workload.clients % proposingLoops : 0)
            let clients = proposing == 0 ? 0 : share
            let keys = (0..<proposing).map { proposer in
                stride(from: firstClient + proposer, to: firstClient + clients, by: proposing).map { client in
                    workload.sharedKey ? "shared" : "key-\(client)"
                }
            }
            firstClient += clients
            let operations =
                index == loops.count - 1 ? operationsLeft : workload.operations * clients / workload.clients
            operationsLeft -= operations
            groups.append(
                try onLoop(loop) { loop in
                    var nodes: [CASPaxosNode] = []
                    for (position, role) in roles.enumerated() {
                        nodes.append(
                            try CASPaxosNode(
                                transport: bound.value[position], scheduler: loop, configuration: configuration,
                                quorums: role.proposes ? quorums : nil,
                                acceptorStore: try role.acceptor.map(store),
                                seed: UInt64(index * 16 + position + 1)))
                    }
                    return LoopBound(
                        ClosedLoopClients(
                            nodes: nodes, keys: keys, randomKeys: workload.randomKeys, operations: operations,
                            loop: loop, seed: UInt64(index + 1)), on: loop)
                })
        }
        var outcome = try awaitOutcomes(groups.map { group in
            (group.loop, { done in group.value.start(done) })
        })
        var figures = NodeFigures()
        for group in groups {
            figures.add(try onLoop(group.loop) { _ in group.value.close() })
        }
        outcome.syncs = figures.syncs
        outcome.answersPerSync = figures.syncs == 0 ? 0 : Double(figures.answers) / Double(figures.syncs)
        outcome.failedAttemptRate =
            figures.attempts == 0 ? 0 : Double(figures.failedAttempts) / Double(figures.attempts)
        if figures.proposalsSucceeded > 0 {
            outcome.busiestProposerShare =
                Double(figures.busiestProposerSucceeded) / Double(figures.proposalsSucceeded)
        }
        if outcome.succeeded > 0 {
            outcome.messagesPerOp = Double(figures.datagrams) / Double(outcome.succeeded)
            outcome.roundTripsPerOp = Double(figures.requests) / 3 / Double(outcome.succeeded)
        }
        return outcome
    }
}

/// Runs each group's `start` on its loop with a completion, and waits on
/// this thread until every one has been called; returns their outcomes
/// merged (``CASPaxosRunOutcome/merge(_:)``).
func awaitOutcomes(
    _ groups: [(loop: EventLoop, start: @Sendable (@escaping (CASPaxosRunOutcome) -> Void) -> Void)]
) throws -> CASPaxosRunOutcome {
    let finished = Mutex<[CASPaxosRunOutcome]>([])
    for (loop, start) in groups {
        guard loop.execute({ start { outcome in finished.withLock { $0.append(outcome) } } }) else {
            throw LoopbackSetupError("the loop has stopped")
        }
    }
    while true {
        let outcomes = finished.withLock { $0 }
        if outcomes.count == groups.count {
            var merged = outcomes[0]
            for outcome in outcomes.dropFirst() { merged.merge(outcome) }
            return merged
        }
        usleep(1_000)
    }
}

/// Runs `body` on `loop` and waits for its result on this thread.
func onLoop<Result: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable (EventLoop) throws -> Result) throws -> Result {
    let handoff = Mutex<Swift.Result<Result, any Error>?>(nil)
    loop.execute {
        let outcome = Swift.Result { try body(loop) }
        handoff.withLock { $0 = outcome }
    }
    while true {
        if let outcome = handoff.withLock({ $0 }) { return try outcome.get() }
        usleep(100)
    }
}
