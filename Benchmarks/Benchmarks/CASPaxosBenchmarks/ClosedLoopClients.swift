import CASPaxos
import EventCore
import UDPTransport

/// The proposers of a ``CASPaxosLoopbackRun`` and their clients, on the
/// proposers' loop: each client proposes an increment of its key, and the
/// next as soon as one ends, until the workload's operations are done.
/// With ``CASPaxosWorkload/colocated``, the one proposer is also the
/// first acceptor (on `store`), and `acceptors` are the other two.
/// Loop-confined.
final class ClosedLoopClients {
    private let workload: CASPaxosWorkload
    private let loop: EventLoop
    private var proposers: [CASPaxosNode] = []
    private let deadlineSlack = Duration.milliseconds(50)
    private let proposalTimeout: Duration
    private var issued = 0
    private var tally: ClosedLoopTally
    private var done: ((CASPaxosRunOutcome) -> Void)?

    init(workload: CASPaxosWorkload, acceptors: [Endpoint], store: (any AcceptorStore)?, loop: EventLoop) throws {
        self.workload = workload
        self.loop = loop
        var configuration = CASPaxosConfiguration()
        configuration.isOneRoundTripEnabled = workload.oneRoundTrip
        configuration.maximumPendingProposals = max(4_096, workload.clientsPerProposer)
        proposalTimeout = configuration.proposalTimeout
        tally = ClosedLoopTally(operations: workload.operations, startingAt: .zero)
        for index in 0..<workload.proposers {
            let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
            let own = workload.colocated ? [transport.localEndpoint] : []
            proposers.append(
                try CASPaxosNode(
                    transport: transport, scheduler: loop, configuration: configuration,
                    quorums: .majority(of: own + acceptors), acceptorStore: workload.colocated ? store : nil,
                    seed: UInt64(index + 1)))
        }
    }

    /// Starts every client; `done` gets the outcome once every operation
    /// has completed.
    func start(_ done: @escaping (CASPaxosRunOutcome) -> Void) {
        self.done = done
        tally = ClosedLoopTally(operations: workload.operations, startingAt: loop.now)
        for proposer in proposers.indices {
            for client in 0..<workload.clientsPerProposer {
                issue(proposer: proposer, key: workload.sharedKey ? "shared" : "key-\(proposer)-\(client)")
            }
        }
    }

    private func issue(proposer: Int, key: String) {
        guard issued < workload.operations else { return }
        issued += 1
        let began = loop.now
        let increment: CASPaxosChange = { current in
            let value = (current ?? []).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } &+ 1
            return (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
        }
        proposers[proposer].propose(key: Array(key.utf8), change: increment) { [unowned self] result in
            let now = loop.now
            if now > began + proposalTimeout + deadlineSlack { tally.countOverrun() }
            let succeeded = if case .success = result { true } else { false }
            if tally.end(succeeded: succeeded, began: began, now: now) {
                finish()
            } else {
                issue(proposer: proposer, key: key)
            }
        }
    }

    private func finish() {
        var outcome = tally.outcome
        let counters = proposers.map(\.counters.proposer)
        let attempts = counters.reduce(0) { $0 + $1.attempts }
        let failedAttempts = counters.reduce(0) { $0 + $1.failedAttempts }
        let requests = counters.reduce(0) { $0 + $1.requestsSent }
        outcome.failedAttemptRate = attempts == 0 ? 0 : Double(failedAttempts) / Double(attempts)
        outcome.roundTripsPerOp = outcome.succeeded == 0 ? 0 : Double(requests) / 3 / Double(outcome.succeeded)
        done?(outcome)
        done = nil
    }

    /// Stops the proposers and closes their sockets; returns what they
    /// did (the acceptor's syncs and answers too, if colocated).
    func close() -> NodeFigures {
        let figures = NodeFigures(proposers)
        for node in proposers {
            node.stop()
            (node.transport as? UDPSocketTransport)?.close()
        }
        proposers = []
        return figures
    }
}
