import CASPaxos
import EventCore
import Foundation
import Simulation
import Testing

/// Concurrent proposers on shared and disjoint keys under faults; the
/// checker must find every history linearizable. 1,440 seeds in all, or
/// `CHORUS_CASPAXOS_SEED_SCALE` times as many (`Scripts/caspaxos-linearizability`).
@Suite("CASPaxos is linearizable in the simulator")
struct LinearizabilityTests {
    static let faultyLink = LinkConditions(
        delay: .uniform(minimum: .microseconds(200), maximum: .milliseconds(3)), lossProbability: 0.05,
        duplicateProbability: 0.05, reorderProbability: 0.1)

    /// `range`, or `CHORUS_CASPAXOS_SEED_SCALE` times as many seeds from
    /// its first.
    static func seeds(_ range: ClosedRange<UInt64>) -> ClosedRange<UInt64> {
        let scale = ProcessInfo.processInfo.environment["CHORUS_CASPAXOS_SEED_SCALE"].flatMap { UInt64($0) } ?? 1
        return range.lowerBound...(range.lowerBound + UInt64(range.count) * max(1, scale) - 1)
    }

    static func expectLinearizable(_ cluster: SimulatedCASCluster, seed: UInt64) {
        let verdict = cluster.check()
        #expect(verdict == .linearizable, "seed \(seed): \(verdict)")
        #expect(cluster.succeeded > 0, "seed \(seed): no operation succeeded")
    }

    @Test("loss, duplication and reordering (100 seeds)")
    func lossyLinks() throws {
        for seed in Self.seeds(1...100) {
            let cluster = try SimulatedCASCluster(seed: seed, link: Self.faultyLink)
            cluster.startClients(clientsPerProposer: 2, operations: 5, keys: [Array("shared".utf8)])
            cluster.network.run(for: .seconds(5))
            Self.expectLinearizable(cluster, seed: seed)
        }
    }

    @Test("partitions that isolate an acceptor or a proposer, then heal (50 seeds)")
    func partitions() throws {
        for seed in Self.seeds(1_001...1_050) {
            let cluster = try SimulatedCASCluster(seed: seed, link: Self.faultyLink)
            cluster.startClients(clientsPerProposer: 2, operations: 5, keys: [Array("a".utf8), Array("b".utf8)])
            var random = SeededRandomGenerator(seed: seed)
            let victims = cluster.acceptorNodes + cluster.proposerNodes
            for round in 0..<3 {
                let start = Instant.zero + .milliseconds(Int64(round) * 120 + Int64.random(in: 0..<40, using: &random))
                let victim = victims[Int.random(in: 0..<victims.count, using: &random)]
                cluster.network.schedule(at: start) { network in
                    network.partition([victim], network.nodes.filter { $0 !== victim })
                }
                cluster.network.schedule(at: start + .milliseconds(80)) { network in network.heal() }
            }
            cluster.network.run(for: .seconds(5))
            Self.expectLinearizable(cluster, seed: seed)
        }
    }

    /// Three proposers taking turns on one key, with little think time and
    /// an acceptor crashing in half the runs: partly accepted writes that a
    /// read's promises disagree on. This is the workload that catches a
    /// read ending at promises that do not prove its value chosen (the
    /// other workloads here did not).
    @Test("three proposers on one key, reads among the writes, an acceptor crashing (1,000 seeds)")
    func readsAmongWrites() throws {
        for seed in Self.seeds(4_001...5_000) {
            let cluster = try SimulatedCASCluster(seed: seed, proposerCount: 3, link: Self.faultyLink)
            cluster.startClients(
                clientsPerProposer: 2, operations: 8, keys: [Array("shared".utf8)], thinkTime: .milliseconds(5))
            var random = SeededRandomGenerator(seed: seed)
            if seed % 2 == 0 {
                let victim = cluster.acceptorNodes[Int.random(in: 0..<3, using: &random)]
                let at = Instant.zero + .milliseconds(Int64.random(in: 1...30, using: &random))
                cluster.network.schedule(at: at) { network in network.crash(victim) }
                cluster.network.schedule(at: at + .milliseconds(40)) { network in network.restart(victim) }
            }
            cluster.network.run(for: .seconds(5))
            Self.expectLinearizable(cluster, seed: seed)
        }
    }

