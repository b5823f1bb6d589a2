import EventCore
@testable import Raft
import Simulation
import Testing
import WireCodec

/// A follower waits for what it forwarded (a proposal the leader appended,
/// a read it confirmed) until it applies the entry or index; a follower
/// that loses its leader, and finds none within
/// ``RaftConfiguration/forwardTimeout``, fails those waits instead: a
/// replica removed from the group just after the leader appended its
/// entry is sent nothing more and never learns of its removal, so it
/// would wait for ever.
///
/// One real ``RaftNode`` (ID 3) plays against a leader L (1) and a peer
/// (2) the test writes by hand.
@Suite("Raft: a follower that loses its leader")
struct LostLeaderTests {
    final class Setup {
        let network = SimulatedNetwork(seed: 11)
        let host: SimulatedNode
        let leader: ScriptedRaftPeer
        let peer: ScriptedRaftPeer
        let node: RaftNode
        let log = AppliedCommandLog()
        var proposed: Result<[UInt8], RaftError>?
        var read: Result<Void, RaftError>?

        /// The node (a voter, or a learner) follows L in term 1 and holds
        /// L's first entry, committed: L's no-op, or for a learner the
        /// membership that makes it one (it joined). It has proposed "P"
        /// and asked for a read, both forwarded to L, which answered that
        /// it appended "P" at (1, 2) and confirmed the read at index 2.
        /// Nothing more has come from L.
        init(learner: Bool) throws {
            host = network.addNode()
            leader = ScriptedRaftPeer(1, on: network, target: NodeID(3))
            peer = ScriptedRaftPeer(2, on: network, target: NodeID(3))
            node = try RaftNode(
                id: NodeID(3), group: 1,
                peers: [NodeID(1): leader.host.localEndpoint, NodeID(2): peer.host.localEndpoint],
                joining: learner, storage: InMemoryRaftStorage(), stateMachine: log, transport: host,
                scheduler: host, seed: 3)
            let first: RaftEntry
            if learner {
                var writer = WireWriter()
                try RaftMembership(
                    [.init(id: NodeID(1)), .init(id: NodeID(2))], learners: [.init(id: NodeID(3), endpoint: endpoint)]
                ).encode(to: &writer)
                first = RaftEntry(term: 1, index: 1, kind: .membership, command: writer.bytes)
            } else {
                first = RaftEntry(term: 1, index: 1, kind: .leaderNoop)
            }
            try leader.send(
                .append(previousIndex: 0, previousTerm: 0, entries: [first], leaderCommit: 1), term: 1, to: endpoint)
            run(until: { self.node.leader == NodeID(1) && self.node.appliedIndex == 1 })
            if learner { precondition(node.membership.learners.contains { $0.id == NodeID(3) }) }
            node.propose(Array("P".utf8)) { self.proposed = $0 }
            node.read { self.read = $0 }
            run(until: { self.leader.inbox.filter(\.isForwarding).count == 2 })
            for message in leader.take() {
                switch message.body {
                case .forwardedProposal(let requestID, _):
                    try leader.send(
                        .forwardOutcome(requestID: requestID, outcome: .appended(term: 1, index: 2)), term: 1,
                        to: endpoint)
                case .forwardedRead(let requestID):
                    try leader.send(.readOutcome(requestID: requestID, index: 2), term: 1, to: endpoint)
                default:
                    break
                }
            }
            run(for: .milliseconds(10))
        }

        var endpoint: Endpoint { host.localEndpoint }

        /// Whether the read failed as `notLeader` with no hint.
        var readRefused: Bool {
            if case .failure(.notLeader(leaderHint: nil))? = read { true } else { false }
        }

        func run(until condition: () -> Bool, limit: Duration = .seconds(5)) {
            let end = network.now + limit
            while network.now < end && !condition() && network.step() {}
        }

        func run(for duration: Duration) {
            network.run(for: duration)
        }
    }

    @Test("a voter that loses its leader and finds none fails what it forwarded, forwardTimeout after it campaigned")
    func voterGivesUp() throws {
        let setup = try Setup(learner: false)
        #expect(setup.proposed == nil && setup.read == nil, "answered, both wait for index 2")
        #expect(setup.node.pendingProposalCount == 1)
        setup.run(until: { setup.node.leader == nil })
        let lost = setup.network.now
        #expect(setup.node.counters.preVotesStarted == 1, "lost its leader by campaigning")
        setup.run(until: { setup.proposed != nil })
        let waited = setup.network.now - lost
        let timeout = setup.node.configuration.forwardTimeout
        #expect(waited >= timeout && waited <= timeout + .milliseconds(1), "\(waited)")
        #expect(setup.proposed == .failure(.outcomeUnknown), "L may have committed it")
        #expect(setup.node.counters.waitsAbandoned == 2)
        #expect(setup.readRefused, "\(String(describing: setup.read))")
        #expect(setup.node.pendingProposalCount == 0)
    }

