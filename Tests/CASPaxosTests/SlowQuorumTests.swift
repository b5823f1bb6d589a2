import CASPaxos
import EventCore
import Simulation
import Testing

/// Linearizability under a ``SlowMinority``: the quorum that answers keeps
/// changing while membership changes and garbage collections run among
/// clients' reads, writes and compare-and-sets. Each workload catches a
/// fault that the random-loss seeds of ``LinearizabilityTests`` and
/// ``MaintenanceTests`` let through (named in each test; the scenario
/// tests of ``MembershipRemovalTests`` and ``RejoinTests`` catch the two
/// bugs every time).
@Suite("Slow quorums")
struct SlowQuorumTests {
    /// One run: 2 proposers with 3 clients each on `keys` keys, proposer 0
    /// changing the acceptors through `plan` (acceptor indices, 3 and 4
    /// added as needed), a delete and collection of a random key every
    /// `collectEvery` (if set) for the first 4 s; after 5 s the links
    /// recover, the changes finish and every key is read from both
    /// proposers.
    /// `crashEvery` (if set), an acceptor that is up crashes for 10 to 60
    /// ms, one at a time, during the first 4 s too; `colocated` puts the
    /// proposers on acceptors 0 and 1 (which crash with them: give such a
    /// run no plan), `fileStorage` gives the acceptors file stores.
    static func run(
        seed: UInt64, plan: [[Int]], keys keyCount: Int, thinkTime: Duration, slowLink: LinkConditions,
        collectEvery: Duration? = nil, pauseBetweenChanges: Duration = .zero, crashEvery: Duration? = nil,
        colocated: Bool = false, fileStorage: Bool = false
    ) throws -> (cluster: SimulatedCASCluster, changes: [Result<Void, CASPaxosError>]) {
        let cluster = try SimulatedCASCluster(
            seed: seed, colocated: colocated, fileStorage: fileStorage, link: LinearizabilityTests.faultyLink)
        let keys = (0..<keyCount).map { Array("k\($0)".utf8) }
        let nemesis = try SlowMinority(
            cluster: cluster, seed: seed, slowLink: slowLink, pause: .milliseconds(1)...(.milliseconds(10)))
        cluster.startClients(clientsPerProposer: 3, operations: 200, keys: keys, thinkTime: thinkTime)
        while cluster.acceptorNodes.count <= plan.joined().max() ?? 0 { _ = cluster.addAcceptor() }
        let endpoints = cluster.acceptorNodes.map(\.localEndpoint)
        var changes: [Result<Void, CASPaxosError>] = []
        func change(_ step: Int) {
            guard step < plan.count else { return }
            cluster.proposers[0].changeMembership(to: plan[step].map { endpoints[$0] }) { result in
                changes.append(result)
                cluster.network.schedule(at: cluster.network.now + pauseBetweenChanges) { _ in change(step + 1) }
            }
        }
        change(0)
        if let collectEvery {
            var random = SeededRandomGenerator(seed: seed &+ 1)
            var client = 1_000
            let last = cluster.network.now + .seconds(4)
            cluster.every(collectEvery, while: { cluster.network.now < last }) {
                let key = keys[Int.random(in: keys.indices, using: &random)]
                cluster.delete(key, client: client, proposer: Int.random(in: 0...1, using: &random))
                client += 1
            }
        }
        if let crashEvery {
            var random = SeededRandomGenerator(seed: seed &+ 2)
            let last = cluster.network.now + .seconds(4)
            cluster.every(crashEvery, while: { cluster.network.now < last }) {
                let network = cluster.network
                guard !cluster.acceptorNodes.contains(where: \.isCrashed),
                    let victim = cluster.acceptorNodes.randomElement(using: &random)
                else { return }
                network.crash(victim)
                let downtime = Duration.milliseconds(Int64.random(in: 10...60, using: &random))
                network.schedule(at: network.now + downtime) { network in network.restart(victim) }
            }
        }
        cluster.network.run(for: .seconds(5))
        nemesis.stop()
        // A change waits for the acceptor it adds to list its keys, and a
        // slow, lossy one may answer only now.
        let end = cluster.network.now + .seconds(30)
        while changes.count < plan.count, cluster.network.now < end { cluster.network.run(for: .milliseconds(100)) }
        for key in keys {
            for proposer in 0...1 {
                _ = cluster.outcome(of: .read, key: key, client: 100 + proposer, proposer: proposer, within: .milliseconds(100))
            }
        }
        return (cluster, changes)
    }

