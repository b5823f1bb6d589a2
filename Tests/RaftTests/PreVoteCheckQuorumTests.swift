import EventCore
import Testing
@testable import Raft

/// The Raft thesis's extensions (Ongaro 2014): PreVote (§9.6) and
/// CheckQuorum with leader leases on votes (§6.2, §4.2.3), on replicas
/// driven by hand.
@Suite("PreVote and CheckQuorum")
struct PreVoteCheckQuorumTests {
    /// Lets the leader (replica 0) send heartbeats at `group.now` and
    /// delivers everything.
    static func heartbeat(_ group: ReplicaGroup) {
        group.replicas[0].tick(now: group.now)
        group.deliverAll()
    }

    @Test("§9.6: a partitioned replica campaigns with PreVote and does not raise its term")
    func partitionedReplicaKeepsTerm() throws {
        let group = try ReplicaGroup(count: 3, configuration: RaftConfiguration())
        group.elect(0)
        let term = group.replicas[0].term
        group.isolated = [2]
        for _ in 0..<5 {
            group.timeOut(2)
            group.deliverAll()
        }
        #expect(group.replicas[2].term == term)
        #expect(group.replicas[2].role == .preCandidate)
        #expect(group.replicas[2].counters.preVotesStarted == 5)
        #expect(group.replicas[2].counters.electionsStarted == 0)
    }

    @Test("§9.6: a replica rejoining after a partition does not disrupt a leader the others hear from")
    func rejoiningReplicaDoesNotDisrupt() throws {
        let group = try ReplicaGroup(count: 3, configuration: RaftConfiguration())
        group.elect(0)
        let term = group.replicas[0].term
        group.isolated = [2]
        for _ in 0..<3 {
            group.timeOut(2)
            Self.heartbeat(group)  // the leader keeps replica 1 in its lease
        }
        // Replica 2 campaigns again the moment it is reconnected, before a
        // heartbeat reaches it.
        group.now = max(group.now, group.replicas[2].nextDeadline)
        Self.heartbeat(group)
        group.isolated = []
        group.replicas[2].tick(now: group.now)
        #expect(group.replicas[2].role == .preCandidate)
        group.deliverAll()
        #expect(group.replicas[0].role == .leader)
        #expect(group.replicas[0].term == term)
        #expect(group.replicas.allSatisfy { $0.term == term })
        #expect(group.replicas[2].role == .follower)
        #expect(group.replicas[1].counters.votesRefusedInLease >= 1)
    }

    @Test("§9.6: once the leader is silent for an election timeout, PreVote succeeds and a real election follows")
    func preVoteThenElection() throws {
        let group = try ReplicaGroup(count: 3, configuration: RaftConfiguration())
        group.elect(0)
        let term = group.replicas[0].term
        group.isolated = [0]
        group.timeOut(1)
        group.deliverAll()
        #expect(group.replicas[1].role == .leader)
        #expect(group.replicas[1].term == term + 1)
        #expect(group.replicas[1].counters.preVotesStarted == 1)
        #expect(group.replicas[1].counters.electionsStarted == 1)
    }

    @Test("§6.2: a leader that has not heard from a majority within an election timeout steps down")
    func isolatedLeaderStepsDown() throws {
        let group = try ReplicaGroup(count: 3, configuration: RaftConfiguration())
        group.elect(0)
        group.isolated = [0]
        let end = group.now + group.replicas[0].configuration.electionTimeout * 2
        while group.replicas[0].role == .leader && group.now < end {
            group.now = group.replicas[0].nextDeadline
            Self.heartbeat(group)
        }
        #expect(group.replicas[0].role == .follower)
        #expect(group.replicas[0].leader == nil)
        #expect(group.replicas[0].counters.quorumLosses == 1)
    }

    @Test("§6.2: a leader that hears from a majority keeps leading across many election timeouts")
    func connectedLeaderStays() throws {
        let group = try ReplicaGroup(count: 3, configuration: RaftConfiguration())
        group.elect(0)
        group.isolated = [2]  // one follower lost: a majority remains
        let end = group.now + group.replicas[0].configuration.electionTimeout * 10
        while group.now < end {
            group.now = group.replicas[0].nextDeadline
            Self.heartbeat(group)
        }
        #expect(group.replicas[0].role == .leader)
        #expect(group.replicas[0].counters.quorumLosses == 0)
    }

    @Test("§4.2.3: with CheckQuorum, a replica that heard from its leader within the timeout ignores a real vote request")
    func voteIgnoredInLease() throws {
        var configuration = RaftConfiguration()
        configuration.preVote = false
        let group = try ReplicaGroup(count: 3, configuration: configuration)
        group.elect(0)
        let term = group.replicas[1].term
        group.replicas[1].step(
            ReplicaGroup.message(from: 2, to: 1, term: term + 1,
                                 .voteRequest(lastLogIndex: 10, lastLogTerm: term, isPreVote: false)),
            now: group.now)
        #expect(group.replicas[1].term == term)
        #expect(group.takeMessages().isEmpty)
        #expect(group.replicas[1].counters.votesRefusedInLease == 1)
    }

    @Test("§9.6: a pre-candidate whose PreVote a majority refuses returns to follower")
    func refusedPreVote() throws {
        let group = try ReplicaGroup(count: 3, configuration: RaftConfiguration(), storages: [
            InMemoryRaftStorage(), ReplicaGroup.storage(terms: [1, 1], term: 1), ReplicaGroup.storage(terms: [1, 1], term: 1),
        ])
        group.timeOut(0)  // an empty log: both refuse
        #expect(group.replicas[0].role == .preCandidate)
        group.deliverAll()
        #expect(group.replicas[0].role == .follower)
        #expect(group.replicas.allSatisfy { $0.term == 1 })
    }
}
