@testable import CASPaxos
import EventCore
import Testing

/// The back-off between a proposal's attempts doubles with the attempts
/// that were preempted or went unanswered, not with prepares refused
/// outright. On a key another proposer writes in one round trip each, every
/// write raises the key's promise by one: a proposal whose back-off had
/// grown to 100 ms would prepare below the promise again on every retry,
/// and never win (a membership change's re-write of a hot key did, in a
/// seed sweep of ``MembershipResumeTests``).
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

    @Test("prepares outbid by a one-round-trip writer retry after the first back-off, every time")
    func outbidPrepares() throws {
        var cluster = try Cluster()
        var rival = try Self.makeProposer(2)
        var proposer = try Self.makeProposer(1)
        let initial = CASPaxosConfiguration().initialBackoff
        try Self.rivalWrites(&cluster, &rival)
        var effects: [CASPaxosEffect] = []
        _ = try proposer.propose(key: Self.key, change: { _ in [7] }, now: cluster.now, into: &effects)
        for attempt in 1...8 {
            // The rival's write lands first: the prepare meets its promise.
            try Self.rivalWrites(&cluster, &rival)
            let replies = cluster.deliver(effects, from: Self.me)
            #expect(replies.allSatisfy { if case .conflict = $0.message { true } else { false } })
            effects.removeAll()
            for (from, reply) in replies { proposer.receive(reply, from: from, now: cluster.now, into: &effects) }
            #expect(effects.isEmpty)
            let backoff = proposer.nextDeadline - cluster.now
            #expect(backoff > .zero && backoff <= initial, "attempt \(attempt): \(backoff)")
            cluster.now = proposer.nextDeadline
            proposer.tick(now: cluster.now, into: &effects)
        }
        #expect(proposer.counters.failedAttempts == 8)
        // Left alone, the ninth attempt wins.
        #expect(cluster.finish(1, on: &proposer, at: Self.me, startingWith: effects) == .success([7]))
    }

    @Test("unanswered attempts double the back-off")
    func unansweredAttempts() throws {
        var proposer = try Self.makeProposer(1)
        let configuration = CASPaxosConfiguration()
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
}
