import CASPaxos
import EventCore
import Simulation
import Testing

/// Garbage collection's bounds: a proposer runs at most
/// `maximumGarbageCollections` collections (more are refused, the
/// tombstone staying), and a proposer dropped from the cluster's list is no
/// longer waited for, without letting it write a removed key back.
@Suite("Garbage collection bounds and departed proposers")
struct GarbageCollectionBoundsTests {
    /// Maintenance that resends every 20 ms and gives a run 300 ms.
    static var configuration: CASPaxosConfiguration {
        var configuration = CASPaxosConfiguration()
        configuration.maintenanceTimeout = .milliseconds(300)
        configuration.maintenanceRetryInterval = .milliseconds(20)
        return configuration
    }

    static func outcome(_ result: Result<Void, CASPaxosError>?) -> String {
        switch result {
        case nil: "running"
        case .success: "collected"
        case .failure(let error): "\(error.code)"
        }
    }

    @Test(
        "collections past the limit are refused; a proposer gone for good holds the others until it is dropped from the list",
        arguments: UInt64(1)...5)
    func limitAndGoneProposer(seed: UInt64) throws {
        var configuration = Self.configuration
        configuration.maximumGarbageCollections = 2
        let cluster = try SimulatedCASCluster(
            seed: seed, proposerCount: 3, link: LinearizabilityTests.faultyLink, configuration: configuration)
        let network = cluster.network
        let doomed = (0..<3).map { Array("doomed-\($0)".utf8) }
        for key in doomed { cluster.perform(.write([1]), key: key, client: 99, proposer: 0) }
        network.run(for: .milliseconds(100))
        // Proposer 2 stops for good, still listed everywhere.
        network.crash(cluster.proposerNodes[2])
        cluster.startClients(clientsPerProposer: 2, operations: 20, keys: [Array("live".utf8)])

        var collected: [Result<Void, CASPaxosError>?] = [nil, nil, nil]
        for (index, key) in doomed.enumerated() {
            cluster.delete(key, client: 90, proposer: 0) { collected[index] = $0 }
            network.run(for: .milliseconds(30))
        }
        network.run(for: .seconds(2))
        let proposer = try #require(cluster.proposers[0].proposer)
        // Whichever delete completes third is refused its collection.
        #expect(collected.map(Self.outcome).sorted() == ["overloaded", "running", "running"], "seed \(seed)")
        let refused = try #require(collected.firstIndex { Self.outcome($0) == "overloaded" })
        #expect(proposer.counters.garbageCollectionsRefused == 1, "seed \(seed)")
        #expect(proposer.garbageCollectionCount == 2, "seed \(seed)")
        #expect(proposer.counters.maintenanceRestarts > 0, "seed \(seed): the collections kept retrying")
        // Its tombstone stays (on a quorum at least: the delete needed no more).
        let tombstones = cluster.acceptors.count { $0?.acceptor?.register(doomed[refused])?.isTombstone == true }
        #expect(tombstones >= 2, "seed \(seed)")

        // Dropped from the list, proposer 2 no longer holds anything up.
        let live = Array(cluster.proposerNodes[0..<2].map(\.localEndpoint))
        for node in cluster.proposers[0..<2] { node.proposerEndpoints = live }
        // Over faulty links a collection's retries back off: 1 s left one
        // running in 4 of 305 seeds of a sweep (done 0.1 to 1.3 s later).
        network.run(for: .seconds(3))
        #expect(collected.map(Self.outcome).sorted() == ["collected", "collected", "overloaded"], "seed \(seed)")
        var again: Result<Void, CASPaxosError>?
        cluster.proposers[0].collectGarbage(key: doomed[refused]) { again = $0 }
        network.run(for: .seconds(3))
        #expect(Self.outcome(again) == "collected", "seed \(seed): \(String(describing: again))")
        #expect(cluster.proposers[0].proposer?.garbageCollectionCount == 0)
        for key in doomed {
            #expect(cluster.acceptors.allSatisfy { $0?.acceptor?.register(key) == nil }, "seed \(seed)")
        }
        LinearizabilityTests.expectLinearizable(cluster, seed: seed)
    }

