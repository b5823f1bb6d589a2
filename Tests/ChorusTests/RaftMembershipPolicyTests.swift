import Chorus
import EventCore
import Raft
import SWIM
import Simulation
import TestSupport
import Testing

/// ``RaftMembershipPolicy``: SWIM's view driving a Raft group's
/// membership on ``ChorusNode``s in the simulator.
@Suite("RaftMembershipPolicy")
struct RaftMembershipPolicyTests {
    typealias Cluster = ChorusNodeTests.Cluster

    /// A policy with short times, so that runs stay short.
    static let quick: RaftMembershipPolicy = {
        var policy = RaftMembershipPolicy()
        policy.failedMemberGrace = .seconds(5)
        policy.stabilization = .seconds(2)
        policy.interval = .milliseconds(500)
        return policy
    }()

    /// Starts group 1 with `policy` on machine `index`: on the members
    /// SWIM sees alive, joining unless it is one of the first three.
    @discardableResult
    static func startGroup(on cluster: Cluster, machine index: Int, policy: RaftMembershipPolicy) throws -> RaftNode {
        let machine = cluster.machines[index]
        let map = KeyValueStateMachine()
        cluster.maps[1, default: []].append(map)
        let joining = index >= 3
        let members = joining
            ? machine.member.allMembers.filter { $0.status == .alive && $0.id != machine.member.id }
            : try machine.initialMembers(count: 3)
        return try machine.startGroup(
            1, on: members, joining: joining, storage: InMemoryRaftStorage(), stateMachine: map,
            seed: cluster.network.seed &+ 100 &+ UInt64(index), policy: policy)
    }

    /// A cluster whose group 1 runs with `policy`: started on machines
    /// 1-3, then `joining` more machines start joining replicas once SWIM
    /// has them (and `bystanders` more run none).
    static func cluster(
        seed: UInt64, policy: RaftMembershipPolicy = quick, joining: Int, bystanders: Int = 0,
        logger: any LogSink = DiscardingLogSink()
    ) throws -> Cluster {
        let cluster = try Cluster(seed: seed, logger: logger)
        cluster.network.run(for: .seconds(5))
        for index in 0..<3 { try startGroup(on: cluster, machine: index, policy: policy) }
        for _ in 0..<(joining + bystanders) { try cluster.addMachine() }
        cluster.network.run(for: .seconds(5))
        for index in 3..<(3 + joining) { try startGroup(on: cluster, machine: index, policy: policy) }
        return cluster
    }

    /// The group's voters and learners at its leader, once there is one.
    static func leaderMembership(_ cluster: Cluster) -> RaftMembership? {
        cluster.machines.compactMap { $0.replicas[1] }.first { !$0.stopped && $0.role == .leader }?.membership
    }

    /// Runs until `done` holds (checked every 100 ms), at most `limit`;
    /// returns the simulated time it took, nil if it never held.
    static func run(_ cluster: Cluster, upTo limit: Duration, until done: () -> Bool) -> Duration? {
        let start = cluster.network.now
        while cluster.network.now - start < limit {
            if done() { return cluster.network.now - start }
            cluster.network.run(for: .milliseconds(100))
        }
        return done() ? cluster.network.now - start : nil
    }

    /// A follower's machine index (its replica running and not leading).
    static func follower(_ cluster: Cluster, among indices: [Int]) -> Int? {
        indices.first { index in
            guard let replica = cluster.machines[index].replicas[1] else { return false }
            return !replica.stopped && replica.role == .follower
        }
    }

    /// A client writing keys `s1`, `s2`, ... one at a time through the
    /// group's leader, retrying each until it is acknowledged, while
    /// ``isWriting``.
    final class StreamingWriter {
        let cluster: Cluster
        var isWriting = true
        private(set) var acknowledged = 0
        private var scheduler: SimulatedNode { cluster.nodes[0] }

        init(cluster: Cluster) {
            self.cluster = cluster
            write()
        }

