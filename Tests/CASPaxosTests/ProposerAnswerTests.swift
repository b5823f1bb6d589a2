@testable import CASPaxos
import EventCore
import Testing

/// How a ``Proposer`` takes answers that are not what an attempt expects:
/// refusals from endpoints that are no acceptor of its configuration, an
/// acceptance that a refusal from the same acceptor overtook, and the
/// proposals queued on a key whose deadline passed while they waited (a
/// client's fails, a maintenance proposal's deadline starts when it runs).
@Suite("Proposer answers")
struct ProposerAnswerTests {
    static let acceptors = DuplicatedAcceptTests.acceptorEndpoints
    static let stranger = Endpoint.loopbackV4(port: 999)
    static let key = Array("key".utf8)
    static let now = Instant(nanoseconds: 1_000_000_000)

    static func makeProposer() throws -> Proposer {
        try DuplicatedAcceptTests.makeProposer(7)
    }

    /// A proposer with one proposal preparing; returns the prepare's
    /// request ID.
    static func preparing(_ proposer: inout Proposer) throws -> UInt64 {
        var effects: [CASPaxosEffect] = []
        _ = try proposer.propose(key: key, change: { _ in [1] }, now: now, into: &effects)
        return try #require(ProposerRestartTests.prepareRequest(in: effects))
    }

    @Test("a conflict or a stale-age refusal from an endpoint that is no acceptor moves neither the counter nor the age")
    func strangersRefusalsMoveNothing() throws {
        var proposer = try Self.makeProposer()
        let request = try Self.preparing(&proposer)
        var effects: [CASPaxosEffect] = []
        let highest = Ballot(counter: Ballot.maximumCounter, proposer: NodeID(1))
        proposer.receive(
            .conflict(requestID: request, highest: highest, neverAccepted: true), from: Self.stranger, now: Self.now,
            into: &effects)
        proposer.receive(
            .staleAge(requestID: request, minimumAge: ProposerAge.maximumAge), from: Self.stranger, now: Self.now,
            into: &effects)
        #expect(proposer.counter < 10)
        #expect(proposer.age == 0)
        // From an acceptor, the same answers move them.
        proposer.receive(
            .conflict(requestID: request, highest: Ballot(counter: 500, proposer: NodeID(1)), neverAccepted: true),
            from: Self.acceptors[0], now: Self.now, into: &effects)
        proposer.receive(
            .staleAge(requestID: request, minimumAge: 3), from: Self.acceptors[1], now: Self.now, into: &effects)
        #expect(proposer.counter == 500)
        #expect(proposer.age == 3)
    }

    /// An acceptor that took the accept promised the piggybacked next
    /// ballot, so it refuses a repeated copy of the accept; that refusal
    /// may arrive before the acceptance.
    @Test("an acceptance that a refusal from the same acceptor overtook still counts toward the quorum")
    func acceptanceAfterRefusalCounts() throws {
        var proposer = try Self.makeProposer()
        let request = try Self.preparing(&proposer)
        var effects: [CASPaxosEffect] = []
        for acceptor in Self.acceptors.prefix(2) {
            proposer.receive(
                .promise(requestID: request, accepted: .zero, value: nil, removalFloor: nil), from: acceptor,
                now: Self.now, into: &effects)
        }
        guard case .sendToEach(.acceptWithParent(let accept, _, let ballot, _, _, _, _, let next), _)? = effects.last else {
            Issue.record("no accept: \(effects)")
            return
        }
        effects.removeAll()
        proposer.receive(
            .conflict(requestID: accept, highest: next ?? ballot, neverAccepted: false), from: Self.acceptors[0],
            now: Self.now, into: &effects)
        proposer.receive(.accepted(requestID: accept), from: Self.acceptors[0], now: Self.now, into: &effects)
        proposer.receive(.accepted(requestID: accept), from: Self.acceptors[1], now: Self.now, into: &effects)
        guard case .proposalCompleted(_, .success(let value))? = effects.last else {
            Issue.record("the write did not complete: \(effects)")
            return
        }
        #expect(value == [1])
        #expect(proposer.counters.unexpectedMessages == 0)
    }

    @Test("proposals queued on a key whose deadline passed fail with a timeout, sending nothing, when the one ahead ends")
    func expiredQueueSendsNothing() throws {
        var proposer = try Self.makeProposer()
        var effects: [CASPaxosEffect] = []
        let ids = try (0..<50).map { value in
            try proposer.propose(key: Self.key, change: { _ in [UInt8(value)] }, now: Self.now, into: &effects)
        }
        // No acceptor answers: the first proposal retries to its deadline,
        // which the others share.
        let deadline = Self.now + proposer.configuration.proposalTimeout
        var now = Self.now
        while now < deadline {
            now = min(proposer.nextDeadline, deadline)
            effects.removeAll()
            proposer.tick(now: now, into: &effects)
        }
        let sent = effects.filter { effect in
            switch effect {
            case .send, .sendToEach: true
            case .persist, .proposalCompleted, .maintenanceCompleted: false
            }
        }
        #expect(sent.isEmpty, "\(sent.count) messages sent at the deadline")
        var failures: [UInt64: CASPaxosError.Code] = [:]
        for case .proposalCompleted(let id, .failure(let error)) in effects { failures[id] = error.code }
        #expect(failures.count == 50)
        #expect(failures[ids[0]] == .noQuorum)
        #expect(ids.dropFirst().allSatisfy { failures[$0] == .timeout })
        #expect(proposer.pendingCount == 0)
    }

    @Test("a maintenance proposal queued behind a client's proposal gets a whole proposal timeout once it runs")
    func queuedMaintenanceStartsItsDeadline() throws {
        var proposer = try Self.makeProposer()
        var effects: [CASPaxosEffect] = []
        let client = try proposer.propose(key: Self.key, change: { _ in [1] }, now: Self.now, into: &effects)
        let rewrite = try proposer.propose(
            key: Self.key, change: { $0 }, isIdentity: true, needsEveryAcceptor: false, exemptFromPendingLimit: true,
            now: Self.now, into: &effects)
        // No acceptor answers: the client's proposal retries to its
        // deadline; the re-write, queued since, starts then.
        let timeout = proposer.configuration.proposalTimeout
        var now = Self.now
        var ended: [UInt64: (CASPaxosError.Code, Instant)] = [:]
        while ended.count < 2 && now < Self.now + timeout * 3 {
            now = proposer.nextDeadline
            effects.removeAll()
            proposer.tick(now: now, into: &effects)
            for case .proposalCompleted(let id, .failure(let error)) in effects { ended[id] = (error.code, now) }
        }
        #expect(ended[client]?.1 == Self.now + timeout)
        // Then the re-write retries, unanswered, until its own deadline
        // (or a back-off that would pass it) for most of a timeout (its
        // deadline ran from the queue's once, and it failed with `.timeout`
        // as it left the queue, sending nothing).
        #expect(ended[rewrite]?.0 == .noQuorum, "\(String(describing: ended[rewrite]))")
        let end = try #require(ended[rewrite]?.1)
        #expect(end > Self.now + timeout + timeout * 0.9 && end <= Self.now + timeout * 2)
    }
}
