import EventCore
import Raft
import Simulation
import Testing

/// Raft groups in the simulator under message loss, duplication,
/// reordering, partitions, one-way cuts and crashes (see ``Nemesis``), with
/// the safety invariants checked throughout (see ``RaftCluster``) and
/// liveness checked once the faults stop. Every run is determined by its
/// seed.
@Suite("Raft in the simulator: safety under faults")
struct RaftSimulationTests {
    static let faultyLink = LinkConditions(
        delay: .uniform(minimum: .milliseconds(1), maximum: .milliseconds(5)), lossProbability: 0.05,
        duplicateProbability: 0.05, reorderProbability: 0.1)

    static let harshLink = LinkConditions(
        delay: .uniform(minimum: .milliseconds(1), maximum: .milliseconds(30)), lossProbability: 0.2,
        duplicateProbability: 0.2, reorderProbability: 0.3, reorderDelay: .uniform(minimum: .zero, maximum: .milliseconds(200)))

    /// Runs `rounds` half-seconds of faults with a proposal every 20 ms,
    /// then heals, writes once more and checks safety and liveness.
    static func exercise(_ cluster: RaftCluster, seed: UInt64, rounds: Int, command: (inout SeededRandomGenerator) -> [UInt8]) throws {
        var nemesis = Nemesis(cluster: cluster, seed: seed ^ 0xFA17)
        var random = SeededRandomGenerator(seed: seed)
        for round in 0..<rounds {
            try nemesis.strike()
            for _ in 0..<25 {
                if let target = nemesis.target() { cluster.propose(command(&random), at: target) }
                cluster.run(for: .milliseconds(20))
            }
            if round % 10 == 9 { cluster.checkLogMatching() }
        }
        try nemesis.stop()
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(20)), "seed \(seed): a leader after healing")
        // A client writes until acknowledged (the leader may refuse at
        // first: over its uncommitted limit, or about to step down).
        let wroteFinal = { cluster.acknowledged.contains { String(decoding: $0.command, as: UTF8.self).hasPrefix("final") } }
        for _ in 0..<20 where !wroteFinal() {
            if let leader = cluster.leader { cluster.propose(at: leader, prefix: "final") }
            cluster.run(until: wroteFinal, limit: .milliseconds(500))
        }
        #expect(wroteFinal(), "seed \(seed): a write after healing was acknowledged")
        #expect(cluster.run(until: { cluster.converged && cluster.rafts.allSatisfy { $0?.pendingProposalCount == 0 } },
                            limit: .seconds(30)), "seed \(seed): converged")
        cluster.checkLogMatching()
        #expect(cluster.violations.isEmpty, "seed \(seed): \(cluster.violations.prefix(5))")
        #expect(cluster.lostAcknowledgements().isEmpty, "seed \(seed): \(cluster.lostAcknowledgements().prefix(5))")
    }

    @Test("invariants hold and acknowledged writes survive while a nemesis partitions, cuts links one way and crashes nodes",
          arguments: [(3, 11 as UInt64), (3, 12), (3, 13), (5, 21), (5, 22), (5, 129)])
    func safetyUnderFaults(count: Int, seed: UInt64) throws {
        let cluster = try RaftCluster(count: count, seed: seed, link: Self.faultyLink)
        var sequence = 0
        try Self.exercise(cluster, seed: seed, rounds: 60) { _ in  // 30 s of simulated time
            sequence += 1
            return Array("c\(sequence)".utf8)
        }
        #expect(cluster.acknowledged.count > 200, "seed \(seed): progress under faults (\(cluster.acknowledged.count))")
        #expect(cluster.leaders.count >= 2, "seed \(seed): the faults forced new elections")
    }

    @Test("with tight flow-control limits on a network losing, duplicating and reordering a fifth of messages",
          arguments: [(3, 300 as UInt64), (3, 302), (5, 301), (5, 303)])
    func tightLimitsHarshNetwork(count: Int, seed: UInt64) throws {
        var configuration = RaftConfiguration()
        configuration.maximumInflightMessages = 2
        configuration.maximumAppendBytes = 1_024
        configuration.maximumInflightBytes = 1_024
        configuration.maximumCommandSize = 1_000
        configuration.maximumUncommittedBytes = 4_000
        let cluster = try RaftCluster(count: count, seed: seed, link: Self.harshLink, configuration: configuration)
        var sequence = 0
        try Self.exercise(cluster, seed: seed, rounds: 40) { random in
            sequence += 1
            return Array("c\(sequence)-".utf8) + Array(repeating: 0x2A, count: Int.random(in: 0..<900, using: &random))
        }
        #expect(cluster.acknowledged.count > 20, "seed \(seed): progress (\(cluster.acknowledged.count))")
        #expect(cluster.failures.contains { if case .uncommittedLimitExceeded = $0 { true } else { false } },
                "seed \(seed): the uncommitted limit was reached")
    }
}