    /// Clients withdraw half their operations at random moments: those
    /// withdrawn (queued, backing off or preparing) fail definitely, so
    /// the checker holds them to having changed nothing; the others run
    /// on. Three proposers on one key keep many queued and refused.
    @Test("impatient clients withdraw proposals at random moments (200 seeds)")
    func withdrawals() throws {
        var withdrawn = 0
        for seed in Self.seeds(6_001...6_200) {
            let cluster = try SimulatedCASCluster(seed: seed, proposerCount: 3, link: Self.faultyLink)
            cluster.startClients(
                clientsPerProposer: 2, operations: 6, keys: [Array("shared".utf8)], thinkTime: .milliseconds(5),
                impatience: .milliseconds(6))
            cluster.network.run(for: .seconds(5))
            Self.expectLinearizable(cluster, seed: seed)
            withdrawn += cluster.proposers.reduce(0) { $0 + $1.counters.proposer.proposalsWithdrawn }
        }
        // About one operation in ten, across the runs.
        #expect(withdrawn > 200, "withdrawn: \(withdrawn)")
    }

    @Test("acceptors crash and restart from their file stores, proposers with a new ID (50 seeds)")
    func crashRestart() throws {
        for seed in Self.seeds(2_001...2_050) {
            let cluster = try SimulatedCASCluster(seed: seed, fileStorage: true, link: Self.faultyLink)
            cluster.startClients(clientsPerProposer: 2, operations: 5, keys: [Array("shared".utf8)])
            var random = SeededRandomGenerator(seed: seed)
            // Acceptors in rounds 0 and 2, a proposer in round 1: its
            // operations in flight stay unknown, and its next incarnation
            // serves the clients that were between operations.
            for round in 0..<3 {
                let at = Instant.zero + .milliseconds(Int64(round) * 100 + Int64.random(in: 0..<50, using: &random))
                let pool = round == 1 ? cluster.proposerNodes : cluster.acceptorNodes
                let victim = pool[Int.random(in: 0..<pool.count, using: &random)]
                cluster.network.schedule(at: at) { network in network.crash(victim) }
                cluster.network.schedule(at: at + .milliseconds(Int64.random(in: 10..<60, using: &random))) { network in
                    network.restart(victim)
                }
            }
            cluster.network.run(for: .seconds(5))
            Self.expectLinearizable(cluster, seed: seed)
        }
    }

    @Test("proposers on acceptor nodes, which crash and restart with both roles, half on file stores (40 seeds)")
    func colocatedRoles() throws {
        for seed in Self.seeds(3_001...3_040) {
            let cluster = try SimulatedCASCluster(
                seed: seed, colocated: true, fileStorage: seed % 2 == 0, link: Self.faultyLink)
            cluster.startClients(clientsPerProposer: 2, operations: 5, keys: [Array("shared".utf8)])
            var random = SeededRandomGenerator(seed: seed)
            // The acceptor-only node, then any node (both roles, for a
            // proposer's node): one proposer at least keeps its counters.
            for round in 0..<2 {
                let at = Instant.zero + .milliseconds(Int64(round) * 150 + Int64.random(in: 0..<50, using: &random))
                let victim = cluster.acceptorNodes[round == 0 ? 2 : Int.random(in: 0..<3, using: &random)]
                cluster.network.schedule(at: at) { network in network.crash(victim) }
                cluster.network.schedule(at: at + .milliseconds(Int64.random(in: 10..<60, using: &random))) { network in
                    network.restart(victim)
                }
            }
            cluster.network.run(for: .seconds(5))
            Self.expectLinearizable(cluster, seed: seed)
            #expect(cluster.proposers.contains { $0.counters.messagesDeliveredLocally > 0 }, "seed \(seed)")
        }
    }
}
