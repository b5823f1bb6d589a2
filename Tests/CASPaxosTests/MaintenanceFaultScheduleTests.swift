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

    /// Link delays that differ from message to message (drawn from the
    /// seed, so a schedule still replays exactly): which answers of a
    /// quorum come first then changes from one schedule to the next. (With
    /// a constant delay, ties always broke the same way, and a crashed
    /// change resumed without its re-scan passed.)
    static let unevenDelay = DelayDistribution.uniform(minimum: .microseconds(500), maximum: .milliseconds(3))

    @Test(
        "replacing an acceptor (3 → 4 → 3: D in, A out): every message of the change lost, late or repeated",
        arguments: UInt64(1)...2)
    func replacement(seed: UInt64) throws {
        try Self.expectNoFailure({ try Self.replacement(under: $0, seed: seed) }, minimumRuns: 800)
    }

    @Test(
        "replacing an acceptor, resumed on another proposer: every node crashing at each message of the changes",
        arguments: UInt64(1)...2)
    func crashedReplacement(seed: UInt64) throws {
        try Self.expectNoFailure(
            { try Self.crashedReplacement(under: $0, seed: seed) }, faults: [.crashSender(restartAfter: .milliseconds(50))],
            minimumRuns: 250)
    }

    @Test(
        "deleting and collecting a key others write: every message of the collection lost, late, repeated or its sender crashing",
        arguments: UInt64(1)...2)
    func collection(seed: UInt64) throws {
        try Self.expectNoFailure(
            { try Self.collection(under: $0, seed: seed) },
            faults: Self.faults + [.crashSender(restartAfter: .milliseconds(50))], minimumRuns: 500)
    }

    /// Explores `scenario` at depth 1 and expects no failing schedule;
    /// `minimumRuns` guards against a scenario whose window of eligible
    /// messages shrank to nothing.
    private static func expectNoFailure(
        _ scenario: (FaultSchedule) throws -> FaultScheduleExplorer.Run, faults: [MessageFault] = faults,
        minimumRuns: Int, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let report = try FaultScheduleExplorer(faults: faults, depth: 1).explore(scenario)
        #expect(
            report.failures.isEmpty, "\(report.failures.map { "\($0.schedule): \($0.failure)" })",
            sourceLocation: sourceLocation)
        #expect(!report.isTruncated, sourceLocation: sourceLocation)
        #expect(report.runs >= minimumRuns, "\(report.runs) runs", sourceLocation: sourceLocation)
    }

    /// The scenario: a ``Replacement``; both changes must succeed, every
    /// proposer ends on the final configuration, every operation ends, and
    /// the history is linearizable.
    static func replacement(under schedule: FaultSchedule, seed: UInt64) throws -> FaultScheduleExplorer.Run {
        let replacement = try Replacement(under: schedule, seed: seed, proposerConfigurationStores: false)
        replacement.cluster.network.run(for: .seconds(10))
        var failures: [String] = []
        if replacement.results.count != 2 || !replacement.results.allSatisfy({ if case .success = $0 { true } else { false } }) {
            failures.append("changes ended \(replacement.results)")
        }
        let final = AcceptorQuorums.majority(of: replacement.targets[1], version: 5)
        for (index, proposer) in replacement.cluster.proposers.enumerated() where proposer.proposer?.quorums != final {
            failures.append("proposer \(index) holds \(String(describing: proposer.proposer?.quorums))")
        }
        return finish(
            replacement.cluster, reading: replacement.keys, eligible: replacement.eligibleMessages, failures: failures)
    }

    /// The scenario: a ``Replacement`` whose acceptors' in-memory stores
    /// are kept across a crash, as a disk would be, and whose proposers
    /// keep their configuration in a store of their own. A crash fault
    /// stops a node (either proposer, an acceptor, D) at one of the
    /// changes' messages and restarts it 50 ms later. If the changes did
    /// not both succeed in 3 s (proposer 0 crashed: the change running died
    /// with it), proposer 1 resumes them from the first that did not.
    /// Fails unless the changes (or their resumption) succeed, every
    /// proposer ends in the same majority configuration of B, C and D, and
    /// the history is linearizable (a re-scan the resumption skipped leaves
    /// a key on A and one other, and A's removal loses it). Operations cut
    /// short by a crash stay unknown (never ended), as the checker allows.
    static func crashedReplacement(under schedule: FaultSchedule, seed: UInt64) throws -> FaultScheduleExplorer.Run {
        let replacement = try Replacement(under: schedule, seed: seed, proposerConfigurationStores: true)
        let (cluster, targets) = (replacement.cluster, replacement.targets)
        cluster.network.run(for: .seconds(3))
        var failures: [String] = []
        let done = replacement.results.prefix { if case .success = $0 { true } else { false } }.count
        if done < targets.count {
            var resumed: [Result<Void, CASPaxosError>] = []
            change(cluster, to: targets[done...], on: 1) { resumed = $0 }
            cluster.network.run(for: .seconds(5))
            if resumed.count != targets.count - done || !resumed.allSatisfy({ if case .success = $0 { true } else { false } }) {
                failures.append("the changes ended \(replacement.results), resumed \(resumed)")
            }
        }
        for (index, node) in cluster.proposers.enumerated() {
            let quorums = node.proposer?.quorums
            if quorums.map({ $0.isSameConfiguration(as: .majority(of: targets[1], version: $0.version)) }) != true {
                failures.append("proposer \(index) holds \(String(describing: quorums))")
            }
        }
        let versions = Set(cluster.proposers.compactMap { $0.proposer?.quorums.version })
        if versions.count > 1 { failures.append("the proposers hold versions \(versions.sorted())") }
        return finish(
            cluster, reading: replacement.keys, eligible: replacement.eligibleMessages, failures: failures,
            requiringEveryOperationToEnd: false)
    }

    /// The scenario: three acceptors, two proposers; clients on both read,
    /// write and compare-and-set the key proposer 1 deletes and collects
    /// (and one key each); once they are done, proposer 0 deletes it again.
    /// Fails unless every collection succeeds, the last frees the register
    /// on every acceptor (checked before the final reads, whose prepares
    /// leave promises), every operation ends, and the history (reads
    /// from both proposers at the end included) is linearizable. Under a
    /// crash (a node stops at the message and restarts 50 ms later, an
    /// acceptor from its store, a proposer with a new ID), a delete, its
    /// collection and the operations of the proposer that crashed may
    /// never end: they died with it, and proposer 0 deletes the key once
    /// more if it is still there. The messages eligible for a fault are
    /// those sent from the first delete to the end of the last collection.
    static func collection(under schedule: FaultSchedule, seed: UInt64) throws -> FaultScheduleExplorer.Run {
        let cluster = try SimulatedCASCluster(seed: seed, link: LinkConditions(delay: Self.unevenDelay))
        let network = cluster.network
        network.force(schedule)
        let crashes = schedule.faults.contains { if case .crashSender = $0.fault { true } else { false } }
        let doomed = Array("doomed".utf8)
        cluster.perform(.write([1]), key: doomed, client: 99, proposer: 0)
        network.run(for: .milliseconds(20))
        cluster.startClients(clientsPerProposer: 1, operations: 8, keys: [doomed], thinkTime: .milliseconds(4))
        let firstMessage = UInt64(network.statistics.sent) + 1
        var lastMessage: UInt64?
        var collections: [Result<Void, CASPaxosError>] = []
        // As a client would, a delete that ended indeterminate (its value
        // may or may not have landed; the collection that follows frees
        // nothing if it did not) is deleted again, up to five times.
        func delete(on proposer: Int, attempt: Int = 1) {
            cluster.delete(
                doomed, client: 90 + attempt, proposer: proposer,
                collected: { result in
                    collections.append(result)
                    lastMessage = UInt64(network.statistics.sent)
                },
                then: { result in
                    if case .failure(let error) = result, error.isIndeterminate, attempt < 5 {
                        delete(on: proposer, attempt: attempt + 1)
                    }
                })
        }
        for proposer in [1, 0] {
            delete(on: proposer)
            network.run(for: .seconds(10))
        }
        // Before the reads: a read's prepare leaves a promise behind.
        var holders = cluster.acceptors.indices.filter { cluster.acceptors[$0]?.acceptor?.register(doomed) != nil }
        if crashes, !holders.isEmpty {
            // The last delete or its collection died with its proposer:
            // delete once more.
            delete(on: 0)
            network.run(for: .seconds(10))
            holders = cluster.acceptors.indices.filter { cluster.acceptors[$0]?.acceptor?.register(doomed) != nil }
        }
        var failures: [String] = []
        if !collections.allSatisfy({ if case .success = $0 { true } else { false } }) {
            failures.append("collections ended \(collections)")
        }
        if !holders.isEmpty { failures.append("acceptors \(holders) still hold the register") }
        return finish(
            cluster, reading: [doomed], eligible: lastMessage.map { firstMessage...max(firstMessage, $0) },
            failures: failures, requiringEveryOperationToEnd: !crashes)
    }

    /// Reads `keys` through every proposer, lets the reads end, and reports
    /// the run: `failures`, plus any operation that never ended (if
    /// `requiringEveryOperationToEnd`) and the checker's verdict if the
    /// history is not linearizable.
    private static func finish(
        _ cluster: SimulatedCASCluster, reading keys: [[UInt8]], eligible: ClosedRange<UInt64>?, failures: [String],
        requiringEveryOperationToEnd: Bool = true
    ) -> FaultScheduleExplorer.Run {
        for key in keys {
            for proposer in cluster.proposers.indices {
                cluster.perform(.read, key: key, client: 100 + proposer, proposer: proposer)
            }
        }
        cluster.network.run(for: .seconds(5))
        var failures = failures
        if requiringEveryOperationToEnd, cluster.unfinished > 0 { failures.append("\(cluster.unfinished) operations never ended") }
        let verdict = cluster.check()
        if !verdict.isLinearizable { failures.append("\(verdict)") }
        return FaultScheduleExplorer.Run(
            eligibleMessages: eligible, failure: failures.isEmpty ? nil : failures.joined(separator: "; "))
    }

    /// Changes the membership to each of `targets` in turn on `proposer`,
    /// stopping at the first failure; passes on the results.
    fileprivate static func change(
        _ cluster: SimulatedCASCluster, to targets: ArraySlice<[Endpoint]>, on proposer: Int,
        results: [Result<Void, CASPaxosError>] = [], then done: @escaping ([Result<Void, CASPaxosError>]) -> Void
    ) {
        guard let target = targets.first else { return done(results) }
        cluster.proposers[proposer].changeMembership(to: target) { result in
            guard case .success = result else { return done(results + [result]) }
            change(cluster, to: targets.dropFirst(), on: proposer, results: results + [result], then: done)
        }
    }
}

