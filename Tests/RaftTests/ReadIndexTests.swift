import EventCore
import Raft
import Simulation
import Testing

/// ReadIndex (Raft dissertation §6.4) on the sans-IO replica: a read is
/// confirmed only by a majority's answers to a heartbeat round started
/// after it, at the commit index, once the leader has committed an entry
/// of its own term.
@Suite("ReadIndex (replica)")
struct ReadIndexTests {
    /// The heartbeats among `messages`, with their read rounds.
    static func heartbeats(_ messages: [RaftMessage]) -> [(to: NodeID, round: UInt64)] {
        messages.compactMap { message in
            if case .heartbeat(_, let round) = message.body { (message.to, round) } else { nil }
        }
    }

    /// Delivers `messages` and then, once, the answers they draw (only
    /// those: nothing the answers cause is delivered).
    static func deliverAndAnswer(_ messages: [RaftMessage], in group: ReplicaGroup) {
        for message in messages { group.deliver(message) }
        for answer in group.takeMessages() { group.deliver(answer) }
        group.processAll()
    }

    @Test("§6.4: a read is confirmed, at the commit index, once a majority answers the heartbeat round it started; reads between two readies share one round")
    func confirmedByMajority() throws {
        let group = try ReplicaGroup(count: 5)
        group.elect(0)
        try group.propose(0, "a")
        let commit = group.replicas[0].commitIndex
        #expect(commit == group.replicas[0].lastIndex)

        try group.replicas[0].readIndex(1)
        try group.replicas[0].readIndex(2)
        let sent = group.takeMessages()
        let rounds = Self.heartbeats(sent)
        #expect(rounds.count == 4 && rounds.allSatisfy { $0.round == 1 }, "one round, a heartbeat a peer: \(rounds)")
        #expect(group.confirmedReads[0].isEmpty)

        // One answer: the leader and one follower are 2 of 5.
        Self.deliverAndAnswer(sent.filter { $0.to == ReplicaGroup.id(1) }, in: group)
        #expect(group.confirmedReads[0].isEmpty)
        // A second: 3 of 5.
        Self.deliverAndAnswer(sent.filter { $0.to == ReplicaGroup.id(2) }, in: group)
        #expect(group.confirmedReads[0].map(\.id) == [1, 2])
        #expect(group.confirmedReads[0].allSatisfy { $0.index == commit })
        // The other answers confirm nothing more.
        Self.deliverAndAnswer(sent.filter { $0.to.rawValue > 3 }, in: group)
        #expect(group.confirmedReads[0].count == 2)
        #expect(group.applied[0].count == 2, "no entry appended for the reads (the no-op and a)")
    }

    @Test("§6.4: answers to heartbeats sent before the read do not confirm it")
    func earlierHeartbeatsDoNotConfirm() throws {
        let group = try ReplicaGroup(count: 3)
        group.elect(0)
        // A periodic heartbeat, sent before the read, answered after it.
        group.now = group.replicas[0].nextDeadline
        group.replicas[0].tick(now: group.now)
        let periodic = group.takeMessages()
        #expect(Self.heartbeats(periodic).map(\.round) == [0, 0])
        try group.replicas[0].readIndex(7)
        let round = group.takeMessages()
        Self.deliverAndAnswer(periodic, in: group)
        #expect(group.confirmedReads[0].isEmpty)
        Self.deliverAndAnswer(round, in: group)
        #expect(group.confirmedReads[0].map(\.id) == [7])
    }

    @Test("§6.4: a new leader confirms no read before it has committed an entry of its term")
    func waitsForCommitInTerm() throws {
        let group = try ReplicaGroup(count: 3)
        group.elect(0)
        try group.propose(0, "a")
        // Replica 1 wins term 2 with replica 2's vote; its no-op is not
        // delivered yet.
        group.timeOut(1)
        for message in group.takeMessages() { group.deliver(message) }  // vote requests
        for message in group.takeMessages() { group.deliver(message) }  // votes
        #expect(group.replicas[1].role == .leader)
        let appends = group.takeMessages()
        try group.replicas[1].readIndex(1)
        let round = group.takeMessages()
        Self.deliverAndAnswer(round, in: group)
        #expect(group.confirmedReads[1].isEmpty, "a majority answered, but nothing of term 2 is committed")

        for message in appends { group.deliver(message) }
        group.deliverAll()
        #expect(group.replicas[1].commitIndex == group.replicas[1].lastIndex)
        #expect(group.confirmedReads[1].map(\.id) == [1])
        #expect(group.confirmedReads[1].first?.index == group.replicas[1].lastIndex, "the new leader's no-op")
    }

