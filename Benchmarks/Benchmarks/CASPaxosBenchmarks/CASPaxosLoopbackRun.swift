import CASPaxos
import EventCore
import Foundation
import Synchronization
import UDPTransport

#if canImport(Glibc)
import Glibc
#endif

/// The shape of one CASPaxos benchmark run.
struct CASPaxosWorkload: Sendable {
    /// Proposer nodes, and closed-loop clients on each (one proposal in
    /// flight per client).
    var proposers = 1
    var clientsPerProposer = 32
    /// Every client on one key (contended), or each on its own.
    var sharedKey = false
    var oneRoundTrip = true
    /// Acceptor stores: ``FileAcceptorStore``s (fdatasync before every
    /// answer) in a temporary directory removed after the run, or in memory.
    var durable = false
    /// Proposals completed (succeeded or failed) per run.
    var operations = 20_000
    /// One proposer on the first acceptor's node (both roles, Raft's
    /// shape: the leader is a replica), the other two acceptors on the
    /// acceptors' loop; or every proposer on a node of its own.
    var colocated = false
}

/// Datagrams sent, store syncs and acceptor answers (promises and
/// acceptances) of some nodes.
struct NodeFigures: Sendable {
    var datagrams = 0
    var syncs = 0
    var answers = 0

    init(_ nodes: [CASPaxosNode]) {
        for node in nodes {
            let counters = node.counters
            syncs += counters.syncs
            answers += counters.acceptor.promises + counters.acceptor.acceptances
            datagrams += Int((node.transport as? UDPSocketTransport)?.counters.datagramsSent ?? 0)
        }
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
    var p99Nanoseconds = 0.0
    /// Proposals that ended more than 50 ms after their deadline (livelock
    /// or a lost completion would show here; must be 0).
    var overran = 0
    /// Store syncs (fdatasync with durable stores) of the three acceptors.
    var syncs = 0
    /// Acceptor writes answered (promises and acceptances) per sync.
    var answersPerSync = 0.0

    var opsPerSecond: Double { seconds > 0 ? Double(succeeded) / seconds : 0 }
    var syncsPerSecond: Double { seconds > 0 ? Double(syncs) / seconds : 0 }
}

/// Three acceptors on one `EventLoop` and the proposers on another (or,
/// colocated, two acceptors on one and a node with both roles on the
/// other), over UDP on 127.0.0.1 in this process; clients increment their
/// key in a closed loop until the workload's operations are done.
final class CASPaxosLoopbackRun {
    let workload: CASPaxosWorkload
    private let acceptorLoop: EventLoop
    private let proposerLoop: EventLoop

    init(_ workload: CASPaxosWorkload) throws {
        self.workload = workload
        acceptorLoop = try EventLoop()
        proposerLoop = try EventLoop()
        acceptorLoop.start()
        proposerLoop.start()
    }

    deinit {
        acceptorLoop.shutdown()
        proposerLoop.shutdown()
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
            return try FileAcceptorStore(path: "\(storeDirectory)/acceptor-\(index).log")
        }
        let acceptors = try onLoop(acceptorLoop) { loop in
            var nodes: [CASPaxosNode] = []
            for index in (workload.colocated ? 1 : 0)..<3 {
                let store = try store(index)
                let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
                nodes.append(try CASPaxosNode(transport: transport, scheduler: loop, quorums: nil, acceptorStore: store))
            }
            return LoopBound(nodes, on: loop)
        }
        let endpoints = try onLoop(acceptorLoop) { _ in acceptors.value.map(\.transport.localEndpoint) }
        let driver = try onLoop(proposerLoop) { loop in
            LoopBound(
                try ClosedLoopClients(
                    workload: workload, acceptors: endpoints, store: workload.colocated ? try store(0) : nil, loop: loop),
                on: loop)
        }
        var outcome = try awaitOutcome(on: proposerLoop) { done in driver.value.start(done) }
        let acceptorFigures = try onLoop(acceptorLoop) { _ in
            let nodes = acceptors.value
            let figures = NodeFigures(nodes)
            for node in nodes {
                node.stop()
                (node.transport as? UDPSocketTransport)?.close()
            }
            return figures
        }
        let proposerFigures = try onLoop(proposerLoop) { _ in driver.value.close() }
        outcome.syncs = acceptorFigures.syncs + proposerFigures.syncs
        let answers = acceptorFigures.answers + proposerFigures.answers
        outcome.answersPerSync = outcome.syncs == 0 ? 0 : Double(answers) / Double(outcome.syncs)
        if outcome.succeeded > 0 {
            outcome.messagesPerOp = Double(acceptorFigures.datagrams + proposerFigures.datagrams) / Double(outcome.succeeded)
        }
        return outcome
    }
}

/// Runs `start` on `loop` with a completion, and waits on this thread until
/// it is called (or the loop has stopped).
func awaitOutcome(
    on loop: EventLoop, _ start: @escaping @Sendable (@escaping (CASPaxosRunOutcome) -> Void) -> Void
) throws -> CASPaxosRunOutcome {
    let finished = Mutex<CASPaxosRunOutcome?>(nil)
    guard loop.execute({ start { outcome in finished.withLock { $0 = outcome } } }) else {
        throw LoopbackSetupError("the loop has stopped")
    }
    while true {
        if let outcome = finished.withLock({ $0 }) { return outcome }
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
