import EventCore
import Simulation
import Testing
import WireCodec

@testable import Raft

/// Membership changes, one member at a time (Raft dissertation §4.1): in
/// the simulator under a steady load of proposals, with ``RaftCluster``'s
/// invariants (one leader a term, log matching, no acknowledged command
/// lost) checked throughout; at the replica (a change cut from the log);
/// and their encodings.
@Suite("Raft: membership changes")
struct MembershipChangeTests {
    /// Proposes at a live node every 2 ms (followers forward to the
    /// leader) while `cluster` runs for `duration`.
    static func runWithLoad(_ cluster: RaftCluster, for duration: Duration, next: inout Int) {
        let end = cluster.network.now + duration
        while cluster.network.now < end {
            let live = cluster.live
            if !live.isEmpty {
                cluster.propose(at: live[next % live.count], prefix: "load")
                next += 1
            }
            cluster.run(for: .milliseconds(2))
        }
    }

    /// Asks the leader for `change` until it succeeds, under load: a
    /// refusal while an earlier change or the leader's first entry is
    /// uncommitted, or for want of a leader, is retried 50 ms later.
    static func change(
        _ change: RaftMembershipChange, in cluster: RaftCluster, next: inout Int
    ) -> Result<Void, RaftError>? {
        for _ in 0..<60 {
            guard let leader = cluster.leader, let raft = cluster.rafts[leader] else {
                runWithLoad(cluster, for: .milliseconds(50), next: &next)
                continue
            }
            var outcome: Result<Void, RaftError>?
            raft.changeMembership(change) { outcome = $0 }
            let end = cluster.network.now + .seconds(3)
            while outcome == nil && cluster.network.now < end { runWithLoad(cluster, for: .milliseconds(10), next: &next) }
            switch outcome {
            case .failure(.membershipChangePending), .failure(.notLeader), .failure(.proposalDropped):
                runWithLoad(cluster, for: .milliseconds(50), next: &next)
            default:
                return outcome
            }
        }
        return nil
    }

    static func endpoint(_ cluster: RaftCluster, _ index: Int) -> Endpoint { cluster.simulatedNodes[index].localEndpoint }