    @Test("§6.4: a deposed leader drops its unconfirmed reads; an answer naming a round it never sent is dropped")
    func deposedLeader() throws {
        let group = try ReplicaGroup(count: 3)
        group.elect(0)
        let term = group.replicas[0].term
        try group.replicas[0].readIndex(1)
        let round = group.takeMessages()

        // A forged answer for a round still to come.
        let dropped = group.replicas[0].counters.messagesDropped
        group.deliver(ReplicaGroup.message(from: 1, to: 0, term: term, .heartbeatResponse(readRound: 2)))
        group.deliver(ReplicaGroup.message(from: 2, to: 0, term: term, .heartbeatResponse(readRound: 2)))
        group.processAll()
        #expect(group.replicas[0].counters.messagesDropped == dropped + 2)
        #expect(group.confirmedReads[0].isEmpty)

        // Replica 2 is elected; the old leader hears of the new term first.
        group.isolated = [0]
        group.elect(2)
        group.isolated = []
        group.deliver(ReplicaGroup.message(
            from: 2, to: 0, term: group.replicas[2].term, .heartbeat(commitIndex: 0, readRound: 0)))
        #expect(group.replicas[0].role == .follower)
        // The old round's answers now arrive: from an older term, nothing.
        Self.deliverAndAnswer(round, in: group)
        group.deliverAll()
        #expect(group.confirmedReads[0].isEmpty)
        #expect(throws: RaftError.notLeader(leaderHint: ReplicaGroup.id(2))) { try group.replicas[0].readIndex(2) }
    }

    @Test("a group of one confirms a read in the ready that follows it")
    func groupOfOne() throws {
        let group = try ReplicaGroup(count: 1)
        group.elect(0)
        #expect(group.replicas[0].role == .leader)
        try group.replicas[0].readIndex(5)
        group.processAll()
        #expect(group.confirmedReads[0].map(\.id) == [5])
        #expect(group.confirmedReads[0].map(\.index) == [group.replicas[0].commitIndex])
    }

    @Test("RaftNode.read: a leader cut off from its group serves no stale read; it fails with .notLeader once the leader knows; the new leader's read sees the new write", arguments: [41, 42, 43] as [UInt64])
    func cutOffLeader(seed: UInt64) throws {
        let cluster = try RaftCluster(count: 3, seed: seed, makeStateMachine: { KeyValueStateMachine() })
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        let old = try #require(cluster.leader)
        cluster.propose(KeyValueCommand.put(key: "k", value: [1]).encoded, at: old)
        #expect(cluster.run(until: { cluster.acknowledged.count == 1 }, limit: .seconds(2)))

        let others = cluster.simulatedNodes.indices.filter { $0 != old }
        cluster.network.partition([cluster.simulatedNodes[old]], others.map { cluster.simulatedNodes[$0] })
        #expect(cluster.run(until: { others.contains { cluster.rafts[$0]?.role == .leader } }, limit: .seconds(5)))
        let new = try #require(others.first { cluster.rafts[$0]?.role == .leader })
        cluster.propose(KeyValueCommand.put(key: "k", value: [2]).encoded, at: new)
        #expect(cluster.run(until: { cluster.acknowledged.count == 2 }, limit: .seconds(2)))

        // The old leader may still believe it leads (CheckQuorum has not
        // told it yet): its read must wait, and then fail.
        let stale = try #require(cluster.stateMachines[old] as? KeyValueStateMachine)
        var outcome: Result<[UInt8]?, RaftError>?
        cluster.rafts[old]!.read { result in outcome = result.map { stale.values["k"] } }
        let fresh = try #require(cluster.stateMachines[new] as? KeyValueStateMachine)
        var seen: [UInt8]??
        cluster.rafts[new]!.read { result in if case .success = result { seen = fresh.values["k"] } }
        cluster.run(for: .seconds(3))
        #expect(seen == .some([2]))
        switch outcome {
        case .failure(.notLeader)?: break
        default: Issue.record("the cut-off leader's read ended \(String(describing: outcome))")
        }
        #expect(cluster.rafts[old]!.pendingReadCount == 0)
    }

