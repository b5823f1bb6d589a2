import EventCore
import Testing
@testable import Raft

/// Claims of the Raft paper (Ongaro and Ousterhout, 2014) about terms and
/// leader election (§5.1, §5.2, §5.4.1), each checked on replicas driven
/// by hand, with PreVote and CheckQuorum off as in the paper.
@Suite("Raft paper: terms and elections")
struct RaftPaperElectionTests {
    @Test("§5.1: a replica that sees a larger term adopts it and becomes a follower, whatever its role",
          arguments: [RaftRole.follower, .candidate, .leader])
    func largerTermMakesFollower(role: RaftRole) throws {
        let group = try ReplicaGroup(count: 3)
        switch role {
        case .follower: break
        case .candidate: group.timeOut(0)
        case .leader: group.elect(0)
        case .preCandidate: Issue.record("not a paper role")
        }
        #expect(group.replicas[0].role == role)
        let higher = group.replicas[0].term + 5
        group.replicas[0].step(ReplicaGroup.message(from: 1, to: 0, term: higher, .heartbeat(commitIndex: 0, readRound: 0)),
                               now: group.now)
        #expect(group.replicas[0].term == higher)
        #expect(group.replicas[0].role == .follower)
        #expect(group.replicas[0].leader == ReplicaGroup.id(1))
    }

    @Test("§5.1: a request with a stale term is refused, and the answer carries the newer term")
    func staleTermRefused() throws {
        let group = try ReplicaGroup(count: 3)
        group.elect(0)
        group.elect(1)  // term 2, replica 1 leads
        let before = group.storages[2].allEntries
        group.replicas[2].step(
            ReplicaGroup.message(from: 0, to: 2, term: 1, .append(
                previousIndex: 1, previousTerm: 1, entries: [RaftEntry(term: 1, index: 2, command: [1])],
                leaderCommit: 1)),
            now: group.now)
        let answers = group.takeMessages()
        #expect(group.storages[2].allEntries == before)
        #expect(answers.count == 1)
        #expect(answers.first?.term == 2)
        #expect(answers.first?.to == ReplicaGroup.id(0))
        #expect(group.replicas[2].counters.staleTermMessages == 1)
    }

    @Test("§5.2: replicas start as followers in term 0")
    func startAsFollower() throws {
        let group = try ReplicaGroup(count: 3)
        for replica in group.replicas {
            #expect(replica.role == .follower)
            #expect(replica.term == 0)
            #expect(replica.leader == nil)
        }
    }

    @Test("§5.2: a leader sends heartbeats to every follower each heartbeat interval")
    func leaderSendsHeartbeats() throws {
        let group = try ReplicaGroup(count: 3)
        group.elect(0)
        group.now = group.now + group.replicas[0].configuration.heartbeatInterval
        group.replicas[0].tick(now: group.now)
        let sent = group.takeMessages()
        #expect(sent.count == 2)
        for message in sent {
            guard case .heartbeat = message.body else {
                Issue.record("expected a heartbeat, got \(message.body)")
                continue
            }
            #expect(message.term == group.replicas[0].term)
        }
        #expect(Set(sent.map(\.to)) == [ReplicaGroup.id(1), ReplicaGroup.id(2)])
    }

    @Test("§5.2: on election timeout a follower (or candidate) increments its term, votes for itself and requests votes from all",
          arguments: [RaftRole.follower, .candidate])
    func timeoutStartsElection(role: RaftRole) throws {
        let group = try ReplicaGroup(count: 3, storages: [
            ReplicaGroup.storage(terms: [1, 2], term: 2), InMemoryRaftStorage(), InMemoryRaftStorage(),
        ])
        if role == .candidate {
            group.timeOut(0)
            _ = group.takeMessages()
        }
        let term = group.replicas[0].term
        group.timeOut(0)
        #expect(group.replicas[0].role == .candidate)
        #expect(group.replicas[0].term == term + 1)
        #expect(group.replicas[0].votedFor == ReplicaGroup.id(0))
        let requests = group.takeMessages()
        #expect(requests.count == 2)
        for request in requests {
            #expect(request.term == term + 1)
            #expect(request.body == .voteRequest(lastLogIndex: 2, lastLogTerm: 2, isPreVote: false))
        }
        #expect(group.storages[0].hardState.votedFor == ReplicaGroup.id(0), "the vote is persisted in the ready")
    }

    @Test("§5.2: a candidate wins with votes from a majority, loses to a majority of refusals, and waits otherwise",
          arguments: [
            // (group size, grants, refusals, outcome); the candidate's own vote is not counted here
            (1, 0, 0, RaftRole.leader), (3, 1, 0, .leader), (3, 0, 1, .candidate), (3, 0, 2, .follower),
            (5, 1, 0, .candidate), (5, 1, 2, .candidate), (5, 2, 0, .leader), (5, 0, 3, .follower),
            (5, 1, 3, .follower),
          ])
    func electionOutcome(size: Int, grants: Int, refusals: Int, expected: RaftRole) throws {
        let group = try ReplicaGroup(count: size)
        group.timeOut(0)
        let term = group.replicas[0].term
        for voter in 1..<size where voter <= grants + refusals {
            let granted = voter <= grants
            group.replicas[0].step(
                ReplicaGroup.message(from: voter, to: 0, term: term, .voteResponse(granted: granted, isPreVote: false)),
                now: group.now)
        }
        #expect(group.replicas[0].role == expected)
        #expect(group.replicas[0].term == term)
    }