    @Test("a learner, which never campaigns, forgets a silent leader after an election timeout, then fails what it forwarded")
    func learnerGivesUp() throws {
        let setup = try Setup(learner: true)
        #expect(setup.proposed == nil && setup.read == nil)
        setup.run(until: { setup.node.leader == nil })
        let lost = setup.network.now
        #expect(setup.node.role == .follower)
        setup.run(until: { setup.proposed != nil })
        #expect(setup.network.now - lost >= setup.node.configuration.forwardTimeout)
        #expect(setup.node.counters.preVotesStarted == 0 && setup.node.counters.electionsStarted == 0)
        #expect(setup.proposed == .failure(.outcomeUnknown))
        #expect(setup.readRefused, "\(String(describing: setup.read))")
        // Knowing no leader, it refuses at once rather than forward.
        let forwarded = setup.node.counters.proposalsForwarded
        var again: Result<[UInt8], RaftError>?
        setup.node.propose(Array("Q".utf8)) { again = $0 }
        #expect(again == .failure(.notLeader(leaderHint: nil)))
        #expect(setup.node.counters.proposalsForwarded == forwarded)
    }

    @Test("a voter that finds a new leader within forwardTimeout goes on waiting, and learns the outcome from it")
    func newLeaderKeepsTheWait() throws {
        let setup = try Setup(learner: false)
        setup.run(until: { setup.node.leader == nil })
        // Peer 2 leads in term 2; its heartbeats keep the node from
        // campaigning again, for twice forwardTimeout.
        let timeout = setup.node.configuration.forwardTimeout
        try setup.peer.send(.heartbeat(commitIndex: 0, readRound: 0), term: 2, to: setup.endpoint)
        setup.run(until: { setup.node.leader == NodeID(2) })
        let end = setup.network.now + timeout * 2
        while setup.network.now < end {
            try setup.peer.send(.heartbeat(commitIndex: 0, readRound: 0), term: 2, to: setup.endpoint)
            setup.run(for: .milliseconds(50))
        }
        #expect(setup.proposed == nil && setup.read == nil, "still waiting for index 2")
        // The new leader holds L's entry and commits it.
        try setup.peer.send(
            .append(previousIndex: 1, previousTerm: 1, entries: [RaftEntry(term: 1, index: 2, command: Array("P".utf8))],
                    leaderCommit: 2),
            term: 2, to: setup.endpoint)
        setup.run(until: { setup.proposed != nil && setup.read != nil })
        #expect(setup.proposed == .success(Array("P".utf8)))
        #expect(setup.read.map { (try? $0.get()) != nil } == true)
        #expect(setup.log.applied[2] == Array("P".utf8))
    }

    /// Steps the network one event at a time until `condition`.
    static func step(_ cluster: RaftCluster, until condition: () -> Bool, limit: Duration = .seconds(2)) -> Bool {
        let end = cluster.network.now + limit
        while cluster.network.now < end {
            if condition() { return true }
            guard cluster.network.step() else { return false }
        }
        return condition()
    }