    /// A caller waiting for `collected` (the README's example, before a
    /// server stops) waited for ever while a listed proposer was down
    /// (found by an embedder's walk-through).
    @Test("a collection a listed proposer never answers fails .timeout after garbageCollectionTimeout, naming it; the tombstone stays")
    func collectionTimesOut() throws {
        var configuration = Self.configuration
        configuration.garbageCollectionTimeout = .seconds(2)
        let cluster = try SimulatedCASCluster(seed: 1, proposerCount: 3, configuration: configuration)
        let network = cluster.network
        let key = Array("doomed".utf8)
        cluster.perform(.write([1]), key: key, client: 1, proposer: 0)
        network.run(for: .milliseconds(100))
        let gone = cluster.proposerNodes[2]
        network.crash(gone)
        var collected: Result<Void, CASPaxosError>?
        cluster.delete(key, client: 1, proposer: 0) { collected = $0 }
        network.run(for: .seconds(1))
        #expect(Self.outcome(collected) == "running")
        // It fails at the first failed run after which the next would
        // start past the timeout.
        network.run(for: .seconds(2))
        guard case .failure(let error)? = collected else {
            Issue.record("collected: \(String(describing: collected))")
            return
        }
        #expect(error.code == .timeout)
        #expect(error.detail.contains("no answer from \(gone.localEndpoint)"), "\(error.detail)")
        #expect(error.detail.contains("the tombstone stays"))
        #expect(cluster.proposers[0].proposer?.garbageCollectionCount == 0)
        #expect(cluster.acceptors.count { $0?.acceptor?.register(key)?.isTombstone == true } >= 2)
        #expect(cluster.outcome(of: .read, key: key, client: 2, proposer: 1, within: .milliseconds(300)) == .ok(nil))

        // Dropped from the list, the proposer holds nothing up.
        let live = Array(cluster.proposerNodes[0..<2].map(\.localEndpoint))
        for node in cluster.proposers[0..<2] { node.proposerEndpoints = live }
        var again: Result<Void, CASPaxosError>?
        cluster.proposers[0].collectGarbage(key: key) { again = $0 }
        network.run(for: .seconds(1))
        #expect(Self.outcome(again) == "collected", "\(String(describing: again))")
        #expect(cluster.acceptors.allSatisfy { $0?.acceptor?.register(key) == nil })
    }

    @Test("a proposer listed twice is waited for once: the collection completes")
    func proposerListedTwice() throws {
        let cluster = try SimulatedCASCluster(seed: 1, proposerCount: 2, configuration: Self.configuration)
        let endpoints = cluster.proposerNodes.map(\.localEndpoint)
        for node in cluster.proposers { node.proposerEndpoints = endpoints + [endpoints[1]] }
        let key = Array("doomed".utf8)
        cluster.perform(.write([1]), key: key, client: 1, proposer: 0)
        cluster.network.run(for: .milliseconds(100))
        var collected: Result<Void, CASPaxosError>?
        cluster.delete(key, client: 1, proposer: 0) { collected = $0 }
        cluster.network.run(for: .seconds(1))
        #expect(Self.outcome(collected) == "collected")
        #expect(cluster.acceptors.allSatisfy { $0?.acceptor?.register(key) == nil })
    }

