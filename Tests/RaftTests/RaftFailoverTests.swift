import EventCore
import Raft
import Simulation
import Testing

/// Leader failures, partitions and rejoins in the simulator (fixed seeds,
/// perfect links unless stated), with ``RaftCluster``'s invariants checked
/// throughout.
@Suite("Raft in the simulator: failover")
struct RaftFailoverTests {
    static func settledCluster(count: Int, seed: UInt64) throws -> (RaftCluster, Int) {
        let cluster = try RaftCluster(count: count, seed: seed)
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        let leader = try #require(cluster.leader)
        cluster.run(for: .milliseconds(500))
        return (cluster, leader)
    }

    /// A settled group of 5 whose leader (`old`), with one other node, is
    /// cut off from the other three (`majority`).
    static func leaderInMinority(seed: UInt64) throws -> (RaftCluster, old: Int, majority: [Int]) {
        let (cluster, old) = try settledCluster(count: 5, seed: seed)
        let minority = [old, cluster.indices.first { $0 != old }!]
        let majority = cluster.indices.filter { !minority.contains($0) }
        cluster.network.partition(minority.map { cluster.simulatedNodes[$0] }, majority.map { cluster.simulatedNodes[$0] })
        return (cluster, old, majority)
    }

    @Test("a crashed leader is replaced; restarted from its storage it catches up and loses nothing")
    func leaderCrashAndRestart() throws {
        let (cluster, first) = try Self.settledCluster(count: 3, seed: 7)
        for _ in 0..<50 {
            cluster.propose(at: first)
            cluster.run(for: .milliseconds(5))
        }
        #expect(cluster.run(until: { cluster.acknowledged.count == 50 }, limit: .seconds(2)))
        cluster.crash(first)
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        let second = try #require(cluster.leader)
        #expect(second != first)
        for _ in 0..<50 {
            cluster.propose(at: second)
            cluster.run(for: .milliseconds(5))
        }
        #expect(cluster.run(until: { cluster.acknowledged.count == 100 }, limit: .seconds(2)))
        try cluster.restart(first)
        #expect(cluster.run(until: { cluster.converged }, limit: .seconds(5)))
        #expect(cluster.applied[first].count == 100, "the restarted node re-applied the whole log")
        #expect(cluster.rafts[first]?.role == .follower)
        #expect(cluster.lostAcknowledgements().isEmpty)
        cluster.checkLogMatching()
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("a leader cut off with a minority steps down (CheckQuorum); healed soon after, it learns its uncommitted proposals were dropped")
    func minorityLeaderStepsDown() throws {
        let (cluster, old, majority) = try Self.leaderInMinority(seed: 8)
        let oldTerm = try #require(cluster.rafts[old]?.term)
        for _ in 0..<5 { cluster.propose(at: old, prefix: "doomed") }
        #expect(cluster.run(until: { cluster.rafts[old]?.role != .leader }, limit: .seconds(3)))
        // Stepped down; it may be pre-campaigning, which raises no term.
        #expect(cluster.rafts[old]?.term == oldTerm)
        #expect((cluster.rafts[old]?.counters.quorumLosses ?? 0) >= 1)
        #expect(cluster.run(until: { majority.contains { cluster.rafts[$0]?.role == .leader } }, limit: .seconds(1)))
        let newLeader = majority.first { cluster.rafts[$0]?.role == .leader }
        #expect((newLeader.flatMap { cluster.rafts[$0]?.term } ?? 0) > oldTerm)
        #expect(cluster.rafts[old]?.pendingProposalCount == 5, "no outcome is known while cut off")
        // Healed before forwardTimeout has passed without a leader: the
        // proposals wait for the new leader's log, which overwrites them.
        cluster.network.heal()
        #expect(cluster.run(until: { cluster.converged && cluster.rafts[old]?.pendingProposalCount == 0 },
                            limit: .seconds(5)))
        #expect(cluster.failures == Array(repeating: RaftError.proposalDropped, count: 5))
        #expect(cluster.rafts[old]?.role == .follower)
        #expect(cluster.rafts[old]?.counters.waitsAbandoned == 0)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("a leader cut off for long fails its uncommitted proposals outcomeUnknown, forwardTimeout after stepping down (as hashicorp/raft's ErrLeadershipLost), rather than wait for a heal that may never bring their outcome")
    func minorityLeaderGivesUp() throws {
        let (cluster, old, _) = try Self.leaderInMinority(seed: 8)
        for _ in 0..<5 { cluster.propose(at: old, prefix: "doomed") }
        #expect(cluster.run(until: { cluster.rafts[old]?.role != .leader }, limit: .seconds(3)))
        let steppedDown = cluster.network.now
        #expect(cluster.run(until: { cluster.failures.count == 5 }, limit: .seconds(3)))
        let waited = cluster.network.now - steppedDown
        let timeout = try #require(cluster.rafts[old]?.configuration.forwardTimeout)
        #expect(waited >= timeout && waited <= timeout + .milliseconds(20), "\(waited)")
        #expect(cluster.failures == Array(repeating: RaftError.outcomeUnknown, count: 5))
        #expect(cluster.rafts[old]?.counters.waitsAbandoned == 5)
        cluster.network.heal()
        #expect(cluster.run(until: { cluster.converged }, limit: .seconds(5)))
        #expect(cluster.lostAcknowledgements().isEmpty)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("a follower rejoining after a long partition does not disrupt the leader (PreVote)")
    func rejoinDoesNotDisrupt() throws {
        let (cluster, leader) = try Self.settledCluster(count: 3, seed: 9)
        let term = try #require(cluster.rafts[leader]?.term)
        let follower = cluster.indices.first { $0 != leader }!
        let others = cluster.indices.filter { $0 != follower }
        cluster.network.partition([cluster.simulatedNodes[follower]], others.map { cluster.simulatedNodes[$0] })
        for _ in 0..<20 {
            cluster.propose(at: leader)
            cluster.run(for: .milliseconds(500))
        }
        #expect((cluster.rafts[follower]?.counters.preVotesStarted ?? 0) >= 3, "it kept trying while cut off")
        #expect(cluster.rafts[follower]?.term == term, "PreVote kept its term")
        cluster.network.heal()
        #expect(cluster.run(until: { cluster.converged }, limit: .seconds(5)))
        cluster.run(for: .seconds(5))
        #expect(cluster.leader == leader)
        #expect(cluster.indices.allSatisfy { cluster.rafts[$0]?.term == term })
        #expect(cluster.leaders.count == 1)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("without PreVote the same rejoin deposes the leader (the control for the test above)")
    func rejoinDisruptsWithoutPreVote() throws {
        var configuration = RaftConfiguration()
        configuration.preVote = false
        configuration.checkQuorum = false
        let cluster = try RaftCluster(count: 3, seed: 9, configuration: configuration)
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        let leader = try #require(cluster.leader)
        let term = try #require(cluster.rafts[leader]?.term)
        let follower = cluster.indices.first { $0 != leader }!
        cluster.network.partition([cluster.simulatedNodes[follower]],
                                  cluster.indices.filter { $0 != follower }.map { cluster.simulatedNodes[$0] })
        cluster.run(for: .seconds(10))
        #expect((cluster.rafts[follower]?.term ?? 0) > term + 2)
        cluster.network.heal()
        cluster.run(for: .seconds(5))
        #expect(cluster.indices.allSatisfy { (cluster.rafts[$0]?.term ?? 0) > term + 2 }, "everyone moved to its term")
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("a follower restarted 3,000 entries behind catches up through bounded, pipelined appends")
    func laggingFollowerCatchesUp() throws {
        let (cluster, leader) = try Self.settledCluster(count: 3, seed: 10)
        let lagging = cluster.indices.first { $0 != leader }!
        cluster.crash(lagging)
        for round in 0..<30 {
            for _ in 0..<100 { cluster.propose(at: leader, prefix: "r\(round)-") }
            cluster.run(for: .milliseconds(50))
        }
        #expect(cluster.run(until: { cluster.acknowledged.count == 3_000 }, limit: .seconds(5)))
        try cluster.restart(lagging)
        #expect(cluster.run(until: { cluster.converged }, limit: .seconds(10)))
        #expect(cluster.applied[lagging].count == 3_000)
        #expect(cluster.log(of: lagging) == cluster.log(of: leader))
        #expect(cluster.leader == leader, "catching up caused no election")
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }
}
