import EventCore
import Raft
import Simulation
import Testing

/// The replicated key-value store under every schedule of one forced fault
/// (``FaultScheduleExplorer``) on the messages of a stream of writes and
/// reads: each message lost, late, repeated, or its sender crashing there
/// (and restarting from its storage), and the history checked for
/// linearizability, as `KeyValueLinearizabilityTests` checks random faults.
@Suite("Key-value store under every single-message fault")
struct FailoverFaultScheduleTests {
    /// A loss; a message overtaken by the next few; one that arrives after
    /// its exchange is over; a late copy; and a crash of the sender for
    /// longer than an election timeout, so that the others may elect a
    /// leader without it (after a 50 ms crash, the same leader mostly
    /// comes back).
    static let faults: [MessageFault] = [
        .drop, .delay(.milliseconds(4)), .delay(.milliseconds(400)), .duplicate(after: .milliseconds(400)),
        .crashSender(restartAfter: .seconds(1)),
    ]

    @Test("3 nodes, gets, puts and deletes: every message of the stream lost, late, repeated or its sender crashing",
          arguments: UInt64(1)...2)
    func stream(seed: UInt64) throws {
        let report = try FaultScheduleExplorer(faults: Self.faults, depth: 1).explore { try Self.stream(under: $0, seed: seed) }
        #expect(report.failures.isEmpty, "\(report.failures.map { "\($0.schedule): \($0.failure)" })")
        #expect(!report.isTruncated)
        #expect(report.runs >= 500, "\(report.runs) runs")
    }

    /// Pairs of faults find what single ones cannot: a leader that counted
    /// itself a quorum (a mutation of the commit rule) passes every single
    /// fault above, but a lost append followed by the leader's long crash
    /// loses an acknowledged write, found within 3,000 runs.
    @Test("3 nodes: every pair of a loss or a long crash among the stream's first 40 messages")
    func pairs() throws {
        let explorer = FaultScheduleExplorer(faults: [.drop, .crashSender(restartAfter: .seconds(1))], depth: 2)
        let report = try explorer.explore { try Self.stream(under: $0, seed: 1, window: 40) }
        #expect(report.failures.isEmpty, "\(report.failures.map { "\($0.schedule): \($0.failure)" })")
        #expect(!report.isTruncated)
        #expect(report.runs >= 3_000, "\(report.runs) runs")
    }

    /// The scenario: three nodes on uneven link delays (drawn from `seed`)
    /// with in-memory storage kept across a crash (a crashed node restarts
    /// from it), a leader elected; then 24 gets, puts and deletes on three
    /// keys, 10 ms apart, each proposed at the leader of the moment. Fails
    /// unless the nodes converge, the cluster's checks (one leader per
    /// term, matching logs, the same commands applied at each index) find
    /// nothing, and the history is linearizable. The messages eligible for
    /// a fault are those sent while the operations are proposed (the first
    /// `window` of them, if given).
    static func stream(
        under schedule: FaultSchedule, seed: UInt64, window: UInt64? = nil
    ) throws -> FaultScheduleExplorer.Run {
        let cluster = try RaftCluster(
            count: 3, seed: seed,
            link: LinkConditions(delay: .uniform(minimum: .microseconds(500), maximum: .milliseconds(3))),
            makeStateMachine: { KeyValueStateMachine() })
        cluster.network.force(schedule)
        for index in cluster.indices {
            cluster.simulatedNodes[index].onRestart = { _ in try? cluster.start(index) }
        }
        guard cluster.run(until: { cluster.leader != nil }, limit: .seconds(2)) else {
            return FaultScheduleExplorer.Run(eligibleMessages: nil, failure: "no leader elected")
        }
        let history = KeyValueLinearizabilityTests.History()
        var random = SeededRandomGenerator(seed: seed)
        let firstMessage = UInt64(cluster.network.statistics.sent) + 1
        for operation in 1...24 {
            let key = "k\(Int.random(in: 0..<3, using: &random))"
            let (command, input): (KeyValueCommand, KeyValueOperation<[UInt8]>) =
                switch Int.random(in: 0..<6, using: &random) {
                case 0: (.delete(key: key), .delete)
                case 1, 2: (.get(key: key), .get)
                default: (.put(key: key, value: [UInt8(operation)]), .put([UInt8(operation)]))
                }
            KeyValueLinearizabilityTests.propose(
                command, input, key: key, client: operation % 4, at: cluster.leader ?? 0, in: cluster, history: history)
            cluster.run(for: .milliseconds(10))
        }
        let sent = UInt64(cluster.network.statistics.sent)
        let lastMessage = window.map { min(sent, firstMessage + $0 - 1) } ?? sent
        var failures: [String] = []
        let settled = cluster.run(
            until: { cluster.converged && cluster.rafts.allSatisfy { ($0?.pendingProposalCount ?? 0) == 0 } },
            limit: .seconds(10))
        if !settled { failures.append("the nodes did not converge") }
        failures += cluster.violations.prefix(3)
        if !history.repeatedCompletions.isEmpty { failures.append("completed twice: \(history.repeatedCompletions)") }
        let verdict = LinearizabilityChecker(model: KeyValueModel<[UInt8]>()).check(history.operations)
        if !verdict.isLinearizable { failures.append("\(verdict)") }
        return FaultScheduleExplorer.Run(
            eligibleMessages: firstMessage...max(firstMessage, lastMessage),
            failure: failures.isEmpty ? nil : failures.joined(separator: "; "))
    }
}