    @Test(
        "a proposer dropped while only cut off cannot write a removed key back with its cached ballot",
        arguments: UInt64(1)...5)
    func droppedButAlive(seed: UInt64) throws {
        let cluster = try SimulatedCASCluster(seed: seed, proposerCount: 3, configuration: Self.configuration)
        let network = cluster.network
        let doomed = Array("doomed".utf8)
        // Proposer 2's second write leaves a ballot promised and cached.
        cluster.perform(.write([1]), key: doomed, client: 50, proposer: 2)
        network.run(for: .milliseconds(50))
        cluster.perform(.write([2]), key: doomed, client: 50, proposer: 2)
        network.run(for: .milliseconds(50))
        #expect(cluster.proposers[2].proposer?.cachedKeyCount == 1)

        let cutOff = cluster.proposerNodes[2]
        network.partition([cutOff], network.nodes.filter { $0 !== cutOff })
        var collected: Result<Void, CASPaxosError>?
        cluster.delete(doomed, client: 90, proposer: 0) { collected = $0 }
        network.run(for: .milliseconds(500))
        #expect(Self.outcome(collected) == "running", "seed \(seed): collected without proposer 2's answer")
        let live = Array(cluster.proposerNodes[0..<2].map(\.localEndpoint))
        for node in cluster.proposers[0..<2] { node.proposerEndpoints = live }
        network.run(for: .milliseconds(500))
        #expect(Self.outcome(collected) == "collected", "seed \(seed)")
        #expect(cluster.acceptors.allSatisfy { $0?.acceptor?.register(doomed) == nil }, "seed \(seed)")

        // Back, proposer 2 still holds its cached ballot: its accept is
        // refused by the removal floor, and the retry finds the key empty
        // below that floor, so it cannot tell whether the accept was taken
        // and collected since: it ends indeterminate, having changed
        // nothing.
        network.heal()
        #expect(cluster.proposers[2].proposer?.cachedKeyCount == 1)
        let oneRoundTrips = cluster.proposers[2].counters.proposer.oneRoundTripAttempts
        let compareAndSet = cluster.outcome(
            of: .compareAndSet(expected: [2], new: [3]), key: doomed, client: 50, proposer: 2,
            within: .milliseconds(300))
        #expect(compareAndSet == .unknown, "seed \(seed)")
        #expect(cluster.proposers[2].counters.proposer.oneRoundTripAttempts == oneRoundTrips + 1)
        let read = cluster.outcome(of: .read, key: doomed, client: 51, proposer: 1, within: .milliseconds(300))
        #expect(read == .ok(nil), "seed \(seed)")
        LinearizabilityTests.expectLinearizable(cluster, seed: seed)
    }

    @Test(
        "proposer restarts past maximumTrackedProposers do not stall collection: acceptors forget unlisted proposers",
        arguments: UInt64(1)...5)
    func restartsPastTrackedProposers(seed: UInt64) throws {
        var configuration = Self.configuration
        configuration.maximumTrackedProposers = 2
        let cluster = try SimulatedCASCluster(
            seed: seed, proposerCount: 2, link: LinearizabilityTests.faultyLink, configuration: configuration)
        let network = cluster.network
        cluster.startClients(clientsPerProposer: 2, operations: 30, keys: [Array("live".utf8)])
        // Each round: proposer 1 restarts with a new ID, then a key is
        // deleted and collected, which sets both listed proposers' ages.
        for round in 0..<4 {
            network.crash(cluster.proposerNodes[1])
            network.restart(cluster.proposerNodes[1])
            let doomed = Array("doomed-\(round)".utf8)
            cluster.perform(.write([UInt8(round)]), key: doomed, client: 99, proposer: 0)
            network.run(for: .milliseconds(100))
            var collected: Result<Void, CASPaxosError>?
            cluster.delete(doomed, client: 90, proposer: 0) { collected = $0 }
            network.run(for: .seconds(2))
            #expect(Self.outcome(collected) == "collected", "seed \(seed), round \(round)")
            #expect(cluster.acceptors.allSatisfy { $0?.acceptor?.register(doomed) == nil }, "seed \(seed)")
        }
        for node in cluster.acceptors {
            let acceptor = try #require(node?.acceptor)
            #expect(acceptor.snapshot.minimumAges.count <= 2, "seed \(seed)")
            #expect(acceptor.counters.minimumAgesRefused == 0, "seed \(seed)")
        }
        #expect(cluster.acceptors.contains { ($0?.acceptor?.counters.minimumAgesForgotten ?? 0) > 0 }, "seed \(seed)")
        LinearizabilityTests.expectLinearizable(cluster, seed: seed)
    }
}