        private func write() {
            guard isWriting else { return }
            let key = acknowledged + 1
            guard let leader = cluster.machines.compactMap({ $0.replicas[1] }).first(where: { !$0.stopped && $0.role == .leader })
            else { return retry() }
            leader.propose(KeyValueCommand.put(key: "s\(key)", value: [1]).encoded) { [self] result in
                guard case .success = result else { return retry() }
                acknowledged = max(acknowledged, key)
                write()
            }
        }

        private func retry() {
            scheduler.schedule(at: scheduler.now + .milliseconds(10)) { [self] in write() }
        }

        /// The acknowledged keys `map` lacks.
        func missing(in map: KeyValueStateMachine) -> [Int] {
            (0..<acknowledged).map { $0 + 1 }.filter { map.values["s\($0)"] == nil }
        }
    }

    /// The instant the leader's SWIM member first saw `id` dead, polled.
    static func deadAt(_ id: NodeID, in cluster: Cluster, seen: inout Instant?) {
        guard seen == nil, let leader = cluster.machines.first(where: { $0.replicas[1]?.role == .leader }),
              leader.member.member(id)?.status == .dead
        else { return }
        seen = cluster.network.now
    }

    @Test("with a policy, machines that start a replica join as learners and are promoted once caught up and stable, under a steady stream of writes; one that leaves is removed at once, one that crashes once dead for the grace, never below the fewest voters")
    func policyDrivesMembership() throws {
        let cluster = try Cluster(seed: 41)
        cluster.network.run(for: .seconds(5))
        for index in 0..<3 { try Self.startGroup(on: cluster, machine: index, policy: Self.quick) }
        #expect(cluster.put("before", in: 1))
        let writer = StreamingWriter(cluster: cluster)

        // Machines 4 and 5 start; once SWIM has them, they start joining
        // replicas, which the leader adds, then promotes.
        for _ in 0..<2 { try cluster.addMachine() }
        cluster.network.run(for: .seconds(5))
        for index in 3..<5 { try Self.startGroup(on: cluster, machine: index, policy: Self.quick) }
        var learnerAt: [NodeID: Instant] = [:]
        var voterAt: [NodeID: Instant] = [:]
        let grown = Self.run(cluster, upTo: .seconds(40)) {
            guard let membership = Self.leaderMembership(cluster) else { return false }
            for id in membership.learnerIDs where learnerAt[id] == nil { learnerAt[id] = cluster.network.now }
            for id in membership.ids where voterAt[id] == nil && learnerAt[id] != nil { voterAt[id] = cluster.network.now }
            return membership.ids.count == 5
        }
        #expect(grown != nil, "\(String(describing: Self.leaderMembership(cluster)))")
        for id in [NodeID(4), NodeID(5)] {
            let (learner, voter) = (try #require(learnerAt[id], "joined as a learner first"), try #require(voterAt[id]))
            #expect(voter - learner >= Self.quick.stabilization)
        }
        let beforeJoins = writer.acknowledged
        cluster.network.run(for: .seconds(1))
        #expect(writer.acknowledged > beforeJoins, "the stream went on")
        #expect(ChorusNode.raftGroups(advertisedBy: try #require(cluster.machines[0].member.member(NodeID(4)))) == [1])

        // A follower's machine leaves SWIM: removed well within the grace.
        let leaving = try #require(Self.follower(cluster, among: [0, 1, 2]))
        let leavingID = cluster.machines[leaving].member.id
        cluster.machines[leaving].member.leave()
        let left = Self.run(cluster, upTo: .seconds(20)) {
            Self.leaderMembership(cluster).map { !$0.contains(leavingID) } == true
        }
        #expect(left.map { $0 < Self.quick.failedMemberGrace } == true, "\(String(describing: left))")

        // A follower's machine crashes: removed once SWIM has seen it dead
        // for the grace (suspect does not count).
        let crashing = try #require(Self.follower(cluster, among: [0, 1, 2, 3, 4].filter { $0 != leaving }))
        let crashingID = cluster.machines[crashing].member.id
        cluster.machines[crashing].stop()
        var seenDead: Instant?
        let removed = Self.run(cluster, upTo: .seconds(40)) {
            Self.deadAt(crashingID, in: cluster, seen: &seenDead)
            return Self.leaderMembership(cluster).map { !$0.contains(crashingID) } == true
        }
        let deadAt = try #require(seenDead)
        #expect(removed != nil)
        #expect(cluster.network.now - deadAt >= Self.quick.failedMemberGrace)
        #expect(Self.leaderMembership(cluster)?.ids.count == 3)

        // Another crashes: 3 voters are the fewest, so it stays a member,
        // and the group commits on 2 of 3.
        let last = try #require(Self.follower(cluster, among: [0, 1, 2, 3, 4].filter { ![leaving, crashing].contains($0) }))
        let lastID = cluster.machines[last].member.id
        cluster.machines[last].stop()
        cluster.network.run(for: .seconds(20))
        #expect(Self.leaderMembership(cluster)?.ids.contains(lastID) == true)
        #expect(cluster.put("after", in: 1))
        writer.isWriting = false
        cluster.network.run(for: .seconds(1))
        #expect(writer.acknowledged > 1_000)
        let running = cluster.machines.indices.filter { ![leaving, crashing, last].contains($0) }
        #expect(running.count == 2)
        for index in running {
            let replica = try #require(cluster.machines[index].replicas[1])
            #expect(replica.membership.ids.count == 3 && replica.membership.learnerIDs.isEmpty)
            let map = cluster.maps[1]![index]
            #expect(["after", "before"].allSatisfy { map.values[$0] != nil })
            #expect(writer.missing(in: map).isEmpty)
        }
    }

    @Test("the policy never leaves the group without a quorum it can reach: with two voters of five crashed, a third whose machine leaves SWIM (its replica still up) is kept, and the crashed ones go after the grace; a machine that stops its replica but stays up is removed after the grace")
    func quorumGuard() throws {
        let cluster = try Self.cluster(seed: 45, joining: 3)
        #expect(Self.run(cluster, upTo: .seconds(40)) { Self.leaderMembership(cluster)?.ids.count == 6 } != nil)

        // A machine stops its replica but stays up in SWIM: removed once
        // it has not advertised the group for the grace, and not added back.
        let stopping = try #require(Self.follower(cluster, among: Array(0..<6)))
        let stoppingID = cluster.machines[stopping].member.id
        cluster.machines[stopping].stopGroup(1)
        let stoppedAt = cluster.network.now
        #expect(Self.run(cluster, upTo: .seconds(20)) {
            Self.leaderMembership(cluster).map { !$0.contains(stoppingID) } == true
        } != nil)
        #expect(cluster.network.now - stoppedAt >= Self.quick.failedMemberGrace)
        cluster.network.run(for: .seconds(10))
        #expect(Self.leaderMembership(cluster).map { !$0.contains(stoppingID) && !$0.hasLearner(stoppingID) } == true)
        #expect(cluster.machines[0].member.member(stoppingID)?.status == .alive)

