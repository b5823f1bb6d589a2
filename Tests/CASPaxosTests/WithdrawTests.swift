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

    /// Proposer 7 writes (caching its next ballot), proposer 8 writes on
    /// top, then proposer 7's stale one-round-trip accept goes to every
    /// acceptor, each refusing it knowing it never took it.
    @Test("backing off after an accept: withdrawn only once every acceptor proved the accept unwritten; a copy of it later changes nothing")
    func backingOffAfterAnAccept() throws {
        var cluster = try Cluster()
        var proposers = [try DuplicatedAcceptTests.makeProposer(7), try DuplicatedAcceptTests.makeProposer(8)]
        let endpoints = [Endpoint.loopbackV4(port: 100), .loopbackV4(port: 101)]
        for (writer, expected) in [(0, [UInt8(1)]), (1, [2])] {
            var effects: [CASPaxosEffect] = []
            let id = try proposers[writer].propose(
                key: Self.key, change: DuplicatedAcceptTests.increment, now: cluster.now, into: &effects)
            #expect(try cluster.finish(id, on: &proposers[writer], at: endpoints[writer], startingWith: effects)?.get() == expected)
        }
        var proposer = proposers[0]
        var accept: [CASPaxosEffect] = []
        let id = try proposer.propose(key: Self.key, change: DuplicatedAcceptTests.increment, now: cluster.now, into: &accept)
        #expect(proposer.counters.oneRoundTripAttempts == 1)
        let refusals = cluster.deliver(accept, from: endpoints[0])
        #expect(refusals.count == 3)
        #expect(refusals.allSatisfy { if case .conflict(_, _, true) = $0.message { true } else { false } })

        // Two refusals abandon the attempt: it backs off, but the third
        // acceptor may still have taken the accept.
        var effects: [CASPaxosEffect] = []
        for (from, refusal) in refusals.prefix(2) { proposer.receive(refusal, from: from, now: cluster.now, into: &effects) }
        guard case .backingOff? = proposer.proposals[id]?.phase else {
            Issue.record("not backing off: \(String(describing: proposer.proposals[id]?.phase))")
            return
        }
        #expect(proposer.mayHaveWritten(id))
        #expect(!proposer.withdraw(id, now: cluster.now, into: &effects))
        #expect(effects.isEmpty)

        // The third refusal proves the accept written nowhere.
        proposer.receive(refusals[2].message, from: refusals[2].from, now: cluster.now, into: &effects)
        #expect(!proposer.mayHaveWritten(id))
        #expect(proposer.withdraw(id, now: cluster.now, into: &effects))
        Self.expectWithdrawn(id, in: effects)
        #expect(proposer.pendingCount == 0)

        // A copy of the accept, repeated by the network, is refused again.
        _ = cluster.deliver(accept, from: endpoints[0])
        #expect(cluster.values == [[2], [2], [2]])
    }

    @Test("a retry waiting for its last accept's missing answers is not withdrawn; nor once it writes afresh")
    func awaitingLastAccept() throws {
        var cluster = try Cluster()
        var (proposer, id, effects, heldBack) = try DuplicatedAcceptTests.staleAcceptRetryBeforeLastRefusal(in: &cluster)
        #expect(proposer.proposals[id]?.phase == .awaitingLastAccept)
        #expect(!proposer.withdraw(id, now: cluster.now, into: &effects))
        #expect(effects.isEmpty)
        // The last refusal: the retry's accept goes out at once.
        proposer.receive(heldBack.1, from: heldBack.0, now: cluster.now, into: &effects)
        #expect(proposer.proposals[id]?.phase == .accepting)
        #expect(!proposer.withdraw(id, now: cluster.now, into: &effects))
        let result = cluster.finish(id, on: &proposer, at: .loopbackV4(port: 100), startingWith: effects)
        #expect(try result?.get() == [3])
    }

    /// Before, every incarnation numbered its proposals from 1, so an ID
    /// kept past a restart withdrew the next incarnation's proposal of the
    /// same number.
    @Test("an ID from another incarnation of the proposer withdraws nothing; IDs are never 0, even when they wrap")
    func anotherIncarnationsID() throws {
        let cluster = try Cluster()
        var before = try DuplicatedAcceptTests.makeProposer(1)
        var effects: [CASPaxosEffect] = []
        let old = try before.propose(key: Self.key, change: { _ in [1] }, now: cluster.now, into: &effects)
        var after = try DuplicatedAcceptTests.makeProposer(2)
        let new = try after.propose(key: Self.key, change: { _ in [2] }, now: cluster.now, into: &effects)
        #expect(old != new)
        effects.removeAll()
        #expect(!after.withdraw(old, now: cluster.now, into: &effects))
        #expect(effects.isEmpty)
        #expect(after.pendingCount == 1)

        after.nextProposalID = .max
        let last = try after.propose(key: [9], change: { _ in [3] }, now: cluster.now, into: &effects)
        let wrapped = try after.propose(key: [8], change: { _ in [4] }, now: cluster.now, into: &effects)
        #expect((last, wrapped) == (.max, 1))
        #expect(after.withdraw(wrapped, now: cluster.now, into: &effects), "a wrapped ID is looked up as any other")
        #expect(Proposer.firstProposalID(for: NodeID(0)) == 1)
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
