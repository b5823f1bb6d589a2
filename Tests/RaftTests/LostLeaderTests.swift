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
}
