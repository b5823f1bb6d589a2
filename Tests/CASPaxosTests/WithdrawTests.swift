@testable import CASPaxos
import EventCore
import Testing

/// ``Proposer/withdraw(_:now:into:)``: a proposal that has sent no accept
/// (queued behind others on its key, backing off, preparing) can be taken
/// back, and fails definitely; one that sent an accept cannot, since the
/// accept may have been taken. The `async` API withdraws a cancelled
/// task's proposal this way (``UDPTests``).
///
/// Driven by hand (``DuplicatedAcceptTests/Cluster``).
@Suite("Withdrawing proposals")
struct WithdrawTests {
    typealias Cluster = DuplicatedAcceptTests.Cluster
    static let key = DuplicatedAcceptTests.key
    static let endpoint = Endpoint.loopbackV4(port: 100)

    /// The result `effects` completes proposal `id` with, if they do.
    static func completion(of id: UInt64, in effects: [CASPaxosEffect]) -> Result<[UInt8]?, CASPaxosError>? {
        for case .proposalCompleted(id, let result) in effects { return result }
        return nil
    }

    static func expectWithdrawn(_ id: UInt64, in effects: [CASPaxosEffect]) {
        guard case .failure(let error)? = completion(of: id, in: effects) else {
            Issue.record("proposal \(id) did not fail: \(effects)")
            return
        }
        #expect(error.code == .withdrawn)
        #expect(!error.isIndeterminate)
    }

    @Test("a proposal queued behind another on its key is withdrawn, definitely; the one running goes on and succeeds")
    func queued() throws {
        var cluster = try Cluster()
        var proposer = try DuplicatedAcceptTests.makeProposer(1)
        var running: [CASPaxosEffect] = []
        let first = try proposer.propose(key: Self.key, change: { _ in [1] }, now: cluster.now, into: &running)
        var effects: [CASPaxosEffect] = []
        let queued = try proposer.propose(key: Self.key, change: { _ in [2] }, now: cluster.now, into: &effects)
        #expect(effects.isEmpty, "queued: it sends nothing")

        #expect(proposer.withdraw(queued, now: cluster.now, into: &effects))
        Self.expectWithdrawn(queued, in: effects)
        #expect(proposer.pendingCount == 1)
        #expect(proposer.counters.proposalsWithdrawn == 1)
        #expect(!proposer.withdraw(queued, now: cluster.now, into: &effects), "it has ended")
        #expect(proposer.counters.proposalsWithdrawn == 1)

        let result = cluster.finish(first, on: &proposer, at: Self.endpoint, startingWith: running)
        #expect(try result?.get() == [1])
        #expect(cluster.values == [[1], [1], [1]])
        #expect(proposer.pendingCount == 0)
    }

    @Test("a preparing proposal is withdrawn: its promises, coming later, are stale replies, and the proposal queued behind it runs")
    func preparing() throws {
        var cluster = try Cluster()
        var proposer = try DuplicatedAcceptTests.makeProposer(1)
        var prepare: [CASPaxosEffect] = []
        let withdrawn = try proposer.propose(key: Self.key, change: { _ in [1] }, now: cluster.now, into: &prepare)
        var effects: [CASPaxosEffect] = []
        let next = try proposer.propose(key: Self.key, change: { ($0 ?? []) + [2] }, now: cluster.now, into: &effects)

        #expect(proposer.withdraw(withdrawn, now: cluster.now, into: &effects))
        Self.expectWithdrawn(withdrawn, in: effects)
        // The next proposal started: its prepare is among the effects.
        #expect(ResendTests.requests(effects).count == 1)

        // The withdrawn prepare reaches the acceptors after all.
        let stale = proposer.counters.staleReplies
        var late: [CASPaxosEffect] = []
        for (from, reply) in cluster.deliver(prepare, from: Self.endpoint) {
            proposer.receive(reply, from: from, now: cluster.now, into: &late)
        }
        #expect(proposer.counters.staleReplies == stale + 3)
        #expect(late.isEmpty)

        let result = cluster.finish(next, on: &proposer, at: Self.endpoint, startingWith: effects)
        #expect(try result?.get() == [2], "the withdrawn change was applied nowhere")
        #expect(cluster.values == [[2], [2], [2]])
    }

    @Test("a proposal that sent an accept is not withdrawn (it may have been taken), with or without a cached ballot")
    func sentAnAccept() throws {
        var cluster = try Cluster()
        var proposer = try DuplicatedAcceptTests.makeProposer(1)
        var effects: [CASPaxosEffect] = []
        let first = try proposer.propose(key: Self.key, change: { _ in [1] }, now: cluster.now, into: &effects)
        // Its promises come: the accept goes out.
        var accept: [CASPaxosEffect] = []
        for (from, reply) in cluster.deliver(effects, from: Self.endpoint) {
            proposer.receive(reply, from: from, now: cluster.now, into: &accept)
        }
        #expect(proposer.mayHaveWritten(first))
        var refused: [CASPaxosEffect] = []
        #expect(!proposer.withdraw(first, now: cluster.now, into: &refused))
        #expect(refused.isEmpty)
        #expect(try cluster.finish(first, on: &proposer, at: Self.endpoint, startingWith: accept)?.get() == [1])

        // The next write of the key takes the cached ballot: its first
        // message is an accept.
        effects.removeAll()
        let second = try proposer.propose(key: Self.key, change: { _ in [2] }, now: cluster.now, into: &effects)
        #expect(proposer.counters.oneRoundTripAttempts == 1)
        #expect(!proposer.withdraw(second, now: cluster.now, into: &refused))
        #expect(refused.isEmpty)
        #expect(try cluster.finish(second, on: &proposer, at: Self.endpoint, startingWith: effects)?.get() == [2])
    }

    @Test("a garbage collection's own proposal is not withdrawn, nor an unknown ID")
    func maintenanceAndUnknown() throws {
        let cluster = try Cluster()
        var proposer = try DuplicatedAcceptTests.makeProposer(1)
        var effects: [CASPaxosEffect] = []
        let task = try proposer.collectGarbage(key: Self.key, proposers: [], now: cluster.now, into: &effects)
        // The task's first step, the tombstone's re-write, is the proposal
        // after it.
        let rewrite = task + 1
        #expect(proposer.proposals[rewrite]?.isMaintenance == true)
        #expect(!proposer.mayHaveWritten(rewrite))
        effects.removeAll()
        #expect(!proposer.withdraw(rewrite, now: cluster.now, into: &effects))
        #expect(!proposer.withdraw(rewrite + 1, now: cluster.now, into: &effects))
        #expect(effects.isEmpty)
        #expect(proposer.pendingCount == 1)
    }
}
