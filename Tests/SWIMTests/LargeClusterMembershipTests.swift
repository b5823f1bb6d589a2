import EventCore
import SWIM
import Simulation
import Testing

/// SWIM at 1,000 members in the simulator: the scenarios of
/// `ClusterMembershipTests` (joins converge, a crash is detected by every
/// member, no false positive under loss with a slow member, a partition
/// heals, a restarted member rejoins with a higher incarnation) at the
/// size where the O(N²) costs show. Convergence is polled every 100 ms or
/// more: one check reads every member.
@Suite("SWIM membership at 1,000 members (simulator)")
struct LargeClusterMembershipTests {
    @Test("1,000 members join, all know all, and a crashed member is declared dead by every member")
    func joinAndCrashDetection1000() throws {
        let cluster = try SWIMCluster(count: 1_000, seed: 21, joinSpread: .seconds(5))
        cluster.network.run(until: cluster.lastJoinAt)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: 1_000) }, step: .milliseconds(100),
                                     limit: .seconds(30)), "1,000 members did not converge within 30 s")
        cluster.crash(500)
        let everyone = cluster.run(until: { cluster.everyoneSees(500, as: .dead) }, step: .milliseconds(100), limit: .seconds(30))
        #expect(everyone != nil)
        #expect(cluster.falsePositives(excluding: [500]).isEmpty)
    }

    @Test("no false positive among 1,000 members in 10 minutes with 2% loss and one slow member (Lifeguard)")
    func noFalsePositivesUnderLossAndSlowMember1000() throws {
        try ClusterMembershipTests.expectNoFalsePositivesUnderLossAndSlowMember(count: 1_000)
    }

    @Test("1,000 members: a 500/500 partition heals and reunites the membership, then a crashed member rejoins with a higher incarnation")
    func partitionHealsAndRejoinAfterCrash1000() throws {
        let count = 1_000
        let cluster = try SWIMCluster(count: count, seed: 27, joinSpread: .seconds(5))
        cluster.network.run(until: cluster.lastJoinAt)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: count) }, step: .milliseconds(100),
                                     limit: .seconds(30)), "1,000 members did not converge within 30 s")

        // Partition: every member of each side declares every member of the
        // other side dead (and keeps its own side alive).
        let half = count / 2
        cluster.network.partition(Array(cluster.nodes[..<half]), Array(cluster.nodes[half...]))
        let split = cluster.run(until: {
            cluster.liveIndices.allSatisfy { index in
                let member = cluster.members[index]!
                return member.memberCount(.alive) == half && member.memberCount(.dead) == half
            }
        }, step: .milliseconds(500), limit: .seconds(40))
        try #require(split != nil, "the two sides did not each declare the other dead within 40 s")

        // Heal: the sides find each other again and all know all alive.
        cluster.network.heal()
        let reunited = cluster.run(until: { cluster.isConverged(expecting: count) }, step: .milliseconds(500),
                                   limit: .seconds(60))
        let reunitedAt = try #require(reunited, "the two sides did not merge again within 60 s")

        // Crash and restart: a member rejoins with its old ID and a higher
        // incarnation, and every member sees that incarnation alive.
        let restarted = 700
        cluster.crash(restarted)
        _ = try #require(cluster.run(until: { cluster.everyoneSees(restarted, as: .dead) }, step: .milliseconds(100), limit: .seconds(30)), "not every member declared the crashed one dead")
        let deadIncarnation = try #require(cluster.members[0]?.member(cluster.id(restarted))?.incarnation)
        let restartedAt = cluster.network.now
        cluster.restart(restarted)
        _ = try #require(cluster.run(until: { cluster.isConverged(expecting: count) }, step: .milliseconds(100),
                                     limit: .seconds(30)), "the restarted member was not seen alive by all within 30 s")
        let incarnation = cluster.members[restarted]!.localMember.incarnation
        #expect(incarnation > deadIncarnation)
        let stale = cluster.liveIndices.filter {
            $0 != restarted && cluster.members[$0]!.member(cluster.id(restarted))?.incarnation != incarnation
        }
        #expect(stale.isEmpty, "\(stale.count) members hold another incarnation of the restarted member")
        #expect(cluster.observations(.joined, about: restarted, since: restartedAt).count >= count - 1)
        // Since the merge, only the crashed member was declared dead.
        #expect(cluster.falsePositives(excluding: [restarted], since: reunitedAt).isEmpty)
    }
}