    static func expectLinearizable(
        _ run: (cluster: SimulatedCASCluster, changes: [Result<Void, CASPaxosError>]), changes count: Int, seed: UInt64
    ) {
        #expect(run.changes.count == count, "seed \(seed): \(run.changes)")
        #expect(run.changes.allSatisfy { if case .success = $0 { true } else { false } }, "seed \(seed): \(run.changes)")
        LinearizabilityTests.expectLinearizable(run.cluster, seed: seed)
    }

    static let growAndShrink = [[0, 1, 2, 3], [0, 1, 2, 3, 4], [0, 1, 2, 3], [0, 1, 2]]

    /// Caught the 5 → 4 → 3 removal that lost a value taken by 3 of the 5
    /// (without the re-scan that ends 2F+3 → 2F+2, seed 22 fails).
    @Test("3 → 4 → 5 → 4 → 3 five times under a slow minority (100 seeds)")
    func membership() throws {
        var slowLink = LinearizabilityTests.faultyLink
        slowLink.delay = .uniform(minimum: .milliseconds(10), maximum: .milliseconds(60))
        let plan = Array(Array(repeating: Self.growAndShrink, count: 5).joined())
        for seed in UInt64(1)...100 {
            let run = try Self.run(seed: seed, plan: plan, keys: 4, thinkTime: .milliseconds(2), slowLink: slowLink)
            Self.expectLinearizable(run, changes: plan.count, seed: seed)
        }
    }

    /// Acceptors 3 and 4 leave and join again, 300 ms apart, while a key
    /// is deleted and collected every 20 ms. Caught an acceptor that
    /// rejoined with keys collected while it was out, which came back
    /// (without the re-scan of the acceptor a change adds, 7 of these
    /// seeds fail).
    @Test("acceptors leave and rejoin while keys are deleted and collected, under a slow minority (100 seeds)")
    func rejoinAmongCollections() throws {
        var slowLink = LinearizabilityTests.faultyLink
        slowLink.delay = .uniform(minimum: .milliseconds(10), maximum: .milliseconds(40))
        let plan = [
            [0, 1, 2, 3], [0, 1, 2], [0, 1, 2, 4], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4], [0, 1, 2, 3],
            [0, 1, 2, 3, 4], [0, 1, 2, 3], [0, 1, 2],
        ]
        for seed in UInt64(101)...200 {
            let run = try Self.run(
                seed: seed, plan: plan, keys: 16, thinkTime: .milliseconds(20), slowLink: slowLink,
                collectEvery: .milliseconds(20), pauseBetweenChanges: .milliseconds(300))
            Self.expectLinearizable(run, changes: plan.count, seed: seed)
        }
    }

    /// Acceptors crash and restart (from file stores in half the runs)
    /// while a key is deleted and collected every 40 ms: with the
    /// proposers on acceptor nodes, crashing with them, or apart while
    /// proposer 0 grows the cluster, removes acceptor 0 and adds it back.
    /// No bug was found here; it guards crash recovery: a file store that
    /// loses one register write in three fails 3 of these seeds, and none
    /// of the crash-restart seeds of ``LinearizabilityTests``.
    @Test("acceptors crash and restart among collections and changes, under a slow minority (60 seeds)")
    func crashesAmongCollections() throws {
        var slowLink = LinearizabilityTests.faultyLink
        slowLink.delay = .uniform(minimum: .milliseconds(10), maximum: .milliseconds(40))
        let plan = [[0, 1, 2, 3], [1, 2, 3], [0, 1, 2, 3], [0, 1, 2]]
        for seed in UInt64(201)...260 {
            let colocated = seed % 2 == 0
            let run = try Self.run(
                seed: seed, plan: colocated ? [] : plan, keys: 6, thinkTime: .milliseconds(20), slowLink: slowLink,
                collectEvery: .milliseconds(40), pauseBetweenChanges: .milliseconds(200), crashEvery: .milliseconds(150),
                colocated: colocated, fileStorage: seed % 4 < 2)
            Self.expectLinearizable(run, changes: colocated ? 0 : plan.count, seed: seed)
        }
    }
}