    @Test("end to end: a member (a voter, or a learner) removed right after the leader appended its forwarded proposal gets an outcome, not a wait for ever",
          arguments: [false, true])
    func removedRightAfterAppend(learner: Bool) throws {
        let cluster = try RaftCluster(count: 4, seed: 77, initialMembers: learner ? 3 : 4)
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        var next = 0
        if learner {
            try cluster.start(3)
            let added = MembershipChangeTests.change(
                .addLearner(RaftCluster.id(3), endpoint: cluster.simulatedNodes[3].localEndpoint), in: cluster, next: &next)
            #expect(added.map { (try? $0.get()) != nil } == true)
        }
        cluster.run(for: .milliseconds(300))
        let leader = try #require(cluster.leader.flatMap { cluster.rafts[$0] })
        let leaderIndex = try #require(cluster.leader)
        let forwarder = learner ? 3 : (leaderIndex + 1) % 4
        let node = try #require(cluster.rafts[forwarder])
        let appended = leader.lastIndex
        var proposed: Result<[UInt8], RaftError>?
        node.propose(Array("P".utf8)) { proposed = $0 }
        #expect(Self.step(cluster, until: { leader.lastIndex > appended }))
        var removed: Result<Void, RaftError>?
        leader.changeMembership(.remove(RaftCluster.id(forwarder))) { removed = $0 }
        #expect(cluster.run(until: { removed != nil }, limit: .seconds(2)))
        #expect(node.commitIndex <= appended, "it never learned of its entry's commit")
        #expect(cluster.run(until: { proposed != nil }, limit: .seconds(5)), "waited for ever")
        #expect(proposed == .failure(.outcomeUnknown), "\(String(describing: proposed))")
        #expect(node.pendingProposalCount == 0)
        #expect(node.counters.waitsAbandoned == 1)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("a leader cut off with its own proposal pending, and removed by the next leader, fails it outcomeUnknown once it has known no leader for forwardTimeout (two election timeouts if longer)")
    func removedExLeader() throws {
        let cluster = try RaftCluster(count: 3, seed: 91)
        #expect(cluster.run(until: { cluster.leader != nil }, limit: .seconds(5)))
        cluster.run(for: .milliseconds(300))
        let old = try #require(cluster.leader)
        let node = try #require(cluster.rafts[old])
        let others = (0..<3).filter { $0 != old }
        cluster.network.partition([cluster.simulatedNodes[old]], others.map { cluster.simulatedNodes[$0] })
        var proposed: Result<[UInt8], RaftError>?
        node.propose(Array("own".utf8)) { proposed = $0 }
        #expect(cluster.run(until: { cluster.leader.map { $0 != old } ?? false }, limit: .seconds(5)))
        var next = 0
        let removed = MembershipChangeTests.change(.remove(RaftCluster.id(old)), in: cluster, next: &next)
        #expect(removed.map { (try? $0.get()) != nil } == true)
        cluster.network.heal()
        #expect(cluster.run(until: { proposed != nil }, limit: .seconds(10)), "the ex-leader's own proposal waited for ever")
        #expect(proposed == .failure(.outcomeUnknown), "\(String(describing: proposed))")
        // With the load the change ran (proposed at every live node).
        #expect(node.counters.waitsAbandoned >= 1)
        #expect(node.pendingProposalCount == 0)
        #expect(cluster.violations.isEmpty, "\(cluster.violations)")
    }

    @Test("a completion that stops the node while its waits are abandoned: every other completion runs once, as stopped")
    func stopWhileAbandoning() throws {
        let network = SimulatedNetwork(seed: 11)
        let host = network.addNode()
        let leader = ScriptedRaftPeer(1, on: network, target: NodeID(3))
        let peer = ScriptedRaftPeer(2, on: network, target: NodeID(3))
        let node = try RaftNode(
            id: NodeID(3), group: 1, peers: [NodeID(1): leader.host.localEndpoint, NodeID(2): peer.host.localEndpoint],
            storage: InMemoryRaftStorage(), stateMachine: AppliedCommandLog(), transport: host, scheduler: host, seed: 3)
        let endpoint = host.localEndpoint
        func run(until condition: () -> Bool) {
            let end = network.now + .seconds(5)
            while network.now < end && !condition() && network.step() {}
        }
        try leader.send(
            .append(previousIndex: 0, previousTerm: 0, entries: [RaftEntry(term: 1, index: 1, kind: .leaderNoop)],
                    leaderCommit: 1), term: 1, to: endpoint)
        run(until: { node.leader == NodeID(1) && node.appliedIndex == 1 })
        var outcomes: [String: [String]] = [:]
        node.propose(Array("P".utf8)) {
            outcomes["P", default: []].append("\($0)")
            node.stop()
        }
        node.propose(Array("Q".utf8)) { outcomes["Q", default: []].append("\($0)") }
        node.read { outcomes["R1", default: []].append("\($0)") }
        node.read { outcomes["R2", default: []].append("\($0)") }
        run(until: { leader.inbox.filter(\.isForwarding).count == 4 })
        var index: UInt64 = 2
        for message in leader.take() {
            switch message.body {
            case .forwardedProposal(let requestID, _):
                try leader.send(.forwardOutcome(requestID: requestID, outcome: .appended(term: 1, index: index)),
                                term: 1, to: endpoint)
                index += 1
            case .forwardedRead(let requestID):
                try leader.send(.readOutcome(requestID: requestID, index: 3), term: 1, to: endpoint)
            default:
                break
            }
        }
        network.run(for: .milliseconds(10))
        #expect(outcomes.isEmpty)
        run(until: { node.stopped })
        network.run(for: .seconds(1))
        #expect(outcomes.count == 4 && outcomes.values.allSatisfy { $0.count == 1 }, "\(outcomes)")
        #expect(outcomes["Q"] == ["\(Result<[UInt8], RaftError>.failure(.stopped))"], "\(outcomes)")
    }

    @Test("a learner that forgets a silent leader mid-snapshot goes on with the transfer when the leader sends again")
    func snapshotAcrossSilence() throws {
        var now = Instant(nanoseconds: 1_000_000_000)
        var replica = try RaftReplica(
            id: NodeID(3), group: 1, peers: [NodeID(1), NodeID(2)], joining: true, storage: InMemoryRaftStorage(),
            seed: 5, now: now)
        func chunk(_ offset: UInt64) -> RaftMessage {
            RaftMessage(group: 1, from: NodeID(1), to: NodeID(3), term: 1,
                        body: .snapshotChunk(snapshotIndex: 10, snapshotTerm: 1, totalSize: 300, offset: offset,
                                             data: Array(repeating: 7, count: 100)))
        }
        replica.step(chunk(0), now: now)
        _ = replica.ready()
        #expect(replica.leader == NodeID(1))
        now = replica.nextDeadline
        replica.tick(now: now)
        #expect(replica.leader == nil)
        replica.step(chunk(100), now: now + .milliseconds(1))
        let answers = replica.ready().messages.map(\.body)
        #expect(answers == [.snapshotProgress(snapshotIndex: 10, receivedBytes: 200, outOfOrder: false)], "\(answers)")
        #expect(replica.leader == NodeID(1))
    }
}