        // Five voters: two crash; while they are within the grace, a
        // third's machine leaves SWIM, its replica still up. Removing it
        // would leave four voters, two reachable: it is kept. Once the grace
        // has passed the crashed ones go (the one that left still answers
        // Raft), then it stays: 3 voters are the fewest.
        let others = Array(0..<6).filter { $0 != stopping }
        let crashed = Array(others.filter { cluster.machines[$0].replicas[1]?.role == .follower }.prefix(2))
        #expect(crashed.count == 2)
        for index in crashed { cluster.machines[index].stop() }
        cluster.network.run(for: .seconds(1))
        let leaving = try #require(Self.follower(cluster, among: others.filter { !crashed.contains($0) }))
        let leavingID = cluster.machines[leaving].member.id
        cluster.machines[leaving].member.leave()
        cluster.network.run(for: .seconds(3))
        #expect(Self.leaderMembership(cluster)?.ids.count == 5)
        #expect(cluster.put("kept", in: 1))
        cluster.network.run(for: .seconds(20))
        let membership = try #require(Self.leaderMembership(cluster))
        let crashedIDs = crashed.map { cluster.machines[$0].member.id }
        #expect(membership.ids.count == 3 && membership.contains(leavingID), "\(membership)")
        #expect(crashedIDs.allSatisfy { !membership.contains($0) })
        #expect(cluster.put("still", in: 1))
    }

    @Test("a learner that stops its replica before its promotion is not promoted (one voter of three is down: a fourth that does not answer would stop the group), and is removed after the grace")
    func learnerThatStopsIsNotPromoted() throws {
        var policy = Self.quick
        policy.stabilization = .seconds(3)
        let cluster = try Self.cluster(seed: 46, policy: policy, joining: 1)
        let learner = NodeID(4)
        #expect(Self.run(cluster, upTo: .seconds(20)) { Self.leaderMembership(cluster)?.hasLearner(learner) == true } != nil)
        cluster.machines[3].stopGroup(1)
        let down = try #require(Self.follower(cluster, among: [0, 1, 2]))
        cluster.machines[down].stop()
        var promoted = false
        let removed = Self.run(cluster, upTo: .seconds(20)) {
            guard let membership = Self.leaderMembership(cluster) else { return false }
            promoted = promoted || membership.contains(learner)
            return !membership.hasLearner(learner) && !membership.contains(learner)
        }
        #expect(!promoted)
        #expect(removed != nil)
        #expect(cluster.put("on two of three", in: 1))
    }

    @Test("a new leader removes no voter it has not heard from yet that the rest need (Raft takes its first change once a quorum answered it): with two voters of five crashed and a third's machine gone from SWIM (its replica up), a leadership transfer does not cost the group its quorum")
    func newLeaderWaitsForContact() throws {
        var policy = Self.quick
        policy.interval = .milliseconds(1)  // a pass right at the election
        let cluster = try Self.cluster(seed: 47, policy: policy, joining: 2)
        #expect(Self.run(cluster, upTo: .seconds(40)) { Self.leaderMembership(cluster)?.ids.count == 5 } != nil)

        let leader = try #require(cluster.machines.firstIndex { $0.replicas[1]?.role == .leader })
        let followers = (0..<5).filter { $0 != leader }
        let (crashed, leaving, target) = (Array(followers.prefix(2)), followers[2], followers[3])
        for index in crashed { cluster.machines[index].stop() }
        cluster.network.run(for: .seconds(1))
        let leavingID = cluster.machines[leaving].member.id
        cluster.machines[leaving].member.leave()
        cluster.network.run(for: .seconds(1))
        #expect(Self.leaderMembership(cluster)?.contains(leavingID) == true)
        try cluster.machines[leader].replicas[1]!.transferLeadership(to: cluster.machines[target].member.id)
        #expect(Self.run(cluster, upTo: .seconds(5)) { cluster.machines[target].replicas[1]?.role == .leader } != nil)
        cluster.network.run(for: .seconds(2))
        #expect(Self.leaderMembership(cluster)?.contains(leavingID) == true, "kept: the crashed ones do not answer")
        #expect(cluster.put("after the transfer", in: 1))
    }

    @Test("a leader whose machine leaves SWIM hands over to a voter that answers, not to one that crashed a moment ago")
    func handOverSkipsUnreachable() throws {
        let notices = RecordedLogLines(level: .notice)
        let cluster = try Self.cluster(seed: 48, joining: 1, logger: notices)
        #expect(Self.run(cluster, upTo: .seconds(30)) { Self.leaderMembership(cluster)?.ids.count == 4 } != nil)
        #expect(cluster.put("before", in: 1))

        // The lowest-ID follower (first among equals when matches tie)
        // crashes; at once the leader's machine leaves SWIM.
        let leader = try #require(cluster.machines.firstIndex { $0.replicas[1]?.role == .leader })
        let crashed = try #require((0..<4).first { $0 != leader })
        cluster.machines[crashed].stop()
        cluster.machines[leader].member.leave()
        let newLeader = Self.run(cluster, upTo: .seconds(10)) {
            cluster.machines.indices.contains { $0 != leader && $0 != crashed && cluster.machines[$0].replicas[1]?.role == .leader }
        }
        #expect(newLeader != nil)
        #expect(cluster.machines[leader].replicas[1]?.counters.leadershipTransfersAborted == 0)
        #expect(cluster.put("after", in: 1))

        // What the policy did, in the machines' logs.
        let lines = notices.all
        for expected in [
            "membership policy: Raft group 1: add learner 0000000000000004 at 10.0.0.4:7946 (alive in SWIM, running the group) done",
            "membership policy: Raft group 1: this machine left SWIM, handing leadership to",
        ] {
            #expect(lines.contains { $0.hasPrefix(expected) }, "\(expected) in \(lines)")
        }
        #expect(lines.contains { $0.contains(": promote 0000000000000004 (caught up for") && $0.hasSuffix(") done") })
    }

    @Test("a member cut off past the grace is removed, and once the cut heals it comes back as a learner, then a voter; a machine that runs no replica of the group never joins it; a leader whose machine leaves hands over and is removed")
    func falseSuspicionHeals() throws {
        let cluster = try Self.cluster(seed: 42, joining: 1, bystanders: 1)
        #expect(Self.run(cluster, upTo: .seconds(30)) { Self.leaderMembership(cluster)?.ids.count == 4 } != nil)

        let bystander = NodeID(5)
        let cut = try #require(Self.follower(cluster, among: [0, 1, 2, 3]))
        let cutID = cluster.machines[cut].member.id
        let others = cluster.nodes.indices.filter { $0 != cut }.map { cluster.nodes[$0] }
        cluster.network.partition([cluster.nodes[cut]], others)
        let removed = Self.run(cluster, upTo: .seconds(40)) {
            Self.leaderMembership(cluster).map { !$0.contains(cutID) && !$0.hasLearner(cutID) } == true
        }
        #expect(removed != nil)
        let removedAt = cluster.network.now
        #expect(cluster.put("while cut", in: 1))

        // Back once SWIM sees it again, but not within the grace of its
        // removal (polled every 100 ms).
        cluster.network.heal()
        var learnerAt: Instant?
        let back = Self.run(cluster, upTo: .seconds(60)) {
            guard let membership = Self.leaderMembership(cluster) else { return false }
            if learnerAt == nil && membership.hasLearner(cutID) { learnerAt = cluster.network.now }
            return membership.contains(cutID)
        }
        #expect(back != nil)
        let readdedAt = try #require(learnerAt, "back as a learner first")
        #expect(readdedAt - removedAt >= Self.quick.failedMemberGrace - .milliseconds(200))
        #expect(cluster.put("healed", in: 1))
        cluster.network.run(for: .seconds(1))
        #expect(cluster.maps[1]![cut].values.keys.sorted() == ["healed", "while cut"])
        var membership = try #require(Self.leaderMembership(cluster))
        #expect(!membership.contains(bystander) && !membership.hasLearner(bystander))

        // The leader's machine leaves SWIM: it hands leadership over, and
        // the next leader removes it.
        let leader = try #require(cluster.machines.firstIndex { $0.replicas[1]?.role == .leader })
        let leaderID = cluster.machines[leader].member.id
        cluster.machines[leader].member.leave()
        let handedOver = Self.run(cluster, upTo: .seconds(20)) {
            Self.leaderMembership(cluster).map { !$0.contains(leaderID) } == true
        }
        #expect(handedOver != nil)
        membership = try #require(Self.leaderMembership(cluster))
        #expect(membership.ids.count == 3)
        #expect(cluster.machines[leader].replicas[1]?.counters.leadershipTransfersStarted == 1)
    }

    @Test("the advertisement: the groups with a policy and the application metadata round trip; a stopped group is no longer advertised; without a policy the member's metadata is left alone; metadata that is no advertisement advertises nothing; too much is refused")
    func advertisement() throws {
        let cluster = try Cluster(seed: 43)
        cluster.network.run(for: .seconds(5))
        let machine = cluster.machines[1]
        try machine.setApplicationMetadata(Array("rack-7".utf8))
        let members = try machine.initialMembers(count: 3)
        for group: UInt64 in [300, 2, 7] {
            _ = try machine.startGroup(
                group, on: members, storage: InMemoryRaftStorage(), stateMachine: KeyValueStateMachine(),
                policy: group == 7 ? nil : Self.quick)
        }
        // A machine with no policy leaves metadata set on its member alone.
        let plainMachine = cluster.machines[2]
        try plainMachine.member.setMetadata(Array("plain".utf8))
        _ = try plainMachine.startGroup(
            2, on: members, storage: InMemoryRaftStorage(), stateMachine: KeyValueStateMachine())
        cluster.network.run(for: .seconds(2))
        var seen = try #require(cluster.machines[0].member.member(NodeID(2)))
        #expect(ChorusNode.raftGroups(advertisedBy: seen) == [2, 300], "only the groups with a policy")
        let plainSeen = try #require(cluster.machines[0].member.member(NodeID(3)))
        #expect(plainSeen.metadata == Array("plain".utf8) && ChorusNode.raftGroups(advertisedBy: plainSeen) == [])
        #expect(ChorusNode.applicationMetadata(of: seen) == Array("rack-7".utf8))

        machine.stopGroup(300)
        #expect(machine.replicas[300] == nil)
        cluster.network.run(for: .seconds(2))
        seen = try #require(cluster.machines[0].member.member(NodeID(2)))
        #expect(ChorusNode.raftGroups(advertisedBy: seen) == [2])

        // Group 2's replica stopped directly, then started again without a
        // policy: no longer advertised, at once (no pass runs for it).
        try #require(machine.replicas[2]).stop()
        _ = try machine.startGroup(2, on: members, storage: InMemoryRaftStorage(), stateMachine: KeyValueStateMachine())
        #expect(ChorusNode.raftGroups(advertisedBy: machine.member.localMember) == [])
        #expect(ChorusNode.applicationMetadata(of: machine.member.localMember) == Array("rack-7".utf8))

        let tooLarge = #expect(throws: SWIMError.self) {
            try machine.setApplicationMetadata([UInt8](repeating: 1, count: 128))
        }
        #expect(tooLarge?.code == .metadataTooLarge)
        #expect(ChorusNode.applicationMetadata(of: machine.member.localMember) == Array("rack-7".utf8))

        // A plain SWIM member's metadata, and hostile ones.
        let plain = [UInt8]("zone-a".utf8)
        for metadata: [UInt8] in [plain, [], [0xC1], [0xC1, 0x05, 0x01], [0xC1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01],
                                  [0xC1, 0x01, 0x80]] {
            var member = machine.member.localMember
            member.metadata = metadata
            #expect(ChorusNode.raftGroups(advertisedBy: member) == [])
            #expect(ChorusNode.applicationMetadata(of: member) == metadata)
        }
        // Metadata that begins as an advertisement does is read as one.
        var lookalike = machine.member.localMember
        lookalike.metadata = [0xC1, 0x00, 0x41]
        #expect(ChorusNode.raftGroups(advertisedBy: lookalike) == [] && ChorusNode.applicationMetadata(of: lookalike) == [0x41])
    }

    @Test("a policy out of range is refused with a typed error before anything starts")
    func invalidPolicy() throws {
        let cluster = try Cluster(seed: 44)
        cluster.network.run(for: .seconds(5))
        let members = try cluster.machines[0].initialMembers(count: 3)
        var policies: [RaftMembershipPolicy] = []
        for edit: (inout RaftMembershipPolicy) -> Void in [
            { $0.failedMemberGrace = .milliseconds(999) }, { $0.stabilization = .seconds(-1) },
            { $0.minimumVoters = 0 }, { $0.interval = .zero }, { $0.interval = .seconds(61) },
        ] {
            var policy = RaftMembershipPolicy()
            edit(&policy)
            policies.append(policy)
        }
        for policy in policies {
            #expect(throws: ConfigurationError.self) {
                try cluster.machines[0].startGroup(
                    1, on: members, storage: InMemoryRaftStorage(), stateMachine: KeyValueStateMachine(), policy: policy)
            }
        }
        #expect(cluster.machines[0].replicas.isEmpty)
        #expect(ChorusNode.raftGroups(advertisedBy: cluster.machines[0].member.localMember) == [])
    }
}
