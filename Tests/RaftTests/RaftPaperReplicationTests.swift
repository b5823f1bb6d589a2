import EventCore
import Testing
@testable import Raft

/// Claims of the Raft paper about log replication and commitment (§5.3,
/// §5.4.2, §5.5), each checked on replicas driven by hand.
@Suite("Raft paper: log replication")
struct RaftPaperReplicationTests {
    @Test("§5.3: a leader appends a proposal to its log, persists it, then sends it to every follower")
    func leaderStartsReplication() throws {
        let group = try ReplicaGroup(count: 3)
        group.elect(0)
        let last = group.replicas[0].lastIndex
        let entry = try group.replicas[0].propose(Array("x".utf8))
        #expect(entry == RaftEntryID(term: 1, index: last + 1))
        let ready = group.replicas[0].ready()
        #expect(ready.entries == [RaftEntry(term: 1, index: last + 1, command: Array("x".utf8))])
        #expect(ready.messages.count == 2)
        for message in ready.messages {
            #expect(message.body == .append(previousIndex: last, previousTerm: 1,
                                            entries: ready.entries, leaderCommit: last))
        }
    }

    @Test("§5.3: an entry is committed once the leader has replicated it on a majority, and applied after",
          arguments: [
            (3, [1], true), (3, [], false), (5, [1, 2], true), (5, [1], false), (5, [1, 2, 3, 4], true),
          ])
    func commitByMajority(size: Int, acknowledging: [Int], committed: Bool) throws {
        let group = try ReplicaGroup(count: size)
        group.elect(0)
        let entry = try group.replicas[0].propose(Array("x".utf8))
        let appends = group.takeMessages()
        for message in appends where acknowledging.contains(ReplicaGroup.index(message.to)) {
            group.deliver(message)
        }
        for answer in group.takeMessages() where answer.to == ReplicaGroup.id(0) { group.deliver(answer) }
        group.process(0)
        #expect((group.replicas[0].commitIndex >= entry.index) == committed)
        #expect(group.applied[0].contains { $0.index == entry.index } == committed)
    }

    @Test("§5.3: committing an entry commits every entry before it, earlier leaders' included")
    func commitCoversPrecedingEntries() throws {
        let group = try ReplicaGroup(count: 3, storages: [
            ReplicaGroup.storage(terms: [1, 1, 2], term: 2), ReplicaGroup.storage(terms: [1], term: 2),
            InMemoryRaftStorage(),
        ])
        group.elect(0)
        try group.propose(0, "y")
        #expect(group.replicas[0].commitIndex == 5)
        #expect(group.applied[0].map(\.index) == [1, 2, 3, 4, 5])
        #expect(group.applied[0].map(\.term) == [1, 1, 2, 3, 3])
    }

    @Test("§5.3: a follower learns the commit index from the leader and applies entries in log order")
    func followerCommits() throws {
        let group = try ReplicaGroup(count: 3)
        group.elect(0)
        for command in ["a", "b", "c"] { try group.propose(0, command) }
        // The commit index reaches followers with the next append or heartbeat.
        group.now = group.now + group.replicas[0].configuration.heartbeatInterval
        group.replicas[0].tick(now: group.now)
        group.deliverAll()
        for index in 1..<3 {
            #expect(group.replicas[index].commitIndex == 4)
            #expect(group.applied[index].map(\.command) == [[], Array("a".utf8), Array("b".utf8), Array("c".utf8)])
        }
    }

    @Test("§5.3: a follower refuses an append whose previous entry it lacks, and hints where its log diverges",
          arguments: [
            // previous (index, term) against a follower log of terms [1, 2, 2]
            (0 as UInt64, 0 as UInt64, nil as RaftMessage.AppendResult?),
            (3, 2, nil), (2, 2, nil),
            (3, 3, .rejected(rejectedIndex: 3, conflictTerm: 2, conflictIndex: 2)),
            (5, 2, .rejected(rejectedIndex: 5, conflictTerm: 0, conflictIndex: 4)),
            (1, 2, .rejected(rejectedIndex: 1, conflictTerm: 1, conflictIndex: 1)),
          ])
    func consistencyCheck(previousIndex: UInt64, previousTerm: UInt64, rejection: RaftMessage.AppendResult?) throws {
        let group = try ReplicaGroup(count: 3, storages: [
            ReplicaGroup.storage(terms: [1, 2, 2], term: 3), InMemoryRaftStorage(), InMemoryRaftStorage(),
        ])
        group.replicas[0].step(
            ReplicaGroup.message(from: 1, to: 0, term: 3, .append(
                previousIndex: previousIndex, previousTerm: previousTerm, entries: [], leaderCommit: 0)),
            now: group.now)
        let answers = group.takeMessages()
        let expected = rejection ?? .accepted(matchIndex: previousIndex)
        #expect(answers.map(\.body) == [.appendResponse(expected)])
    }

    @Test("§5.3: a follower deletes a conflicting entry and all that follow it, and appends the leader's",
          arguments: [
            // (previous index, previous term, new entry terms, resulting log terms) on a follower log [1, 2, 2]
            (2 as UInt64, 2 as UInt64, [3 as UInt64], [1 as UInt64, 2, 3]),
            (1, 1, [3, 3], [1, 3, 3]),
            (0, 0, [1, 2, 2, 3], [1, 2, 2, 3]),
            (3, 2, [3], [1, 2, 2, 3]),
            (1, 1, [2], [1, 2, 2]),  // a stale, shorter append truncates nothing
          ])
    func conflictingSuffixReplaced(previousIndex: UInt64, previousTerm: UInt64, terms: [UInt64], result: [UInt64]) throws {
        let group = try ReplicaGroup(count: 3, storages: [
            ReplicaGroup.storage(terms: [1, 2, 2], term: 3), InMemoryRaftStorage(), InMemoryRaftStorage(),
        ])
        let entries = terms.enumerated().map { offset, term in
            RaftEntry(term: term, index: previousIndex + UInt64(offset) + 1, command: [UInt8(term)])
        }
        group.replicas[0].step(
            ReplicaGroup.message(from: 1, to: 0, term: 3, .append(
                previousIndex: previousIndex, previousTerm: previousTerm, entries: entries, leaderCommit: 0)),
            now: group.now)
        group.process(0)
        #expect(group.storages[0].allEntries.map(\.term) == result)
    }

    @Test("§5.3, Figure 7: a new leader brings any follower's log to its own, in a few round trips",
          arguments: [
            [1, 1, 1, 4, 4, 5, 5, 6, 6] as [UInt64],          // (a)
            [1, 1, 1, 4],                                      // (b)
            [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],                 // (c)
            [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],              // (d)
            [1, 1, 1, 4, 4, 4, 4],                             // (e)
            [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],                 // (f)
          ])
    func leaderSyncsFollower(followerTerms: [UInt64]) throws {
        let leaderTerms: [UInt64] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
        let group = try ReplicaGroup(count: 3, storages: [
            ReplicaGroup.storage(terms: leaderTerms, term: 7),
            ReplicaGroup.storage(terms: followerTerms, term: followerTerms.last ?? 0),
            InMemoryRaftStorage(),
        ])
        group.elect(0)
        #expect(group.replicas[0].role == .leader)
        #expect(group.replicas[0].term == 8)
        try group.propose(0, "z")
        let leaderLog = group.storages[0].allEntries
        #expect(leaderLog.map(\.term) == leaderTerms + [8, 8])
        #expect(group.storages[1].allEntries == leaderLog)
        #expect(group.storages[2].allEntries == leaderLog)
        // Fast backtracking: one rejection per conflicting term at most,
        // where one per entry would be needed without it.
        #expect(group.replicas[1].counters.appendsRejected <= 3)
    }

    @Test("§5.4.2: a leader does not commit an earlier term's entry by counting replicas, only through one of its own term")
    func onlyCurrentTermCommitsByCounting() throws {
        let group = try ReplicaGroup(count: 3, storages: [
            ReplicaGroup.storage(terms: [1, 2], term: 2), InMemoryRaftStorage(), InMemoryRaftStorage(),
        ])
        // Replica 0 wins term 3 (log [1, 2, 3 (no-op)]); its appends are lost.
        group.timeOut(0)
        for request in group.takeMessages() { group.deliver(request) }
        for vote in group.takeMessages() { group.deliver(vote) }
        _ = group.takeMessages()
        #expect(group.replicas[0].role == .leader)
        #expect(group.replicas[0].term == 3)
        let leader = group.replicas[0]
        // Follower 1 acknowledges the entries of earlier terms only.
        for acknowledged in [1, 2] as [UInt64] {
            group.replicas[0] = leader
            group.replicas[0].step(
                ReplicaGroup.message(from: 1, to: 0, term: 3, .appendResponse(.accepted(matchIndex: acknowledged))),
                now: group.now)
            #expect(group.replicas[0].commitIndex == 0, "index \(acknowledged) is of term \(acknowledged) < 3")
        }
        group.replicas[0].step(
            ReplicaGroup.message(from: 1, to: 0, term: 3, .appendResponse(.accepted(matchIndex: 3))), now: group.now)
        #expect(group.replicas[0].commitIndex == 3)
    }

    @Test("§5.5: AppendEntries is idempotent: a duplicate changes nothing and is acknowledged again")
    func appendIsIdempotent() throws {
        let group = try ReplicaGroup(count: 3)
        let append = ReplicaGroup.message(from: 1, to: 0, term: 1, .append(
            previousIndex: 0, previousTerm: 0,
            entries: [RaftEntry(term: 1, index: 1, command: [1]), RaftEntry(term: 1, index: 2, command: [2])],
            leaderCommit: 1))
        group.replicas[0].step(append, now: group.now)
        let first = group.takeMessages()
        let log = group.storages[0].allEntries
        group.replicas[0].step(append, now: group.now)
        let second = group.takeMessages()
        #expect(group.storages[0].allEntries == log)
        #expect(first.map(\.body) == [.appendResponse(.accepted(matchIndex: 2))])
        // The duplicate is acknowledged too (up to what is committed, which
        // is all a leader needs from an append older than the commit).
        #expect(second.map(\.body) == [.appendResponse(.accepted(matchIndex: 1))])
        #expect(group.applied[0].map(\.index) == [1], "the committed entry was applied once")
    }

    @Test("§5.3: committed entries are handed out for applying in log order, each exactly once")
    func appliedOnceInOrder() throws {
        let group = try ReplicaGroup(count: 3)
        group.elect(0)
        for round in 0..<20 {
            try group.propose(0, "c\(round)")
            if round % 5 == 0 {
                group.now = group.now + group.replicas[0].configuration.heartbeatInterval
                group.replicas[0].tick(now: group.now)
                group.deliverAll()
            }
        }
        group.now = group.now + group.replicas[0].configuration.heartbeatInterval
        group.replicas[0].tick(now: group.now)
        group.deliverAll()
        for index in 0..<3 {
            #expect(group.applied[index].map(\.index) == Array(1...21))
        }
    }
}