    @Test("a group grows from 3 to 5 and shrinks to 3 under load, its leader removed on the way; nothing acknowledged is lost",
          arguments: [UInt64(41), 42, 43, 44])
    func growAndShrink(seed: UInt64) throws {
        let cluster = try RaftCluster(
            count: 5, seed: seed, link: LinkConditions(lossProbability: 0.01), initialMembers: 3)
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        var next = 0
        Self.runWithLoad(cluster, for: .milliseconds(200), next: &next)
        for joiner in [3, 4] {
            try cluster.start(joiner)
            #expect(cluster.rafts[joiner]?.membership.contains(RaftCluster.id(joiner)) == false)
            let added = Self.change(.add(RaftCluster.id(joiner), endpoint: Self.endpoint(cluster, joiner)), in: cluster, next: &next)
            #expect(added.map { (try? $0.get()) != nil } == true, "adding node \(joiner + 1): \(String(describing: added))")
        }
        Self.runWithLoad(cluster, for: .milliseconds(300), next: &next)
        #expect(cluster.rafts[3]?.membership.count == 5)

        // Remove the leader, then one more of the first members.
        let oldLeader = try #require(cluster.leader)
        let removed = Self.change(.remove(RaftCluster.id(oldLeader)), in: cluster, next: &next)
        #expect(removed.map { (try? $0.get()) != nil } == true, "removing the leader: \(String(describing: removed))")
        #expect(cluster.run(until: { cluster.leader != nil && cluster.leader != oldLeader }, limit: .seconds(5)))
        #expect(cluster.rafts[oldLeader]?.counters.stepDownsOnRemoval == 1)
        #expect(cluster.rafts[oldLeader]?.isMemberNow == false)
        cluster.crash(oldLeader)
        let another = try #require((0..<3).first { $0 != oldLeader && $0 != cluster.leader })
        let removedAgain = Self.change(.remove(RaftCluster.id(another)), in: cluster, next: &next)
        #expect(removedAgain.map { (try? $0.get()) != nil } == true)
        cluster.crash(another)
        Self.runWithLoad(cluster, for: .milliseconds(500), next: &next)

        #expect(cluster.run(until: { cluster.converged }, limit: .seconds(10)))
        let expected = Set((0..<5).filter { $0 != oldLeader && $0 != another }.map(RaftCluster.id))
        for index in cluster.live {
            #expect(Set(cluster.rafts[index]?.membership.ids ?? []) == expected, "node \(index + 1)")
        }
        #expect(cluster.acknowledged.count > 500)
        #expect(cluster.lostAcknowledgements().isEmpty)
        cluster.checkLogMatching()
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    /// The key-value store's clients and faults of
    /// ``KeyValueLinearizabilityTests`` (loss, duplication, reordering,
    /// partitions, crash-restarts, file storage with snapshots), while the
    /// group changes: 3 first members of 5 nodes; the 4th and 5th are
    /// started joining and added (the 4th as a learner first, then
    /// promoted), then two of the first three removed
    /// (each removed node is stopped once its removal completes). A change
    /// is asked of the leader every 100 ms (``MembershipPlan``); after the
    /// faults stop (links healed, every node up), the plan must finish
    /// within 2.5 s of more writes.
    @Test("40 seeds of faults while the group grows from 3 to 5 (a learner promoted) and shrinks to 3: every history is linearizable",
          arguments: UInt64(4_001)...4_040)
    func linearizableAcrossChanges(seed: UInt64) throws {
        let cluster = try RaftCluster(
            count: 5, seed: seed, link: RaftSimulationTests.faultyLink, initialMembers: 3,
            configuration: KeyValueLinearizabilityTests.snapshotting, fileStorage: KeyValueLinearizabilityTests.fileStorage,
            makeStateMachine: { KeyValueStateMachine() })
        var nemesis = Nemesis(cluster: cluster, seed: seed ^ 0x11E4)
        var random = SeededRandomGenerator(seed: seed)
        let history = KeyValueLinearizabilityTests.History()
        let firstRemoved = Int.random(in: 0..<3, using: &random)
        let plan = MembershipPlan(cluster: cluster, changes: [
            .addLearner(RaftCluster.id(3), endpoint: Self.endpoint(cluster, 3)),
            .promote(RaftCluster.id(3)),
            .add(RaftCluster.id(4), endpoint: Self.endpoint(cluster, 4)),
            .remove(RaftCluster.id(firstRemoved)),
            .remove(RaftCluster.id((firstRemoved + 1) % 3)),
        ])
        try cluster.start(3)
        try cluster.start(4)
        var operation = 0
        for _ in 0..<10 {  // 5 s of simulated time
            try nemesis.strike()
            for step in 0..<25 {
                if step % 5 == 0 { plan.advance() }
                operation += 1
                let (key, command, input) = KeyValueLinearizabilityTests.randomOperation(
                    operation, seed: seed, using: &random)
                if let target = nemesis.target() {
                    KeyValueLinearizabilityTests.propose(
                        command, input, key: key, client: operation % 8, at: target, in: cluster, history: history)
                }
                cluster.run(for: .milliseconds(20))
            }
        }
        try nemesis.stop()
        // Healed, with every node up: the plan goes on, and more writes.
        for _ in 0..<25 {
            plan.advance()
            operation += 1
            let key = "k\(Int.random(in: 0..<3, using: &random))"
            let value = Array("s\(seed)-\(operation)".utf8)
            if let target = nemesis.target() {
                KeyValueLinearizabilityTests.propose(
                    .put(key: key, value: value), .put(value), key: key, client: operation % 8, at: target, in: cluster,
                    history: history)
            }
            cluster.run(for: .milliseconds(100))
        }
        cluster.run(for: .seconds(5))
        KeyValueLinearizabilityTests.checkOutcome(of: cluster, history, seed: seed)
        #expect(plan.made == 5, "seed \(seed): \(plan.made) of 5 changes made")
    }

    @Test("a member added past the compacted log catches up from a snapshot carrying the membership; restarts keep it")
    func joinFromSnapshotAndRestart() throws {
        var configuration = RaftConfiguration()
        configuration.snapshotInterval = 20
        configuration.entriesKeptAfterSnapshot = 5
        let cluster = try RaftCluster(
            count: 4, seed: 45, initialMembers: 3, configuration: configuration,
            fileStorage: FileRaftStorage.Options(segmentSize: 4_096, sync: false))
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        var next = 0
        Self.runWithLoad(cluster, for: .milliseconds(300), next: &next)
        try cluster.start(3)
        let added = Self.change(.add(RaftCluster.id(3), endpoint: Self.endpoint(cluster, 3)), in: cluster, next: &next)
        #expect(added.map { (try? $0.get()) != nil } == true)
        // Enough load for snapshots past the change on every member.
        Self.runWithLoad(cluster, for: .milliseconds(300), next: &next)
        #expect(cluster.run(until: { cluster.converged }, limit: .seconds(5)))
        #expect(cluster.restores >= 1, "the new member installed a snapshot: \(String(describing: cluster.rafts[3]?.counters)) \(cluster.rafts.map { $0?.snapshotIndex }) acks \(cluster.acknowledged.count)")
        for index in cluster.indices {
            #expect(cluster.rafts[index]?.membership.count == 4, "node \(index + 1)")
            #expect((cluster.rafts[index]?.snapshotIndex ?? 0) > 0)
        }
        // Every node restarts from its files (the change is in its
        // snapshot, compacted out of its log): still four members, and
        // the group still commits with the new member's vote counted.
        for index in cluster.indices { cluster.crash(index) }
        for index in cluster.indices { try cluster.restart(index) }
        for index in cluster.indices {
            #expect(cluster.rafts[index]?.membership.count == 4, "node \(index + 1) after its restart")
            #expect(cluster.rafts[index]?.isMemberNow == true)
        }
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        cluster.crash(0)
        cluster.crash(1)
        Self.runWithLoad(cluster, for: .seconds(1), next: &next)
        #expect(cluster.leader == nil, "2 of 4 members are no majority")
        try cluster.restart(1)
        let before = cluster.acknowledged.count
        Self.runWithLoad(cluster, for: .seconds(2), next: &next)
        #expect(cluster.acknowledged.count > before)
        #expect(cluster.lostAcknowledgements().isEmpty)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("a learner is sent the log but not counted: with one voter down the group commits without it; promoted, it counts")
    func learnerThenPromoted() throws {
        let cluster = try RaftCluster(count: 4, seed: 47, initialMembers: 3)
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        var next = 0
        Self.runWithLoad(cluster, for: .milliseconds(200), next: &next)
        try cluster.start(3)
        let learner = RaftCluster.id(3)
        let added = Self.change(.addLearner(learner, endpoint: Self.endpoint(cluster, 3)), in: cluster, next: &next)
        #expect(added.map { (try? $0.get()) != nil } == true)
        Self.runWithLoad(cluster, for: .milliseconds(300), next: &next)
        let leader = try #require(cluster.leader)
        let progress = try #require(cluster.rafts[leader]?.replicationProgress(of: learner))
        #expect(progress.match + 20 >= (cluster.rafts[leader]?.lastIndex ?? 0), "the learner keeps up")
        #expect(cluster.rafts[3]?.membership.learnerIDs == [learner] && cluster.rafts[3]?.isMemberNow == false)
        // A learner hears from the leader as a voter does: refused, it
        // names the leader, so its node forwards proposals and reads there.
        let learnerNode = try #require(cluster.rafts[3])
        var forwarded: Result<[UInt8], RaftError>?
        learnerNode.propose(Array("at the learner".utf8)) { forwarded = $0 }
        var read: Result<Void, RaftError>?
        learnerNode.read { read = $0 }
        #expect(cluster.run(until: { forwarded != nil && read != nil }, limit: .seconds(2)))
        #expect((try? forwarded?.get()) != nil, "\(String(describing: forwarded))")
        #expect((try? read?.get()) != nil, "\(String(describing: read))")
        #expect(learnerNode.counters.proposalsForwarded >= 1)

        // One voter down: the two others are a majority of three voters;
        // the learner is no fourth voter, so nothing waits for it.
        let voterDown = (0..<3).first { $0 != leader }!
        cluster.crash(voterDown)
        cluster.network.partition([cluster.simulatedNodes[3]], cluster.indices.filter { $0 != 3 }.map { cluster.simulatedNodes[$0] })
        let before = cluster.acknowledged.count
        Self.runWithLoad(cluster, for: .milliseconds(500), next: &next)
        #expect(cluster.acknowledged.count > before + 100, "committed by 2 of 3 voters")
        #expect(cluster.rafts[3]?.counters.preVotesStarted == 0 && cluster.rafts[3]?.counters.electionsStarted == 0,
                "a learner cut off never campaigns")
        cluster.network.heal()
        try cluster.restart(voterDown)
        Self.runWithLoad(cluster, for: .milliseconds(300), next: &next)
        // Both other voters down: the leader and the learner are no
        // majority, nothing commits.
        let leaderNow = try #require(cluster.leader)
        let others = (0..<3).filter { $0 != leaderNow }
        for index in others { cluster.crash(index) }
        cluster.run(for: .milliseconds(50))
        let stalled = cluster.acknowledged.count
        Self.runWithLoad(cluster, for: .milliseconds(500), next: &next)
        #expect(cluster.acknowledged.count == stalled, "a learner counted toward a majority")
        for index in others { try cluster.restart(index) }
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        Self.runWithLoad(cluster, for: .milliseconds(300), next: &next)

        let promoted = Self.change(.promote(learner), in: cluster, next: &next)
        #expect(promoted.map { (try? $0.get()) != nil } == true)
        #expect(cluster.run(until: { cluster.converged }, limit: .seconds(5)))
        for index in cluster.indices {
            #expect(cluster.rafts[index]?.membership.count == 4, "node \(index + 1)")
            #expect(cluster.rafts[index]?.membership.learners.isEmpty == true)
        }
        // Now a fourth voter: with two of four down there is no majority.
        let twoDown = Array(cluster.indices.filter { $0 != 3 }.prefix(2))
        for index in twoDown { cluster.crash(index) }
        Self.runWithLoad(cluster, for: .seconds(1), next: &next)
        #expect(cluster.leader == nil, "2 of 4 voters are no majority")
        #expect(cluster.lostAcknowledgements().isEmpty)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("a removed learner, which hears from no leader, has its forwarded proposals and reads refused by the leader, not left waiting; the old leader, a follower now, refuses it as any follower does; silent for an election timeout, its leader is forgotten and it forwards nothing")
    func removedLearnerRefused() throws {
        let cluster = try RaftCluster(count: 4, seed: 48, initialMembers: 3)
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        var next = 0
        try cluster.start(3)
        let learner = RaftCluster.id(3)
        let added = Self.change(.addLearner(learner, endpoint: Self.endpoint(cluster, 3)), in: cluster, next: &next)
        #expect(added.map { (try? $0.get()) != nil } == true)
        Self.runWithLoad(cluster, for: .milliseconds(300), next: &next)
        let removed = Self.change(.remove(learner), in: cluster, next: &next)
        #expect(removed.map { (try? $0.get()) != nil } == true)
        let node = try #require(cluster.rafts[3])
        let leader = try #require(cluster.leader)
        // Within an election timeout of the leader's last word, it still
        // names that leader: it never learned its removal (the leader
        // stopped sending to it at once), so it forwards both, and the
        // leader refuses them.
        #expect(node.leader == RaftCluster.id(leader))
        let refusedBefore = cluster.rafts[leader]?.counters.outsiderForwardsRefused ?? 0
        var proposed: Result<[UInt8], RaftError>?
        node.propose(Array("from outside".utf8)) { proposed = $0 }
        var read: Result<Void, RaftError>?
        node.read { read = $0 }
        #expect(cluster.run(until: { proposed != nil && read != nil }, limit: .milliseconds(50)))
        guard case .failure(.notLeader)? = proposed, case .failure(.notLeader)? = read else {
            Issue.record("proposal \(String(describing: proposed)), read \(String(describing: read))")
            return
        }
        #expect(cluster.rafts[leader]?.counters.outsiderForwardsRefused == refusedBefore + 2)

        // Leadership moves on; the removed node, which hears from no one,
        // still forwards to the old leader, now a follower: it refuses as
        // any follower does, naming the new leader, and counts no outsider.
        let target = try #require((0..<3).first { $0 != leader })
        try #require(cluster.rafts[leader]).transferLeadership(to: RaftCluster.id(target))
        #expect(cluster.run(until: { cluster.leader == target }, limit: .milliseconds(100)))
        #expect(node.leader == RaftCluster.id(leader))
        let refusedByOldLeader = cluster.rafts[leader]?.counters.outsiderForwardsRefused
        var again: Result<[UInt8], RaftError>?
        node.propose(Array("from outside, again".utf8)) { again = $0 }
        #expect(cluster.run(until: { again != nil }, limit: .milliseconds(50)))
        #expect(again.map { if case .failure(.notLeader(RaftCluster.id(target))) = $0 { true } else { false } } == true,
                "\(String(describing: again))")
        #expect(cluster.rafts[leader]?.counters.outsiderForwardsRefused == refusedByOldLeader)

        // An election timeout without word: it names no leader, and
        // refuses at once, forwarding nothing.
        Self.runWithLoad(cluster, for: cluster.configurations[3].electionTimeout * 2, next: &next)
        #expect(node.leader == nil)
        let forwarded = node.counters.proposalsForwarded
        var last: Result<[UInt8], RaftError>?
        node.propose(Array("from outside, last".utf8)) { last = $0 }
        #expect(last.map { if case .failure(.notLeader(nil)) = $0 { true } else { false } } == true,
                "\(String(describing: last))")
        #expect(node.counters.proposalsForwarded == forwarded)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("refusals: a change pending, a leader's first entry uncommitted, invalid changes, no endpoint; a follower forwards changes (or, without forwarding, refuses them)")
    func refusals() throws {
        let cluster = try RaftCluster(count: 4, seed: 46, initialMembers: 3)
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        cluster.run(for: .milliseconds(200))
        let leader = try #require(cluster.leader)
        let raft = try #require(cluster.rafts[leader])
        let follower = try #require(cluster.rafts[(leader + 1) % 3])
        var outcomes: [Result<Void, RaftError>] = []
        raft.changeMembership(.add(RaftCluster.id(3), endpoint: Self.endpoint(cluster, 3))) { outcomes.append($0) }
        raft.changeMembership(.remove(RaftCluster.id(0))) { outcomes.append($0) }
        raft.changeMembership(.add(NodeID(9), endpoint: nil)) { outcomes.append($0) }
        #expect(outcomes.count == 2, "the first waits for its commit")
        #expect(outcomes.first.flatMap(Self.error) == .membershipChangePending)
        #expect(outcomes.last.flatMap(Self.error).map(Self.isInvalid) == true, "no endpoint")
        #expect(cluster.run(until: { outcomes.count == 3 }, limit: .seconds(2)))
        #expect(outcomes.last.map { (try? $0.get()) != nil } == true, "the first change committed")

        // A follower forwards changes to the leader: one it refuses comes
        // back as refused, one it takes completes once applied here.
        follower.changeMembership(.remove(NodeID(9))) { outcomes.append($0) }
        #expect(cluster.run(until: { outcomes.count == 4 }, limit: .seconds(2)))
        #expect(outcomes.last.flatMap(Self.error) == .invalidMembershipChange("\(NodeID(9)) is not a member"))
        follower.changeMembership(.remove(RaftCluster.id(3))) { outcomes.append($0) }
        #expect(cluster.run(until: { outcomes.count == 5 }, limit: .seconds(2)))
        #expect(outcomes.last.map { (try? $0.get()) != nil } == true, "a forwarded change committed")
        #expect(follower.membership.count == 3 && follower.counters.proposalsForwarded == 2)
        var configuration = RaftConfiguration()
        configuration.forwardProposals = false
        cluster.configurations[(leader + 1) % 3] = configuration
        cluster.crash((leader + 1) % 3)
        try cluster.restart((leader + 1) % 3)
        #expect(cluster.run(until: { cluster.rafts[(leader + 1) % 3]?.leader != nil }, limit: .seconds(2)))
        cluster.rafts[(leader + 1) % 3]?.changeMembership(.remove(RaftCluster.id(0))) { outcomes.append($0) }
        #expect(outcomes.count == 6)
        if case .failure(.notLeader(let hint?)) = outcomes.last {
            #expect(hint == cluster.rafts[(leader + 1) % 3]?.leader)
        } else {
            Issue.record("without forwarding a follower refuses: \(String(describing: outcomes.last))")
        }
        raft.changeMembership(.add(RaftCluster.id(leader), endpoint: Self.endpoint(cluster, leader))) {
            outcomes.append($0)
        }
        #expect(outcomes.last.flatMap(Self.error).map(Self.isInvalid) == true, "adding a member")

        var replica = try RaftReplica(
            id: NodeID(1), group: 1, peers: [], storage: InMemoryRaftStorage(), seed: 1, now: Instant(nanoseconds: 0))
        replica.tick(now: Instant(nanoseconds: 5_000_000_000))
        #expect(replica.role == .leader)
        #expect(throws: RaftError.invalidMembershipChange("\(NodeID(1)) is the last voter")) {
            try replica.proposeMembershipChange(.remove(NodeID(1)))
        }
        #expect(throws: RaftError.invalidMembershipChange("\(NodeID(2)) is not a member")) {
            try replica.proposeMembershipChange(.remove(NodeID(2)))
        }
        #expect(throws: RaftError.invalidMembershipChange("\(NodeID(2)) is not a learner")) {
            try replica.proposeMembershipChange(.promote(NodeID(2)))
        }
        #expect(throws: RaftError.invalidMembershipChange("\(NodeID(1)) is a member already")) {
            try replica.proposeMembershipChange(.addLearner(NodeID(1), endpoint: nil))
        }
        try replica.proposeMembershipChange(.addLearner(NodeID(2), endpoint: nil))
        #expect(replica.membership.learnerIDs == [NodeID(2)] && replica.learners == [NodeID(2)] && replica.peers.isEmpty)
        #expect(replica.commitIndex == replica.lastIndex, "a group of one voter commits alone")
        #expect(throws: RaftError.invalidMembershipChange("\(NodeID(2)) is a learner already")) {
            try replica.proposeMembershipChange(.add(NodeID(2), endpoint: nil))
        }
        try replica.proposeMembershipChange(.remove(NodeID(2)))
        #expect(replica.learners.isEmpty)
    }

    static func error(_ result: Result<Void, RaftError>) -> RaftError? {
        if case .failure(let error) = result { error } else { nil }
    }

    static func isInvalid(_ error: RaftError) -> Bool {
        if case .invalidMembershipChange = error { true } else { false }
    }

    @Test("a new leader changes nothing before an entry of its term commits; a leader that removed itself changes nothing more")
    func newLeaderWaitsForItsFirstCommit() throws {
        var replica = try RaftReplica(
            id: NodeID(1), group: 1, peers: [NodeID(2), NodeID(3)], storage: InMemoryRaftStorage(),
            configuration: ReplicaGroup.paperConfiguration, seed: 1, now: Instant(nanoseconds: 0))
        var now = Instant(nanoseconds: 5_000_000_000)
        replica.tick(now: now)
        #expect(replica.role == .candidate)
        replica.step(
            RaftMessage(group: 1, from: NodeID(2), to: NodeID(1), term: replica.term,
                        body: .voteResponse(granted: true, isPreVote: false)),
            now: now)
        #expect(replica.role == .leader && replica.lastIndex == 1 && replica.commitIndex == 0)
        #expect(throws: RaftError.membershipChangePending) {
            try replica.proposeMembershipChange(.add(NodeID(4), endpoint: nil))
        }
        _ = replica.ready()
        replica.step(
            RaftMessage(group: 1, from: NodeID(2), to: NodeID(1), term: replica.term,
                        body: .appendResponse(.accepted(matchIndex: 1))),
            now: now)
        #expect(replica.commitIndex == 1)
        let removal = try replica.proposeMembershipChange(.remove(NodeID(1)))
        #expect(replica.isMember == false && replica.peers == [NodeID(2), NodeID(3)])
        #expect(throws: RaftError.notLeader(leaderHint: nil)) {
            try replica.proposeMembershipChange(.add(NodeID(4), endpoint: nil))
        }
        _ = replica.ready()
        // Its own log no longer counts: one of two members is no majority.
        replica.step(
            RaftMessage(group: 1, from: NodeID(2), to: NodeID(1), term: replica.term,
                        body: .appendResponse(.accepted(matchIndex: removal.index))),
            now: now)
        #expect(replica.commitIndex == 1)
        replica.step(
            RaftMessage(group: 1, from: NodeID(3), to: NodeID(1), term: replica.term,
                        body: .appendResponse(.accepted(matchIndex: removal.index))),
            now: now)
        #expect(replica.commitIndex == removal.index)
        #expect(throws: RaftError.notLeader(leaderHint: nil)) { try replica.propose([1]) }
        #expect(throws: RaftError.notLeader(leaderHint: nil)) {
            try replica.proposeMembershipChange(.add(NodeID(1), endpoint: nil))
        }
        _ = replica.ready()
        now = now + .seconds(1)
        replica.tick(now: now)
        #expect(replica.role == .follower && replica.counters.stepDownsOnRemoval == 1)
        #expect(replica.ready().messages.map(\.to) == [NodeID(2), NodeID(3)], "its last heartbeats")
        replica.tick(now: now + .seconds(10))
        #expect(replica.role == .follower && replica.counters.electionsStarted == 1, "a non-member never campaigns")
    }

    @Test("a membership entry cut from a follower's log takes its membership with it")
    func truncatedChangeReverts() throws {
        var follower = try RaftReplica(
            id: NodeID(2), group: 1, peers: [NodeID(1), NodeID(3)], storage: InMemoryRaftStorage(), seed: 2,
            now: Instant(nanoseconds: 0))
        let four = try RaftMembership([1, 2, 3, 4].map { RaftMembership.Member(id: NodeID($0)) })
        let now = Instant(nanoseconds: 1)
        follower.step(
            RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 1, body: .append(
                previousIndex: 0, previousTerm: 0, entries: [four.entry(term: 1, index: 1)], leaderCommit: 0)),
            now: now)
        #expect(follower.membership == four)
        #expect(follower.peers == [NodeID(1), NodeID(3), NodeID(4)])
        // Another leader, elected without it, overwrites index 1.
        follower.step(
            RaftMessage(group: 1, from: NodeID(3), to: NodeID(2), term: 2, body: .append(
                previousIndex: 0, previousTerm: 0, entries: [RaftEntry(term: 2, index: 1, kind: .leaderNoop)],
                leaderCommit: 1)),
            now: now)
        #expect(follower.membership.ids == [NodeID(1), NodeID(2), NodeID(3)])
        #expect(follower.peers == [NodeID(1), NodeID(3)])
        #expect(follower.membership(asOf: 1) == nil)
    }

    @Test("a replica follows, and votes for, a member its membership does not name yet; answers from strangers are dropped")
    func followsAnUnknownLeader() throws {
        var replica = try RaftReplica(
            id: NodeID(3), group: 1, peers: [NodeID(1), NodeID(2)], storage: InMemoryRaftStorage(), seed: 3,
            now: Instant(nanoseconds: 0))
        let now = Instant(nanoseconds: 1)
        // Node 4 was added, and leads, while this replica was cut off.
        replica.step(
            RaftMessage(group: 1, from: NodeID(4), to: NodeID(3), term: 5, body: .heartbeat(commitIndex: 0, readRound: 0)),
            now: now)
        #expect(replica.leader == NodeID(4) && replica.term == 5)
        #expect(replica.ready().messages.map(\.to) == [NodeID(4)])
        replica.step(
            RaftMessage(group: 1, from: NodeID(5), to: NodeID(3), term: 6, body: .voteRequest(
                lastLogIndex: 9, lastLogTerm: 5, isPreVote: false)),
            now: Instant(nanoseconds: 10_000_000_000))
        #expect(replica.votedFor == NodeID(5))
        let before = replica.counters.messagesDropped
        replica.step(
            RaftMessage(group: 1, from: NodeID(5), to: NodeID(3), term: 6, body: .voteResponse(granted: true, isPreVote: false)),
            now: Instant(nanoseconds: 10_000_000_000))
        #expect(replica.counters.messagesDropped == before + 1)
    }

    @Test("memberships round-trip; hostile encodings are refused, and an append carrying one is dropped")
    func encodings() throws {
        let membership = try RaftMembership([
            RaftMembership.Member(id: NodeID(7), endpoint: .loopbackV4(port: 7001)),
            RaftMembership.Member(id: NodeID(3)),
        ])
        #expect(membership.ids == [NodeID(3), NodeID(7)])
        let withLearner = try RaftMembership(
            [RaftMembership.Member(id: NodeID(1))], learners: [RaftMembership.Member(id: NodeID(2), endpoint: .loopbackV4(port: 2))])
        #expect(RaftMembership(entry: withLearner.entry(term: 1, index: 1)) == withLearner)
        #expect(withLearner.endpoint(of: NodeID(2)) == .loopbackV4(port: 2))
        #expect(throws: ConfigurationError.self) {
            try RaftMembership([RaftMembership.Member(id: NodeID(1))], learners: [RaftMembership.Member(id: NodeID(1))])
        }
        let entry = membership.entry(term: 1, index: 1)
        #expect(RaftMembership(entry: entry) == membership)
        #expect(entry.command.last == 0, "no learner")
        #expect(membership.endpoint(of: NodeID(7)) == .loopbackV4(port: 7001))
        #expect(throws: ConfigurationError.self) { try RaftMembership([]) }
        #expect(throws: ConfigurationError.self) {
            try RaftMembership([RaftMembership.Member(id: NodeID(1)), RaftMembership.Member(id: NodeID(1))])
        }
        let hostile: [[UInt8]] = [
            [0, 0],  // no voter
            [2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],  // not ascending
            [1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0],  // presence byte 2
            [1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 5],  // address family 5
            [1, 0, 0, 0, 0],  // truncated
            [0x80, 0x10],  // 2,048 members
            [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0],  // a voter and a learner
            [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x08],  // 1 + 1,024 members
        ]
        for bytes in hostile {
            #expect(throws: WireError.self) { try bytes.withUnsafeBytes { try RaftMembership(decoding: $0) } }
        }
        var replica = try RaftReplica(
            id: NodeID(2), group: 1, peers: [NodeID(1), NodeID(3)], storage: InMemoryRaftStorage(), seed: 2,
            now: Instant(nanoseconds: 0))
        let forged = RaftEntry(term: 1, index: 1, kind: .membership, command: hostile[2])
        replica.step(
            RaftMessage(group: 1, from: NodeID(1), to: NodeID(2), term: 1, body: .append(
                previousIndex: 0, previousTerm: 0, entries: [forged], leaderCommit: 0)),
            now: Instant(nanoseconds: 1))
        #expect(replica.counters.messagesDropped == 1)
        #expect(replica.lastIndex == 0)

        // Snapshot files: format 2 keeps the membership; format 1 reads as none.
        let snapshot = RaftSnapshot(index: 9, term: 2, membership: membership, data: [1, 2, 3])
        #expect(try SnapshotFile.decode(SnapshotFile.encode(snapshot), file: "s") == snapshot)
        var version1 = SnapshotFile.encode(RaftSnapshot(index: 9, term: 2, data: [1, 2, 3]))
        // A format-1 file: version 1, the data alone, its checksum.
        version1.remove(at: SnapshotFile.headerSize)
        version1.replaceSubrange(8..<12, with: [1, 0, 0, 0])
        version1.replaceSubrange(28..<36, with: [3, 0, 0, 0, 0, 0, 0, 0])
        var crc = CRC32C()
        version1.withUnsafeBytes { crc.update(UnsafeRawBufferPointer(rebasing: $0[12..<36])) }
        crc.update(Array(version1[SnapshotFile.headerSize...]))
        withUnsafeBytes(of: crc.value.littleEndian) { version1.replaceSubrange(36..<40, with: $0) }
        #expect(try SnapshotFile.decode(version1, file: "s") == RaftSnapshot(index: 9, term: 2, data: [1, 2, 3]))
    }
}