/// The membership scenarios' start: three acceptors A, B, C and two
/// proposers on ``MaintenanceFaultScheduleTests/unevenDelay`` links (drawn
/// from `seed`), under a forced schedule; two keys written, then one key
/// on each bare majority (the hard case for a re-scan); a client on each
/// proposer reading, writing and compare-and-setting the two keys (and one
/// key of its own) while proposer 0 replaces A with D: 3 → 4 (D in), then
/// 4 → 3 (A out). The messages eligible for a fault are those sent from
/// the first change's start to the end of the last one proposer 0 ran.
private final class Replacement {
    let cluster: SimulatedCASCluster
    /// Every key written, for the final reads.
    let keys: [[UInt8]]
    /// The two changes' acceptors.
    let targets: [[Endpoint]]
    /// What proposer 0's changes ended with, once they have: up to the
    /// first failure.
    private(set) var results: [Result<Void, CASPaxosError>] = []
    private let firstMessage: UInt64
    private var lastMessage: UInt64?

    init(under schedule: FaultSchedule, seed: UInt64, proposerConfigurationStores: Bool) throws {
        cluster = try SimulatedCASCluster(
            seed: seed, proposerConfigurationStores: proposerConfigurationStores,
            link: LinkConditions(delay: MaintenanceFaultScheduleTests.unevenDelay))
        let network = cluster.network
        network.force(schedule)
        let shared = [Array("a".utf8), Array("b".utf8)]
        for key in shared { cluster.perform(.write([0]), key: key, client: 99, proposer: 0) }
        network.run(for: .milliseconds(20))
        keys = shared + cluster.writeOnMinimalQuorums(client: 98) + [Array("client-0".utf8), Array("client-1".utf8)]
        cluster.startClients(clientsPerProposer: 1, operations: 8, keys: shared, thinkTime: .milliseconds(4))
        let original = cluster.acceptorNodes.map(\.localEndpoint)
        let added = cluster.addAcceptor().localEndpoint
        targets = [original + [added], Array(original.dropFirst()) + [added]]
        firstMessage = UInt64(network.statistics.sent) + 1
        MaintenanceFaultScheduleTests.change(cluster, to: targets[...], on: 0) { [unowned self] in
            results = $0
            lastMessage = UInt64(network.statistics.sent)
        }
    }

    var eligibleMessages: ClosedRange<UInt64>? { lastMessage.map { firstMessage...max(firstMessage, $0) } }
}