    @Test("RaftNode.read on a follower is forwarded: it sees a write acknowledged just before, at the leader, once it has applied the leader's index")
    func forwardedFromFollower() throws {
        let cluster = try RaftCluster(count: 3, seed: 45, makeStateMachine: { KeyValueStateMachine() })
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        let leader = try #require(cluster.leader)
        for (round, follower) in [(leader + 1) % 3, (leader + 2) % 3].enumerated() {
            cluster.propose(KeyValueCommand.put(key: "k", value: [UInt8(round)]).encoded, at: leader)
            #expect(cluster.run(until: { cluster.acknowledged.count == round + 1 }, limit: .seconds(2)))
            // Acknowledged at the leader: the follower may not have it yet.
            let map = try #require(cluster.stateMachines[follower] as? KeyValueStateMachine)
            var seen: Result<[UInt8]?, RaftError>?
            cluster.rafts[follower]!.read { result in seen = result.map { map.values["k"] } }
            #expect(cluster.run(until: { seen != nil }, limit: .seconds(2)))
            #expect(try seen?.get() == [UInt8(round)], "follower \(follower)")
        }
        #expect(cluster.rafts.allSatisfy { $0?.pendingReadCount == 0 })
    }

    @Test("a forwarded read on a follower that missed a write waits until it has applied the leader's index", arguments: [47, 48, 49] as [UInt64])
    func forwardedToLaggingFollower(seed: UInt64) throws {
        let cluster = try RaftCluster(count: 3, seed: seed, makeStateMachine: { KeyValueStateMachine() })
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        let leader = try #require(cluster.leader)
        cluster.run(for: .milliseconds(200))
        let lagging = (leader + 1) % 3
        // The write commits on the other two; the lagging follower hears
        // nothing of it.
        cluster.network.block(from: cluster.simulatedNodes[leader], to: cluster.simulatedNodes[lagging])
        cluster.propose(KeyValueCommand.put(key: "k", value: [7]).encoded, at: leader)
        #expect(cluster.run(until: { cluster.acknowledged.count == 1 }, limit: .seconds(2)))
        let map = try #require(cluster.stateMachines[lagging] as? KeyValueStateMachine)
        #expect(map.values["k"] == nil)
        cluster.network.unblock(from: cluster.simulatedNodes[leader], to: cluster.simulatedNodes[lagging])
        var seen: Result<[UInt8]?, RaftError>?
        cluster.rafts[lagging]!.read { result in seen = result.map { map.values["k"] } }
        #expect(cluster.run(until: { seen != nil }, limit: .seconds(2)))
        #expect(try seen?.get() == [7])
    }

    @Test("a forwarded read that the leader does not answer fails with .notLeader after the forward timeout")
    func forwardedUnanswered() throws {
        let cluster = try RaftCluster(count: 3, seed: 46, makeStateMachine: { KeyValueStateMachine() })
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        let leader = try #require(cluster.leader)
        cluster.run(for: .milliseconds(200))
        let follower = (leader + 1) % 3
        // Its requests are lost; the leader's heartbeats still arrive.
        cluster.network.block(from: cluster.simulatedNodes[follower], to: cluster.simulatedNodes[leader])
        var outcome: Result<Void, RaftError>?
        let asked = cluster.network.now
        cluster.rafts[follower]!.read { outcome = $0 }
        #expect(cluster.run(until: { outcome != nil }, limit: .seconds(5)))
        guard case .failure(.notLeader)? = outcome else {
            Issue.record("the unanswered read ended \(String(describing: outcome))")
            return
        }
        #expect(cluster.network.now - asked >= cluster.rafts[follower]!.configuration.forwardTimeout)
    }

    @Test("RaftNode.read without forwarding fails at once on a follower with .notLeader and the leader's hint; a stopped node's pending reads fail with .stopped")
    func followerAndStop() throws {
        var configuration = RaftConfiguration()
        configuration.forwardProposals = false
        let cluster = try RaftCluster(
            count: 3, seed: 44, configuration: configuration, makeStateMachine: { KeyValueStateMachine() })
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        let leader = try #require(cluster.leader)
        cluster.run(for: .milliseconds(200))
        let follower = (leader + 1) % 3
        var refusal: Result<Void, RaftError>?
        cluster.rafts[follower]!.read { refusal = $0 }
        guard case .failure(.notLeader(let hint))? = refusal else {
            Issue.record("a follower's read ended \(String(describing: refusal))")
            return
        }
        #expect(hint == RaftCluster.id(leader))

        var ended: Result<Void, RaftError>?
        cluster.rafts[leader]!.read { ended = $0 }
        cluster.rafts[leader]!.stop()
        #expect(ended.map { if case .failure(.stopped) = $0 { true } else { false } } == true)
        var afterStop: Result<Void, RaftError>?
        cluster.rafts[leader]!.read { afterStop = $0 }
        #expect(afterStop.map { if case .failure(.stopped) = $0 { true } else { false } } == true)
    }
}
