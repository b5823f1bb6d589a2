@testable import CASPaxos
import EventCore
import Testing

/// A proposal outbid again and again on a key another proposer keeps
/// writing in one round trip each (every write raises the key's promise by
/// one): its back-off doubles, so it prepares with a ballot learned ever
/// longer ago and never wins. A maintenance proposal's next ballot jumps by
/// how far the counter moved during its last back-off, so it does (a
/// membership change's re-write of a hot key did not, in a seed sweep of
/// ``MembershipResumeTests``); a client's keeps the plain rule.
@Suite("Retry back-off")
struct RetryBackoffTests {
    typealias Cluster = DuplicatedAcceptTests.Cluster
    static let key = DuplicatedAcceptTests.key
    static let (me, rival) = (Endpoint.loopbackV4(port: 100), Endpoint.loopbackV4(port: 200))

    static func makeProposer(_ id: UInt64) throws -> Proposer {
        try Proposer(
            id: NodeID(id), quorums: .majority(of: DuplicatedAcceptTests.acceptorEndpoints),
            configuration: CASPaxosConfiguration(), seed: id)
    }

    /// The rival writes the key once more, to completion (its second and
    /// later writes take one round trip and promise its next ballot).
    static func rivalWrites(_ cluster: inout Cluster, _ rival: inout Proposer) throws {
        var effects: [CASPaxosEffect] = []
        let id = try rival.propose(key: key, change: DuplicatedAcceptTests.increment, now: cluster.now, into: &effects)
        let result = cluster.finish(id, on: &rival, at: Self.rival, startingWith: effects)
        #expect(result != nil)
    }

    /// Runs one proposal against a rival that writes the key once per 2 ms
    /// of its back-off, the rival's writes landing before each attempt, for
    /// up to 10 attempts: the attempt that won, or nil.
    static func contend(maintenance: Bool) throws -> Int? {
        var cluster = try Cluster()
        var rival = try Self.makeProposer(2)
        var proposer = try Self.makeProposer(1)
        try Self.rivalWrites(&cluster, &rival)
        var effects: [CASPaxosEffect] = []
        let id = try proposer.propose(
            key: Self.key, change: { $0 }, isIdentity: true, needsEveryAcceptor: false,
            exemptFromPendingLimit: maintenance, now: cluster.now, into: &effects)
        var waited = Duration.zero
        for attempt in 1...10 {
            for _ in 0..<max(1, Int(waited / .milliseconds(2))) { try Self.rivalWrites(&cluster, &rival) }
            let replies = cluster.deliver(effects, from: Self.me)
            effects.removeAll()
            for (from, reply) in replies { proposer.receive(reply, from: from, now: cluster.now, into: &effects) }
            guard replies.allSatisfy({ if case .conflict = $0.message { true } else { false } }) else {
                // Promised: the rival pauses and the re-write completes.
                let result = cluster.finish(id, on: &proposer, at: Self.me, startingWith: effects)
                #expect(result == .success(cluster.values[0]), "attempt \(attempt)")
                return attempt
            }
            waited = proposer.nextDeadline - cluster.now
            cluster.now = proposer.nextDeadline
            proposer.tick(now: cluster.now, into: &effects)
        }
        return nil
    }

    @Test("a maintenance proposal outbid by a one-round-trip writer throughout its back-offs wins; a client's does not")
    func outbidPrepares() throws {
        // The first two prepares meet the rival's promise; the jump needs
        // two refusals to measure it.
        let won = try #require(try Self.contend(maintenance: true))
        #expect(won > 2)
        #expect(try Self.contend(maintenance: false) == nil)
    }

    @Test("unanswered attempts double the back-off")
    func unansweredAttempts() throws {
        // Each attempt sends its prepare once: no resend wakes the
        // proposer before the attempt times out.
        var configuration = CASPaxosConfiguration()
        configuration.resendInterval = configuration.attemptTimeout
        var proposer = try Proposer(
            id: NodeID(1), quorums: .majority(of: DuplicatedAcceptTests.acceptorEndpoints),
            configuration: configuration, seed: 1)
        var now = Instant(nanoseconds: 1_000_000_000)
        var effects: [CASPaxosEffect] = []
        _ = try proposer.propose(key: Self.key, change: { _ in [7] }, now: now, into: &effects)
        var backoffs: [Duration] = []
        for _ in 1...5 {
            // The attempt times out, unanswered; the back-off starts.
            now = proposer.nextDeadline
            proposer.tick(now: now, into: &effects)
            backoffs.append(proposer.nextDeadline - now)
            now = proposer.nextDeadline
            proposer.tick(now: now, into: &effects)
        }
        // 2 ms doubling, each drawn at 50–100%: the fifth is 16–32 ms.
        #expect(backoffs[0] <= configuration.initialBackoff)
        #expect(backoffs[4] >= configuration.initialBackoff * 8, "\(backoffs)")
    }

    /// A `.noQuorum` said only "after 13 failed attempts" (an embedder's
    /// walk-through): it names the acceptors that did not answer.
    @Test("a proposal that fails .noQuorum names the acceptors its last attempt heard nothing from")
    func noQuorumNamesTheSilent() throws {
        var proposer = try Self.makeProposer(1)
        let acceptors = DuplicatedAcceptTests.acceptorEndpoints
        var now = Instant(nanoseconds: 1_000_000_000)
        var effects: [CASPaxosEffect] = []
        let id = try proposer.propose(key: Self.key, change: { _ in [7] }, now: now, into: &effects)
        var failure: CASPaxosError?
        // Only the first acceptor answers, every prepare.
        while failure == nil, now < Instant(nanoseconds: 60_000_000_000) {
            for case .sendToEach(.prepare(let request, _, _, _, _), _) in effects {
                proposer.receive(
                    .promise(requestID: request, accepted: .zero, value: nil, removalFloor: nil), from: acceptors[0],
                    now: now, into: &effects)
            }
            for case .proposalCompleted(id, .failure(let error)) in effects { failure = error }
            effects.removeAll()
            now = proposer.nextDeadline
            proposer.tick(now: now, into: &effects)
        }
        let error = try #require(failure)
        #expect(error.code == .noQuorum)
        let silent = acceptors.dropFirst().map(\.description).joined(separator: ", ")
        #expect(error.detail.hasSuffix("; its last prepare: no answer from \(silent)"), "\(error.detail)")
    }
}
