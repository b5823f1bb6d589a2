import EventCore
@testable import Raft
import Simulation
import Testing
import WireCodec

/// A proposal whose entry another of a later term replaced in this node's
/// log may still commit: the later entry need not, and a later leader that
/// holds the earlier one may commit it (Figure 8 of the Raft paper). The
/// proposal must wait for its index, not fail `proposalDropped` ("not
/// committed, and will not be": a client would retry it and apply it
/// twice).
///
/// One real ``RaftNode`` (A, ID 1) plays against two peers, B (2) and C
/// (3), whose messages the test writes by hand, so that the execution is
/// exactly the one the paper draws.
@Suite("Displaced proposals")
struct DisplacedProposalTests {
    @Test("a proposal whose entry a later term's replaced here waits for its index, and succeeds when a later leader commits it")
    func displacedProposalCommitsLater() throws {
        let network = SimulatedNetwork(seed: 8)
        let host = network.addNode()
        let b = ScriptedRaftPeer(2, on: network)
        let c = ScriptedRaftPeer(3, on: network)
        var configuration = RaftConfiguration()
        configuration.preVote = false
        configuration.checkQuorum = false
        let log = AppliedCommandLog()
        let a = try RaftNode(
            id: NodeID(1), group: 1, peers: [NodeID(2): b.host.localEndpoint, NodeID(3): c.host.localEndpoint],
            storage: InMemoryRaftStorage(), stateMachine: log, transport: host, scheduler: host,
            configuration: configuration, seed: 1)
        let endpoint = host.localEndpoint
        func run(until condition: () -> Bool) {
            let end = network.now + .seconds(5)
            while network.now < end && !condition() && network.step() {}
        }

        // Term 1: A leads with B's vote; its no-op (1,1) commits with B.
        run(until: { a.role == .candidate })
        try b.send(.voteResponse(granted: true, isPreVote: false), term: 1, to: endpoint)
        run(until: { a.role == .leader })
        try b.send(.appendResponse(.accepted(matchIndex: 1)), term: 1, to: endpoint)
        run(until: { a.commitIndex == 1 })
        // A appends X at (1,2) and Z at (1,3); they reach no one.
        var outcomes: [String: Result<[UInt8], RaftError>] = [:]
        a.propose(Array("X".utf8)) { outcomes["X"] = $0 }
        a.propose(Array("Z".utf8)) { outcomes["Z"] = $0 }
        run(until: { a.lastIndex == 3 && !b.inbox.isEmpty })
        _ = b.take()
        _ = c.take()

        // Term 2: C elected B (whose log is [(1,1)]); B's no-op (2,2)
        // reaches no one. A hears B's heartbeat and follows it; A's next
        // proposal, Y, goes to B, which appends it at (2,3), Z's index.
        try b.send(.heartbeat(commitIndex: 0, readRound: 0), term: 2, to: endpoint)
        run(until: { a.term == 2 && a.leader == NodeID(2) })
        a.propose(Array("Y".utf8)) { outcomes["Y"] = $0 }
        run(until: { b.inbox.contains { $0.isForwarding } })
        guard case .forwardedProposal(let request, _)? = b.take().first(where: \.isForwarding)?.body else {
            Issue.record("A forwarded nothing to B")
            return
        }
        try b.send(.forwardOutcome(requestID: request, outcome: .appended(term: 2, index: 3)), term: 2, to: endpoint)
        let answered = network.now + .milliseconds(20)
        run(until: { network.now >= answered })
        #expect(outcomes["Z"] == nil, "Z failed though it may still commit: \(String(describing: outcomes["Z"]))")
        #expect(a.pendingProposalCount == 3)

        // B fails. C (log [(1,1)]) elects A in term 3; A brings C up to
        // date and commits (3,4), and (1,2) and (1,3) with it.
        run(until: { a.role == .candidate && a.term == 3 })
        try c.send(.voteResponse(granted: true, isPreVote: false), term: 3, to: endpoint)
        run(until: { a.role == .leader })
        for _ in 0..<20 where a.commitIndex < 4 {
            run(until: { c.inbox.contains { if case .append = $0.body { true } else { false } } })
            for sent in c.take() {
                guard case .append(let previousIndex, _, let entries, _) = sent.body else { continue }
                let answer: RaftMessage.AppendResult =
                    previousIndex <= 1
                    ? .accepted(matchIndex: previousIndex + UInt64(entries.count))
                    : .rejected(rejectedIndex: previousIndex, conflictTerm: 0, conflictIndex: 2)
                try c.send(.appendResponse(answer), term: 3, to: endpoint)
            }
            run(until: { !c.inbox.isEmpty || a.commitIndex >= 4 })
        }
        run(until: { a.appliedIndex >= 4 })
        #expect(log.applied[2] == Array("X".utf8) && log.applied[3] == Array("Z".utf8))
        #expect(outcomes["X"] == .success(Array("X".utf8)))
        #expect(outcomes["Z"] == .success(Array("Z".utf8)))
        #expect(outcomes["Y"] == .failure(.proposalDropped))
        #expect(a.pendingProposalCount == 0)
    }
}