    @Test("§5.2: each replica votes for at most one candidate in a term, first come first served",
          arguments: [(nil as UInt64?, 2 as UInt64, true), (nil, 3, true), (2, 2, true), (2, 3, false), (3, 2, false)])
    func oneVotePerTerm(votedFor: UInt64?, candidate: UInt64, granted: Bool) throws {
        let storage = InMemoryRaftStorage()
        try storage.persist([], hardState: RaftHardState(term: 1, votedFor: votedFor.map(NodeID.init)))
        let group = try ReplicaGroup(count: 3, storages: [storage, InMemoryRaftStorage(), InMemoryRaftStorage()])
        let from = ReplicaGroup.index(NodeID(candidate))
        group.replicas[0].step(
            ReplicaGroup.message(from: from, to: 0, term: 1, .voteRequest(lastLogIndex: 0, lastLogTerm: 0, isPreVote: false)),
            now: group.now)
        let answers = group.takeMessages()
        #expect(answers.map(\.body) == [.voteResponse(granted: granted, isPreVote: false)])
        #expect(group.storages[0].hardState.votedFor == (granted ? NodeID(candidate) : votedFor.map(NodeID.init)))
    }

    @Test("§5.2: a candidate that hears from a leader of its term or a later one becomes its follower",
          arguments: [0 as UInt64, 1])
    func candidateFallsBack(extraTerm: UInt64) throws {
        let group = try ReplicaGroup(count: 3)
        group.timeOut(0)
        let term = group.replicas[0].term + extraTerm
        group.replicas[0].step(
            ReplicaGroup.message(from: 1, to: 0, term: term, .append(
                previousIndex: 0, previousTerm: 0, entries: [], leaderCommit: 0)),
            now: group.now)
        #expect(group.replicas[0].role == .follower)
        #expect(group.replicas[0].term == term)
        #expect(group.replicas[0].leader == ReplicaGroup.id(1))
    }

    @Test("§5.2: election timeouts are drawn at random between T and 2T")
    func randomizedTimeouts() throws {
        var deadlines: Set<UInt64> = []
        let base = Instant(nanoseconds: 1_000_000_000)
        let timeout = RaftConfiguration().electionTimeout
        for seed in 0..<100 as Range<UInt64> {
            let replica = try RaftReplica(id: NodeID(1), group: 1, peers: [NodeID(2), NodeID(3)],
                                          storage: InMemoryRaftStorage(), seed: seed, now: base)
            #expect(replica.nextDeadline >= base + timeout)
            #expect(replica.nextDeadline < base + timeout * 2)
            deadlines.insert(replica.nextDeadline.nanoseconds)
        }
        #expect(deadlines.count > 90, "timeouts differ from replica to replica")
    }

    @Test("§5.4.1: a voter refuses a candidate whose log is less up to date than its own",
          arguments: [
            // (candidate last index, candidate last term, granted) against a voter log of terms [1, 2, 2]
            (3 as UInt64, 2 as UInt64, true), (4, 2, true), (2, 2, false), (1, 3, true), (9, 1, false), (0, 0, false),
          ])
    func upToDateCheck(lastIndex: UInt64, lastTerm: UInt64, granted: Bool) throws {
        let group = try ReplicaGroup(count: 3, storages: [
            ReplicaGroup.storage(terms: [1, 2, 2], term: 2), InMemoryRaftStorage(), InMemoryRaftStorage(),
        ])
        group.replicas[0].step(
            ReplicaGroup.message(from: 1, to: 0, term: 3,
                                 .voteRequest(lastLogIndex: lastIndex, lastLogTerm: lastTerm, isPreVote: false)),
            now: group.now)
        #expect(group.takeMessages().map(\.body) == [.voteResponse(granted: granted, isPreVote: false)])
        #expect(group.replicas[0].term == 3)
    }

    /// Rounds in which two or three replicas time out together, so that
    /// candidates often stand in one term, and their messages arrive in a
    /// seeded random order, a random part at a time; every replica that is
    /// leader after a delivery is noted under its term.
    @Test("§5.2: at most one leader is elected per term, though several candidates stand in it")
    func oneLeaderPerTerm() throws {
        var terms = 0
        var contested = 0
        for seed in 1...20 as ClosedRange<UInt64> {
            let group = try ReplicaGroup(count: 5, seed: seed)
            var random = SeededRandomGenerator(seed: seed)
            var leaders: [UInt64: Set<NodeID>] = [:]
            for _ in 0..<10 {
                let standing = Array(group.replicas.indices).shuffled(using: &random).prefix(Int.random(in: 2...3, using: &random))
                let before = standing.map { group.replicas[$0].term }
                for index in standing { group.timeOut(index) }
                if Set(before).count < before.count { contested += 1 }
                var messages = group.takeMessages()
                while !messages.isEmpty {
                    messages.shuffle(using: &random)
                    let count = Int.random(in: 1...messages.count, using: &random)
                    for message in messages.prefix(count) { group.deliver(message) }
                    messages.removeFirst(count)
                    messages += group.takeMessages()
                    for replica in group.replicas where replica.role == .leader {
                        leaders[replica.term, default: []].insert(replica.id)
                    }
                }
            }
            #expect(leaders.values.allSatisfy { $0.count == 1 }, "seed \(seed): leaders by term \(leaders)")
            terms += leaders.count
        }
        // Not a vacuous run: leaders were elected, after contested rounds.
        #expect(terms >= 100 && contested >= 100, "\(terms) terms with a leader, \(contested) contested rounds")
    }
}
