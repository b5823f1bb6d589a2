@testable import CASPaxos
import EventCore
import Testing

/// A proposer matches replies to its requests by request ID, through an
/// ``IdentifierIndex`` that holds no 0: a request of ID 0 would have every
/// reply counted stale and wait out its attempt. The proposer never issues
/// 0, neither as the first ID of a proposer of ID 0 nor where its IDs wrap.
@Suite("Request IDs")
struct RequestIDTests {
    static let acceptors = ProposerRestartTests.acceptors
    static let now = ProposerRestartTests.now

    /// Proposes a write of `key`, answers its prepare with promises from a
    /// quorum (the first two acceptors) and its accept with acceptances from
    /// the same two: the two requests' IDs (the accept's nil if the promises
    /// did not start the accept phase), and whether the write succeeded.
    static func write(_ proposer: inout Proposer, key: String) throws -> (prepare: UInt64, accept: UInt64?, succeeded: Bool) {
        var effects: [CASPaxosEffect] = []
        _ = try proposer.propose(key: Array(key.utf8), change: { _ in [1] }, now: now, into: &effects)
        let prepare = try #require(ProposerRestartTests.prepareRequest(in: effects))
        effects.removeAll()
        for acceptor in acceptors.prefix(2) {
            proposer.receive(
                .promise(requestID: prepare, accepted: .zero, value: nil, removalFloor: nil), from: acceptor,
                now: now, into: &effects)
        }
        guard let accept = effects.lazy.compactMap({ effect -> UInt64? in
            if case .sendToEach(.acceptWithParent(let requestID, _, _, _, _, _, _, _), _) = effect { requestID } else { nil }
        }).first
        else { return (prepare, nil, false) }
        effects.removeAll()
        for acceptor in acceptors.prefix(2) { proposer.receive(.accepted(requestID: accept), from: acceptor, now: now, into: &effects) }
        let succeeded = effects.contains {
            if case .proposalCompleted(_, .success) = $0 { true } else { false }
        }
        return (prepare, accept, succeeded)
    }

    static func makeProposer(_ id: UInt64) throws -> Proposer {
        try Proposer(
            id: NodeID(id), quorums: .majority(of: acceptors), configuration: CASPaxosConfiguration(), seed: 1)
    }

    @Test("a proposer of ID 0 does not issue request 0: its first write completes on its first answers")
    func proposerZero() throws {
        var proposer = try Self.makeProposer(0)
        let write = try Self.write(&proposer, key: "a")
        #expect(write.prepare != 0)
        #expect(write.succeeded)
        #expect(proposer.counters.staleReplies == 0)
    }

    @Test("request IDs wrap from 2⁶⁴ − 1 to 1, skipping 0: the write across the wrap completes on its first answers")
    func wrap() throws {
        // The ID whose first request ID is 2⁶⁴ − 1.
        let id: UInt64 = 0x0E21_7C1E_66C8_8CC3
        #expect(Proposer.firstRequestID(for: NodeID(id)) == .max)
        var proposer = try Self.makeProposer(id)
        let write = try Self.write(&proposer, key: "a")
        #expect(write.prepare == .max)
        #expect(write.accept == 1)
        #expect(write.succeeded)
        #expect(proposer.counters.staleReplies == 0)
    }
}
