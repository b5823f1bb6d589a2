import EventCore
import Simulation
import Testing
import WireCodec

@testable import Raft

/// Leadership transfer (Raft dissertation §3.10) in the simulator, with
/// ``RaftCluster``'s invariants checked throughout, and its messages.
@Suite("Raft: leadership transfer")
struct LeadershipTransferTests {
    static func settled(seed: UInt64, count: Int = 3) throws -> (RaftCluster, Int) {
        let cluster = try RaftCluster(count: count, seed: seed)
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        cluster.run(for: .milliseconds(300))
        return (cluster, try #require(cluster.leader))
    }

    @Test("under load the leader hands over to a follower: it wins the next term on the leader's order, with no PreVote and no other campaign, and nothing is lost",
          arguments: [UInt64(61), 62, 63])
    func handOver(seed: UInt64) throws {
        let (cluster, old) = try Self.settled(seed: seed)
        var next = 0
        MembershipChangeTests.runWithLoad(cluster, for: .milliseconds(200), next: &next)
        let target = (old + 1) % 3
        let term = try #require(cluster.rafts[old]?.term)
        let campaigns = cluster.indices.map { cluster.rafts[$0]?.counters.preVotesStarted ?? 0 }
        try #require(cluster.rafts[old]).transferLeadership(to: RaftCluster.id(target))
        #expect(cluster.rafts[old]?.transferTarget == RaftCluster.id(target))
        #expect(cluster.run(until: { cluster.leader == target }, limit: .seconds(1)))
        #expect(cluster.rafts[target]?.term == term + 1)
        #expect(cluster.rafts[target]?.counters.campaignsOnTimeoutNow == 1)
        #expect(cluster.indices.map { cluster.rafts[$0]?.counters.preVotesStarted ?? 0 } == campaigns,
                "no election timeout ran out")
        #expect(cluster.rafts[old]?.role == .follower && cluster.rafts[old]?.transferTarget == nil)
        MembershipChangeTests.runWithLoad(cluster, for: .milliseconds(300), next: &next)
        #expect(cluster.run(until: { cluster.converged }, limit: .seconds(5)))
        #expect(cluster.acknowledged.count > 100)
        #expect(cluster.lostAcknowledgements().isEmpty)
        cluster.checkLogMatching()
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("a target behind is brought up to date first; while the transfer runs the leader refuses proposals and changes, naming the target")
    func laggingTarget() throws {
        let (cluster, old) = try Self.settled(seed: 64)
        let target = (old + 1) % 3
        let others = cluster.indices.filter { $0 != target }.map { cluster.simulatedNodes[$0] }
        cluster.network.partition([cluster.simulatedNodes[target]], others)
        for _ in 0..<50 { cluster.propose(at: old) }
        #expect(cluster.run(until: { cluster.acknowledged.count == 50 }, limit: .seconds(2)))
        let leader = try #require(cluster.rafts[old])
        cluster.network.heal()
        try leader.transferLeadership(to: RaftCluster.id(target))
        // A change, as a proposal, is refused at the replica naming the
        // target, so the node forwards it there (forwardProposals): the
        // target takes it once it leads, or refuses it before.
        var changed: Result<Void, RaftError>?
        leader.changeMembership(.addLearner(NodeID(9), endpoint: .loopbackV4(port: 9))) { changed = $0 }
        #expect(changed == nil && leader.counters.proposalsForwarded == 1)
        // At the replica, a proposal is refused the same way.
        var replica = try RaftReplica(
            id: NodeID(1), group: 1, peers: [NodeID(2)], storage: InMemoryRaftStorage(),
            configuration: ReplicaGroup.paperConfiguration, seed: 1, now: Instant(nanoseconds: 0))
        replica.tick(now: Instant(nanoseconds: 5_000_000_000))
        replica.step(
            RaftMessage(group: 1, from: NodeID(2), to: NodeID(1), term: replica.term,
                        body: .voteResponse(granted: true, isPreVote: false)),
            now: Instant(nanoseconds: 5_000_000_000))
        try replica.transferLeadership(to: NodeID(2), now: Instant(nanoseconds: 5_000_000_000))
        #expect(throws: RaftError.notLeader(leaderHint: NodeID(2))) { try replica.propose([1]) }
        cluster.propose(at: old)
        #expect(cluster.run(until: { cluster.leader == target }, limit: .seconds(1)))
        #expect(cluster.rafts[target]?.counters.campaignsOnTimeoutNow == 1)
        #expect(cluster.run(until: { cluster.converged && changed != nil }, limit: .seconds(5)))
        #expect(cluster.applied[target].count >= 50)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("a transfer to a target cut off is given up after an election timeout; the leader leads on and takes proposals again")
    func unreachableTarget() throws {
        let (cluster, old) = try Self.settled(seed: 65)
        let target = (old + 1) % 3
        let others = cluster.indices.filter { $0 != target }.map { cluster.simulatedNodes[$0] }
        cluster.network.partition([cluster.simulatedNodes[target]], others)
        let leader = try #require(cluster.rafts[old])
        let term = leader.term
        try leader.transferLeadership(to: RaftCluster.id(target))
        cluster.run(for: leader.configuration.electionTimeout + .milliseconds(10))
        #expect(leader.transferTarget == nil && leader.counters.leadershipTransfersAborted == 1)
        #expect(leader.role == .leader && leader.term == term)
        cluster.propose(at: old)
        #expect(cluster.run(until: { cluster.acknowledged.count == 1 }, limit: .seconds(1)))
        cluster.network.heal()
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("refusals: not the leader, to itself, to a learner or a stranger")
    func refusals() throws {
        let (cluster, old) = try Self.settled(seed: 66, count: 4)
        _ = cluster  // four voters
        let leader = try #require(cluster.rafts[old])
        let follower = try #require(cluster.rafts[(old + 1) % 4])
        #expect(throws: RaftError.notLeader(leaderHint: leader.id)) { try follower.transferLeadership(to: leader.id) }
        #expect(throws: RaftError.invalidTransfer("\(leader.id) leads already")) {
            try leader.transferLeadership(to: leader.id)
        }
        #expect(throws: RaftError.invalidTransfer("\(NodeID(9)) is not another voter of the group")) {
            try leader.transferLeadership(to: NodeID(9))
        }
        var replica = try RaftReplica(
            id: NodeID(1), group: 1, peers: [], storage: InMemoryRaftStorage(), seed: 1, now: Instant(nanoseconds: 0))
        replica.tick(now: Instant(nanoseconds: 5_000_000_000))
        try replica.proposeMembershipChange(.addLearner(NodeID(2), endpoint: nil))
        #expect(throws: RaftError.invalidTransfer("\(NodeID(2)) is not another voter of the group")) {
            try replica.transferLeadership(to: NodeID(2), now: Instant(nanoseconds: 5_000_000_000))
        }
    }