extension RaftNode {
    /// Whether this node is a member of the membership it knows.
    var isMemberNow: Bool { membership.contains(id) }
}

/// A sequence of membership changes asked of a ``RaftCluster``'s leader
/// one at a time (``advance()``): the next is asked once the last
/// succeeded, or once the leader's membership shows it made (its outcome
/// lost with a leader that crashed or lost its place); a node removed is
/// stopped.
final class MembershipPlan {
    let cluster: RaftCluster
    private(set) var changes: [RaftMembershipChange]
    private(set) var made = 0
    private var asking = false

    init(cluster: RaftCluster, changes: [RaftMembershipChange]) {
        self.cluster = cluster
        self.changes = changes
    }

    func advance() {
        guard !asking, let change = changes.first, let leader = cluster.leader, let raft = cluster.rafts[leader] else {
            return
        }
        let membership = raft.membership
        let isMade = switch change {
        case .add(let id, _), .promote(let id): membership.contains(id)
        case .addLearner(let id, _): membership.hasLearner(id) || membership.contains(id)
        case .remove(let id): !membership.contains(id) && !membership.hasLearner(id)
        }
        guard !isMade else { return finish(change) }
        asking = true
        raft.changeMembership(change) { [self] result in
            asking = false
            if case .success = result { finish(change) }
        }
    }

    private func finish(_ change: RaftMembershipChange) {
        guard changes.first == change else { return }
        changes.removeFirst()
        made += 1
        if case .remove(let id) = change { cluster.crash(Int(id.rawValue) - 1) }
    }
}
