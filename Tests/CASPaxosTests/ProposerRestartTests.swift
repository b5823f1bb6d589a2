import CASPaxos
import EventCore
import Testing

/// A proposer restarted at the same endpoint is a new incarnation with a
/// new ID; replies to its previous incarnation, delayed past the restart,
/// must not count for its own requests.
@Suite("Proposer incarnations")
struct ProposerRestartTests {
    static let acceptors = (1...3).map { Endpoint.loopbackV4(port: UInt16($0)) }
    static let now = Instant(nanoseconds: 1_000_000_000)
    static let key = Array("k".utf8)

    /// The request ID of the first prepare among `effects`.
    static func prepareRequest(in effects: [CASPaxosEffect]) -> UInt64? {
        for effect in effects {
            if case .sendToEach(.prepare(let requestID, _, _, _, _), _) = effect { return requestID }
            if case .send(.prepare(let requestID, _, _, _, _), _) = effect { return requestID }
        }
        return nil
    }

    @Test("a quorum of promises to the previous incarnation's request does not start the next one's accept phase")
    func delayedPromisesAreStale() throws {
        let quorums = AcceptorQuorums.majority(of: Self.acceptors)
        var effects: [CASPaxosEffect] = []
        var previous = try Proposer(id: NodeID(41), quorums: quorums, configuration: CASPaxosConfiguration(), seed: 1)
        _ = try previous.propose(key: Self.key, change: { _ in [1] }, now: Self.now, into: &effects)
        let oldRequest = try #require(Self.prepareRequest(in: effects))

        effects.removeAll()
        var next = try Proposer(id: NodeID(42), quorums: quorums, configuration: CASPaxosConfiguration(), seed: 1)
        _ = try next.propose(key: Self.key, change: { _ in [2] }, now: Self.now, into: &effects)
        let newRequest = try #require(Self.prepareRequest(in: effects))
        #expect(newRequest != oldRequest)

        effects.removeAll()
        for acceptor in Self.acceptors {
            next.receive(.promise(requestID: oldRequest, accepted: .zero, value: nil, removalFloor: nil), from: acceptor, now: Self.now,
                         into: &effects)
        }
        #expect(next.counters.staleReplies == 3)
        #expect(effects.isEmpty, "the stale promises moved the proposal on: \(effects)")
    }
}