    @Test("a timeoutNow is obeyed only from the leader of this term: from a later term, a stranger, another voter, or at a learner it is dropped")
    func timeoutNowOnlyFromTheLeader() throws {
        func follower(learner: Bool = false) throws -> RaftReplica {
            var replica = try RaftReplica(
                id: NodeID(2), group: 1, peers: [NodeID(1), NodeID(3)], storage: InMemoryRaftStorage(), seed: 2,
                now: Instant(nanoseconds: 0))
            var entries = [RaftEntry(term: 1, index: 1, kind: .leaderNoop)]
            if learner {
                let members = try RaftMembership(
                    [RaftMembership.Member(id: NodeID(1)), RaftMembership.Member(id: NodeID(3))],
                    learners: [RaftMembership.Member(id: NodeID(2))])
                entries.append(members.entry(term: 1, index: 2))
            }
            replica.step(
                RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 1, body: .append(
                    previousIndex: 0, previousTerm: 0, entries: entries, leaderCommit: 0)),
                now: Instant(nanoseconds: 1))
            #expect(replica.leader == NodeID(1))
            return replica
        }
        let now = Instant(nanoseconds: 2)
        for (from, term, learner) in [(NodeID(1), UInt64(2), false), (NodeID(9), 1, false), (NodeID(3), 1, false),
                                      (NodeID(1), 1, true)] {
            var replica = try follower(learner: learner)
            replica.step(RaftMessage(group: 1, from: from, to: NodeID(2), term: term, body: .timeoutNow), now: now)
            #expect(replica.role == .follower && replica.counters.campaignsOnTimeoutNow == 0, "\(from), term \(term)")
            #expect(replica.counters.messagesDropped == 1, "\(from), term \(term), learner \(learner)")
        }
        var replica = try follower()
        replica.step(RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 1, body: .timeoutNow), now: now)
        #expect(replica.role == .candidate && replica.term == 2 && replica.counters.campaignsOnTimeoutNow == 1)
        let requests = replica.ready().messages.map(\.body).filter { if case .voteRequest = $0 { true } else { false } }
        #expect(requests == Array(
            repeating: .voteRequest(lastLogIndex: 1, lastLogTerm: 1, isPreVote: false, isTransfer: true), count: 2))
    }

    @Test("a transfer's vote request and timeoutNow round-trip; other vote request flags are refused")
    func messages() throws {
        let limits = RaftMessage.decodingLimits
        for body: RaftMessage.Body in [
            .voteRequest(lastLogIndex: 7, lastLogTerm: 3, isPreVote: false, isTransfer: true),
            .voteRequest(lastLogIndex: 7, lastLogTerm: 3, isPreVote: true),
            .timeoutNow,
        ] {
            let message = RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 4, body: body)
            var writer = WireWriter()
            message.encode(to: &writer)
            #expect(try writer.bytes.withUnsafeBytes { try RaftMessage(decoding: $0, limits: limits) } == message)
        }
        var writer = WireWriter()
        RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 4, body: .voteRequest(
            lastLogIndex: 7, lastLogTerm: 3, isPreVote: true)).encode(to: &writer)
        for flags: UInt8 in [3, 4, 0x80] {
            var bytes = writer.bytes
            bytes[bytes.count - 1] = flags
            #expect(throws: WireError.self) { try bytes.withUnsafeBytes { try RaftMessage(decoding: $0, limits: limits) } }
        }
    }
}
