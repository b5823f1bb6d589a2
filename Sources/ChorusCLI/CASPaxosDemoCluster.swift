import CASPaxos
import EventCore
import UDPTransport

/// The proposers of `chorus demo`'s CASPaxos scenario, on one event loop:
/// for each phase a set of proposers using the three
/// ``CASPaxosDemoAcceptor``s, each with clients that increment counter keys
/// one after another (closed loop). Loop-confined.
///
/// A client whose increment ends with an indeterminate error retries the
/// same increment (``DemoCounter`` makes the retry apply at most once), so
/// every increment is eventually counted exactly once; the counters'
/// final totals must equal the increments that succeeded.
final class CASPaxosDemoCluster {
    /// One client: its proposer, the increment it is on, and when it began.
    private struct Client {
        let proposer: Int
        var sequence: UInt64 = 0
        var key = 0
        var startedAt = Instant.zero
        var isBusy = false
    }

    let loop: EventLoop
    let keys: [[UInt8]]
    private let acceptorEndpoints: [Endpoint]
    private let proposerCount: Int
    private var proposers: [CASPaxosNode] = []
    /// Each proposer's socket, by its position in `proposers`.
    private var sockets: [UDPSocketTransport] = []
    private var clients: [Client]
    private var isIssuing = false
    private var random = SeededRandomGenerator()
    /// Per key: increments that succeeded, over every phase.
    private(set) var incrementsByKey: [Int]
    /// The phase running (or last run).
    private(set) var phase = CASPaxosDemoPhase(oneRoundTrip: false, startedAt: .zero, incrementsByProposer: [])

    /// Whether no client has an increment in flight.
    var isDrained: Bool { clients.allSatisfy { !$0.isBusy } }

    init(proposers: Int, clientsPerProposer: Int, keys: Int, acceptors: [Endpoint], loop: EventLoop) {
        self.loop = loop
        self.keys = (0..<keys).map { Array("counter-\($0)".utf8) }
        acceptorEndpoints = acceptors
        proposerCount = proposers
        clients = (0..<proposers * clientsPerProposer).map { Client(proposer: $0 / clientsPerProposer) }
        incrementsByKey = Array(repeating: 0, count: keys)
    }

    // MARK: Phases

    /// Starts proposers (with or without the one-round-trip optimization)
    /// and their clients.
    func startPhase(oneRoundTrip: Bool) throws {
        var configuration = CASPaxosConfiguration()
        configuration.isOneRoundTripEnabled = oneRoundTrip
        configuration.proposalTimeout = .seconds(1)
        let quorums = AcceptorQuorums.majority(of: acceptorEndpoints)
        proposers = []
        sockets = []
        for _ in 0..<proposerCount {
            let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
            sockets.append(transport)
            proposers.append(
                try CASPaxosNode(
                    transport: transport, scheduler: loop, configuration: configuration, quorums: quorums,
                    acceptorStore: nil))
        }
        phase = CASPaxosDemoPhase(
            oneRoundTrip: oneRoundTrip, startedAt: loop.now,
            incrementsByProposer: Array(repeating: 0, count: proposerCount))
        isIssuing = true
        for client in clients.indices { issue(client) }
    }

    /// Lets every client finish (and retry until it knows the outcome of)
    /// the increment it is on, without starting another.
    func stopIssuing() {
        isIssuing = false
        phase.issuingEndedAt = loop.now
    }

    /// Reads every counter through the first proposer and passes them on.
    func readCounters(_ done: @escaping ([DemoCounter?]) -> Void) {
        var values = [DemoCounter?](repeating: nil, count: keys.count)
        var remaining = keys.count
        let clientCount = clients.count
        for (index, key) in keys.enumerated() {
            proposers[0].read(key: key) { result in
                if case .success(let bytes) = result { values[index] = DemoCounter(bytes, clients: clientCount) }
                remaining -= 1
                if remaining == 0 { done(values) }
            }
        }
    }

    /// Ends the phase: adds up the proposers' counters (before any final
    /// read, which is no increment). The proposers keep running until
    /// ``closeProposers()``.
    func finishPhase() -> CASPaxosDemoPhase {
        phase.endedAt = loop.now
        phase.unresolved = clients.filter(\.isBusy).count
        for node in proposers {
            let counters = node.counters.proposer
            phase.attempts += counters.attempts
            phase.oneRoundTripAttempts += counters.oneRoundTripAttempts
            phase.failedAttempts += counters.failedAttempts
            phase.requestsSent += counters.requestsSent
        }
        for socket in sockets {
            phase.datagrams += Int(socket.counters.datagramsSent + socket.counters.datagramsReceived)
        }
        for index in clients.indices { clients[index].isBusy = false }
        return phase
    }

    /// Stops the phase's proposers and closes their sockets.
    func closeProposers() {
        for node in proposers { node.stop() }
        for socket in sockets { socket.close() }
        proposers = []
        sockets = []
    }

    // MARK: Clients

    private func issue(_ client: Int) {
        guard isIssuing, !proposers.isEmpty else { return }
        clients[client].sequence += 1
        clients[client].key = Int.random(in: 0..<keys.count, using: &random)
        clients[client].startedAt = loop.now
        clients[client].isBusy = true
        send(client)
    }

    /// Proposes the client's current increment (again, after an
    /// indeterminate error).
    private func send(_ client: Int) {
        let state = clients[client]
        guard state.proposer < proposers.count else { return }
        let change = DemoCounter.increment(client: client, sequence: state.sequence, clients: clients.count)
        let node = proposers[state.proposer]
        node.propose(key: keys[state.key], change: change) { [weak self, weak node] result in
            guard let self, let node, self.proposers.contains(where: { $0 === node }) else { return }
            self.completed(client, result)
        }
    }

    private func completed(_ client: Int, _ result: Result<[UInt8]?, CASPaxosError>) {
        let state = clients[client]
        switch result {
        case .success:
            phase.increments += 1
            phase.incrementsByProposer[state.proposer] += 1
            phase.latencies.append(loop.now - state.startedAt)
            incrementsByKey[state.key] += 1
        case .failure(let error) where error.isIndeterminate:
            phase.indeterminate += 1
            return send(client)
        case .failure:
            phase.definiteFailures += 1
        }
        clients[client].isBusy = false
        issue(client)
    }
}
