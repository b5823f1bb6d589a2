@testable import CASPaxos
import EventCore
import Simulation
import Testing

/// Membership change and garbage collection under every schedule of one
/// forced message fault (``FaultScheduleExplorer``): where the randomized
/// tests sample schedules by seed, these run each procedure once for each
/// of its messages lost, late or repeated, with clients on two proposers
/// reading and writing throughout, and check the history.
@Suite("Membership change and garbage collection under every single-message fault")
struct MaintenanceFaultScheduleTests {
    /// The forced faults: a loss; a message overtaken by the next few; one
    /// that arrives after its exchange is long over (after the change's
    /// next step, often); and a copy that arrives again that late.
    static let faults: [MessageFault] = [
        .drop, .delay(.milliseconds(4)), .delay(.milliseconds(400)), .duplicate(after: .milliseconds(400)),
    ]

    @Test("replacing an acceptor (3 → 4 → 3: D in, A out): every message of the change lost, late or repeated")
    func replacement() throws {
        try Self.expectNoFailure(Self.replacement(under:), minimumRuns: 800)
    }

    @Test("deleting and collecting a key others write: every message of the collection lost, late or repeated")
    func collection() throws {
        try Self.expectNoFailure(Self.collection(under:), minimumRuns: 300)
    }

    /// Explores `scenario` at depth 1 and expects no failing schedule;
    /// `minimumRuns` guards against a scenario whose window of eligible
    /// messages shrank to nothing.
    private static func expectNoFailure(
        _ scenario: (FaultSchedule) throws -> FaultScheduleExplorer.Run, minimumRuns: Int,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let report = try FaultScheduleExplorer(faults: faults, depth: 1).explore(scenario)
        #expect(
            report.failures.isEmpty, "\(report.failures.map { "\($0.schedule): \($0.failure)" })",
            sourceLocation: sourceLocation)
        #expect(!report.isTruncated, sourceLocation: sourceLocation)
        #expect(report.runs >= minimumRuns, "\(report.runs) runs", sourceLocation: sourceLocation)
    }

    /// The scenario: three acceptors, two proposers; a key written on each
    /// majority alone (the hard case for a re-scan); clients on both
    /// proposers read, write and compare-and-set two shared keys (and one
    /// key each) while proposer 0 adds acceptor D and then removes A; then
    /// both proposers read every key. Fails unless both changes succeed,
    /// every proposer ends on the final configuration, every operation
    /// ends, and the history is linearizable. The messages eligible for a
    /// fault are those sent from the first change's start to its last
    /// step's end.
    static func replacement(under schedule: FaultSchedule) throws -> FaultScheduleExplorer.Run {
        let cluster = try SimulatedCASCluster(seed: 1)
        let network = cluster.network
        network.force(schedule)
        let keys = [Array("a".utf8), Array("b".utf8)]
        for key in keys { cluster.perform(.write([0]), key: key, client: 99, proposer: 0) }
        network.run(for: .milliseconds(20))
        let partial = cluster.writeOnMinimalQuorums(client: 98)
        cluster.startClients(clientsPerProposer: 1, operations: 8, keys: keys, thinkTime: .milliseconds(4))
        let original = cluster.acceptorNodes.map(\.localEndpoint)
        let added = cluster.addAcceptor().localEndpoint
        let targets = [original + [added], Array(original.dropFirst()) + [added]]
        let firstMessage = UInt64(network.statistics.sent) + 1
        var lastMessage: UInt64?
        var results: [Result<Void, CASPaxosError>] = []
        func change(_ step: Int) {
            guard step < targets.count else {
                lastMessage = UInt64(network.statistics.sent)
                return
            }
            cluster.proposers[0].changeMembership(to: targets[step]) { result in
                results.append(result)
                change(step + 1)
            }
        }
        change(0)
        network.run(for: .seconds(10))
        var failures: [String] = []
        if results.count != 2 || !results.allSatisfy({ if case .success = $0 { true } else { false } }) {
            failures.append("changes ended \(results)")
        }
        let final = AcceptorQuorums.majority(of: targets[1], version: 5)
        for (index, proposer) in cluster.proposers.enumerated() where proposer.proposer?.quorums != final {
            failures.append("proposer \(index) holds \(String(describing: proposer.proposer?.quorums))")
        }
        return finish(
            cluster, reading: keys + partial + [Array("client-0".utf8), Array("client-1".utf8)],
            eligible: lastMessage.map { firstMessage...max(firstMessage, $0) }, failures: failures)
    }

    /// The scenario: three acceptors, two proposers; clients on both read,
    /// write and compare-and-set the key proposer 1 deletes and collects
    /// (and one key each); once they are done, proposer 0 deletes it again.
    /// Fails unless both collections succeed, the second frees the register
    /// on every acceptor (checked before the final reads, whose prepares
    /// leave promises), every operation ends, and the history (reads
    /// from both proposers at the end included) is linearizable. The
    /// messages eligible for a fault are those sent from the first delete
    /// to the end of the second collection.
    static func collection(under schedule: FaultSchedule) throws -> FaultScheduleExplorer.Run {
        let cluster = try SimulatedCASCluster(seed: 1)
        let network = cluster.network
        network.force(schedule)
        let doomed = Array("doomed".utf8)
        cluster.perform(.write([1]), key: doomed, client: 99, proposer: 0)
        network.run(for: .milliseconds(20))
        cluster.startClients(clientsPerProposer: 1, operations: 8, keys: [doomed], thinkTime: .milliseconds(4))
        let firstMessage = UInt64(network.statistics.sent) + 1
        var lastMessage: UInt64?
        var collections: [Result<Void, CASPaxosError>] = []
        cluster.delete(doomed, client: 96, proposer: 1) { result in
            collections.append(result)
            lastMessage = UInt64(network.statistics.sent)
        }
        network.run(for: .seconds(10))
        cluster.delete(doomed, client: 95, proposer: 0) { result in
            collections.append(result)
            lastMessage = UInt64(network.statistics.sent)
        }
        network.run(for: .seconds(10))
        // Before the reads: a read's prepare leaves a promise behind.
        let holders = cluster.acceptors.indices.filter { cluster.acceptors[$0]?.acceptor?.register(doomed) != nil }
        var failures: [String] = []
        if collections.count != 2 || !collections.allSatisfy({ if case .success = $0 { true } else { false } }) {
            failures.append("collections ended \(collections)")
        }
        if !holders.isEmpty { failures.append("acceptors \(holders) still hold the register") }
        return finish(
            cluster, reading: [doomed], eligible: lastMessage.map { firstMessage...max(firstMessage, $0) },
            failures: failures)
    }

    /// Reads `keys` through every proposer, lets the reads end, and reports
    /// the run: `failures`, plus any operation that never ended and the
    /// checker's verdict if the history is not linearizable.
    private static func finish(
        _ cluster: SimulatedCASCluster, reading keys: [[UInt8]], eligible: ClosedRange<UInt64>?, failures: [String]
    ) -> FaultScheduleExplorer.Run {
        for key in keys {
            for proposer in cluster.proposers.indices {
                cluster.perform(.read, key: key, client: 100 + proposer, proposer: proposer)
            }
        }
        cluster.network.run(for: .seconds(5))
        var failures = failures
        if cluster.unfinished > 0 { failures.append("\(cluster.unfinished) operations never ended") }
        let verdict = cluster.check()
        if !verdict.isLinearizable { failures.append("\(verdict)") }
        return FaultScheduleExplorer.Run(
            eligibleMessages: eligible, failure: failures.isEmpty ? nil : failures.joined(separator: "; "))
    }
}
