import CASPaxos
import EventCore
import UDPTransport

/// The proposers of a ``CASPaxosLoopbackRun`` and their clients, on the
/// proposers' loop: each client proposes an increment of its key, and the
/// next as soon as one ends, until the workload's operations are done.
/// Loop-confined.
final class ClosedLoopClients {
    private let workload: CASPaxosWorkload
    private let loop: EventLoop
    private var proposers: [CASPaxosNode] = []
    private let deadlineSlack = Duration.milliseconds(50)
    private let proposalTimeout: Duration
    private var issued = 0
    private var outcome = CASPaxosRunOutcome()
    private var latencies: [Int64] = []
    private var startedAt = Instant.zero
    private var done: ((CASPaxosRunOutcome) -> Void)?

    init(workload: CASPaxosWorkload, acceptors: [Endpoint], loop: EventLoop) throws {
        self.workload = workload
        self.loop = loop
        var configuration = CASPaxosConfiguration()
        configuration.isOneRoundTripEnabled = workload.oneRoundTrip
        configuration.maximumPendingProposals = max(4_096, workload.clientsPerProposer)
        proposalTimeout = configuration.proposalTimeout
        latencies.reserveCapacity(workload.operations)
        for index in 0..<workload.proposers {
            let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
            proposers.append(
                try CASPaxosNode(
                    transport: transport, scheduler: loop, configuration: configuration,
                    quorums: .majority(of: acceptors), acceptorStore: nil, seed: UInt64(index + 1)))
        }
    }

    /// Starts every client; `done` gets the outcome once every operation
    /// has completed.
    func start(_ done: @escaping (CASPaxosRunOutcome) -> Void) {
        self.done = done
        startedAt = loop.now
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
            if now > began + proposalTimeout + deadlineSlack { outcome.overran += 1 }
            switch result {
            case .success:
                outcome.succeeded += 1
                latencies.append((now - began).nanoseconds)
            case .failure:
                outcome.failed += 1
            }
            if outcome.succeeded + outcome.failed == workload.operations {
                finish(at: now)
            } else {
                issue(proposer: proposer, key: key)
            }
        }
    }

    private func finish(at now: Instant) {
        outcome.seconds = Double((now - startedAt).nanoseconds) / 1e9
        latencies.sort()
        if !latencies.isEmpty { outcome.p99Nanoseconds = Double(latencies[(latencies.count - 1) * 99 / 100]) }
        let counters = proposers.map(\.counters.proposer)
        let attempts = counters.reduce(0) { $0 + $1.attempts }
        let failedAttempts = counters.reduce(0) { $0 + $1.failedAttempts }
        let requests = counters.reduce(0) { $0 + $1.requestsSent }
        outcome.failedAttemptRate = attempts == 0 ? 0 : Double(failedAttempts) / Double(attempts)
        outcome.roundTripsPerOp = outcome.succeeded == 0 ? 0 : Double(requests) / 3 / Double(outcome.succeeded)
        done?(outcome)
        done = nil
    }

    /// Stops the proposers and closes their sockets; returns the datagrams
    /// they sent.
    func close() -> Int {
        var datagrams = 0
        for node in proposers {
            if let transport = node.transport as? UDPSocketTransport {
                datagrams += Int(transport.counters.datagramsSent)
                node.stop()
                transport.close()
            }
        }
        proposers = []
        return datagrams
    }
}
