import EventCore
import Foundation
import Raft
import Simulation
import Testing

/// A replica whose log is lost, in the simulator: restarted on a new log it
/// lets a committed entry be lost, which is why a restart
/// (``FileRaftStorage/Opening/existing``) refuses a missing log.
@Suite("Raft in the simulator: a lost log")
struct LostLogTests {
    /// Three nodes on file stores; the leader commits `x` with one follower
    /// while the other (the outsider) is cut off; then the follower
    /// crashes and its directory is removed.
    static func followerLosesLog(seed: UInt64) throws -> (cluster: RaftCluster, leader: Int, follower: Int, outsider: Int) {
        let cluster = try RaftCluster(count: 3, seed: seed, fileStorage: FileRaftStorage.Options(sync: false))
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        let leader = try #require(cluster.leader)
        cluster.run(for: .milliseconds(500))
        let (follower, outsider) = (leader + 1) % 3 < (leader + 2) % 3
            ? ((leader + 1) % 3, (leader + 2) % 3) : ((leader + 2) % 3, (leader + 1) % 3)
        cluster.network.partition(
            [cluster.simulatedNodes[outsider]], [leader, follower].map { cluster.simulatedNodes[$0] })
        cluster.propose(Array("x".utf8), at: leader)
        #expect(cluster.run(until: { cluster.acknowledged.count == 1 }, limit: .seconds(2)), "x is committed")
        cluster.crash(follower)
        try FileManager.default.removeItem(atPath: try #require(cluster.fileStoreDirectory(of: follower)))
        return (cluster, leader, follower, outsider)
    }

    @Test("a follower restarted on a new log in place of its lost one helps elect a leader without a committed entry")
    func newLogLosesCommit() throws {
        let (cluster, leader, follower, outsider) = try Self.followerLosesLog(seed: 11)
        // The operator's mistake: the replica starts again as if new.
        try cluster.restart(follower, opening: .new)
        cluster.crash(leader)
        cluster.network.heal()
        #expect(cluster.run(until: { cluster.leader == outsider }, limit: .seconds(5)),
                "the empty follower votes for the outsider, whose log lacks x")
        #expect(cluster.violations.contains { $0.contains("lacks committed index") }, "\(cluster.violations)")
        cluster.propose(Array("y".utf8), at: outsider)
        #expect(cluster.run(until: { cluster.acknowledged.count == 2 }, limit: .seconds(2)))
        #expect(cluster.lostAcknowledgements().contains { $0.hasSuffix("lacks x") })
    }

    @Test("a restart refuses the lost log; the group runs on without the replica and loses nothing")
    func restartRefusesLostLog() throws {
        let (cluster, _, follower, outsider) = try Self.followerLosesLog(seed: 11)
        let error = #expect(throws: RaftStorageError.self) { try cluster.restart(follower) }
        #expect(error?.code == .missingLog)
        #expect(cluster.rafts[follower] == nil)
        cluster.network.heal()
        #expect(cluster.run(until: { cluster.converged && cluster.live.count == 2 }, limit: .seconds(5)))
        let leader = try #require(cluster.leader)
        cluster.propose(Array("y".utf8), at: leader)
        #expect(cluster.run(until: { cluster.acknowledged.count == 2 && cluster.converged }, limit: .seconds(2)))
        #expect(cluster.applied[outsider].map { String(decoding: $0.command, as: UTF8.self) } == ["x", "y"])
        #expect(cluster.lostAcknowledgements().isEmpty)
        cluster.checkLogMatching()
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }
}
