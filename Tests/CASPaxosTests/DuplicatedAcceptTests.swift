@testable import CASPaxos
import EventCore
import Testing

/// A proposer retries an attempt whose accept was refused by every acceptor
/// as if nothing had been written. A duplicated accept must not pass for
/// such a refusal: an acceptor takes a copy of an accept it still holds
/// again, but refuses one it took and has replaced since (another
/// proposer's later write), and counting those refusals once made a retry
/// apply the change a second time. A refusal proves the accept unwritten only when the acceptor knows
/// it never accepted it (``CASPaxosMessage/conflict(requestID:highest:neverAccepted:)``),
/// and under contention it usually does know (``RegisterState``).
///
/// The proposers and acceptors here are driven by hand, so that each
/// message can be delivered, lost or repeated exactly as the scenario
/// needs.
@Suite("Duplicated accepts")
struct DuplicatedAcceptTests {
    static let acceptorEndpoints = (1...3).map { Endpoint.loopbackV4(port: UInt16($0)) }
    static let key = Array("counter".utf8)
    static let increment: CASPaxosChange = { current in [(current?.first ?? 0) &+ 1] }

    /// Acceptors (three by default, at ``acceptorEndpoints``) and the
    /// proposers that talk to them.
    struct Cluster {
        var acceptors: [Acceptor]
        let endpoints: [Endpoint]
        var now = Instant(nanoseconds: 1_000_000_000)

        init(acceptors count: Int = 3) throws {
            acceptors = try (0..<count).map { _ in try Acceptor(configuration: CASPaxosConfiguration()) }
            endpoints = (1...count).map { Endpoint.loopbackV4(port: UInt16($0)) }
        }

        var values: [[UInt8]?] { acceptors.map { $0.register(DuplicatedAcceptTests.key)?.value } }

        /// Delivers every message `effects` sends to an acceptor (of
        /// `reached`, by position, if given), `copies` times, from
        /// `sender`; returns the replies (the test delivers or drops them).
        mutating func deliver(
            _ effects: [CASPaxosEffect], from sender: Endpoint, reaching reached: (any Collection<Int>)? = nil,
            copies: Int = 1
        ) -> [(from: Endpoint, message: CASPaxosMessage)] {
            var replies: [(from: Endpoint, message: CASPaxosMessage)] = []
            for effect in effects {
                let sends: [(CASPaxosMessage, Endpoint)]
                switch effect {
                case .send(let message, let destination): sends = [(message, destination)]
                case .sendToEach(let message, let destinations): sends = destinations.map { (message, $0) }
                case .persist, .proposalCompleted, .maintenanceCompleted: continue
                }
                for (message, destination) in sends {
                    guard let index = endpoints.firstIndex(of: destination), reached?.contains(index) ?? true else {
                        continue
                    }
                    for _ in 0..<copies {
                        var out: [CASPaxosEffect] = []
                        acceptors[index].receive(message, from: sender, into: &out)
                        for case .send(let reply, _) in out { replies.append((destination, reply)) }
                    }
                }
            }
            return replies
        }

        /// Runs `proposer` (at `endpoint`) with every message delivered,
        /// ticking past back-offs, until proposal `id` completes.
        mutating func finish(
            _ id: UInt64, on proposer: inout Proposer, at endpoint: Endpoint, startingWith pending: [CASPaxosEffect],
            reaching reached: Range<Int>? = nil
        ) -> Result<[UInt8]?, CASPaxosError>? {
            var effects = pending
            for _ in 0..<100 {
                for case .proposalCompleted(id, let result) in effects { return result }
                let replies = deliver(effects, from: endpoint, reaching: reached)
                effects.removeAll()
                for (from, reply) in replies { proposer.receive(reply, from: from, now: now, into: &effects) }
                if effects.isEmpty {
                    now = now + .milliseconds(20)
                    proposer.tick(now: now, into: &effects)
                }
            }
            return nil
        }
    }

    /// A proposer of ID `id`; with `parents` false, one whose accepts do
    /// not name their value's parent (``CASPaxosConfiguration/isParentBallotEnabled``),
    /// as in a cluster being upgraded: its retries decide without them.
    static func makeProposer(_ id: UInt64, parents: Bool = true) throws -> Proposer {
        var configuration = CASPaxosConfiguration()
        configuration.isParentBallotEnabled = parents
        return try Proposer(
            id: NodeID(id), quorums: .majority(of: acceptorEndpoints), configuration: configuration, seed: id)
    }

    /// Prepares and accepts `increment` everywhere, losing every
    /// `accepted` reply; returns the accept's effects (to repeat them).
    static func acceptEverywhereLosingReplies(
        _ proposer: inout Proposer, at endpoint: Endpoint, in cluster: inout Cluster
    ) throws -> (id: UInt64, accept: [CASPaxosEffect]) {
        var effects: [CASPaxosEffect] = []
        let id = try proposer.propose(key: key, change: increment, now: cluster.now, into: &effects)
        let promises = cluster.deliver(effects, from: endpoint)
        effects.removeAll()
        for (from, reply) in promises { proposer.receive(reply, from: from, now: cluster.now, into: &effects) }
        _ = cluster.deliver(effects, from: endpoint)
        return (id, effects)
    }

    /// `CASPaxosNode.stop()` fails a proposal that may have written as
    /// `.conflict` (indeterminate), not `.notAvailable`, by this answer.
    /// A delayed copy of a collection's re-write of the tombstone, at the
    /// ballot whose promise became the floor, must not make the removed key
    /// again: a tombstone nothing would collect.
    @Test("an absent key refuses a ballot at the removal floor and takes the next one above it")
    func removalFloorRefusesItsOwnBallot() throws {
        let floor = Ballot(counter: 9, proposer: NodeID(4))
        var acceptor = try Acceptor(
            recovering: AcceptorSnapshot(removalFloor: floor), configuration: CASPaxosConfiguration())
        var effects: [CASPaxosEffect] = []
        acceptor.receive(
            .accept(requestID: 1, key: Self.key, ballot: floor, age: 0, value: nil, nextBallot: nil, version: .zero),
            from: Self.acceptorEndpoints[0], into: &effects)
        #expect(acceptor.register(Self.key) == nil)
        guard case .send(.conflict(1, let highest, _), _)? = effects.last else {
            Issue.record("no conflict: \(effects)")
            return
        }
        #expect(highest > floor)
        let above = Ballot(counter: 9, proposer: NodeID(5))
        acceptor.receive(
            .accept(requestID: 2, key: Self.key, ballot: above, age: 0, value: [1], nextBallot: nil, version: .zero),
            from: Self.acceptorEndpoints[0], into: &effects)
        #expect(acceptor.register(Self.key)?.accepted == above)
    }

    @Test("a proposal may have written once its accepts went out, not before")
    func mayHaveWritten() throws {
        var cluster = try Cluster()
        var proposer = try Self.makeProposer(7)
        let endpoint = Endpoint.loopbackV4(port: 100)
        var effects: [CASPaxosEffect] = []
        let id = try proposer.propose(key: Self.key, change: Self.increment, now: cluster.now, into: &effects)
        #expect(!proposer.mayHaveWritten(id), "only prepares went out")
        let promises = cluster.deliver(effects, from: endpoint)
        effects.removeAll()
        for (from, reply) in promises { proposer.receive(reply, from: from, now: cluster.now, into: &effects) }
        #expect(proposer.mayHaveWritten(id), "the accepts went out")
        #expect(!proposer.mayHaveWritten(id &+ 1000))
    }

    @Test("a repeated accept that every acceptor took is taken again, and the write completes once")
    func repeatedAcceptIsTakenAgain() throws {
        var cluster = try Cluster()
        var proposer = try Self.makeProposer(7)
        let endpoint = Endpoint.loopbackV4(port: 100)
        let (id, accept) = try Self.acceptEverywhereLosingReplies(&proposer, at: endpoint, in: &cluster)
        #expect(cluster.values == [[1], [1], [1]])
        // The network repeats the accept (or the proposer resends it):
        // every acceptor takes the copy again, though it promised the next
        // ballot the accept carried since.
        let answers = cluster.deliver(accept, from: endpoint)
        #expect(answers.count == 3)
        var effects: [CASPaxosEffect] = []
        for (from, answer) in answers {
            guard case .accepted = answer else {
                Issue.record("not an acceptance: \(answer)")
                continue
            }
            proposer.receive(answer, from: from, now: cluster.now, into: &effects)
        }
        let result = cluster.finish(id, on: &proposer, at: endpoint, startingWith: effects)
        #expect(try result?.get() == [1], "\(String(describing: result))")
        #expect(cluster.values == [[1], [1], [1]])
        #expect(cluster.acceptors.map(\.counters.repeatedAcceptances) == [1, 1, 1])
    }

    @Test(
        "refusals of a repeated accept under a newer write built on it: the retry finds its value the write's parent and succeeds; without parents it fails indeterminate; it never writes again",
        arguments: [true, false])
    func repeatedAcceptUnderANewerWrite(parents: Bool) throws {
        var cluster = try Cluster()
        var first = try Self.makeProposer(7, parents: parents)
        let firstEndpoint = Endpoint.loopbackV4(port: 100)
        let (id, accept) = try Self.acceptEverywhereLosingReplies(&first, at: firstEndpoint, in: &cluster)
        // Another proposer increments on top of the first one's value.
        var second = try Self.makeProposer(8, parents: parents)
        let secondEndpoint = Endpoint.loopbackV4(port: 101)
        var effects: [CASPaxosEffect] = []
        let secondID = try second.propose(key: Self.key, change: Self.increment, now: cluster.now, into: &effects)
        let secondResult = cluster.finish(secondID, on: &second, at: secondEndpoint, startingWith: effects)
        #expect(try secondResult?.get() == [2])
        // Now the first proposer's accept is repeated, and refused by all:
        // the acceptors hold the second proposer's newer ballot, so the
        // refusals prove nothing about the first accept.
        effects.removeAll()
        for (from, refusal) in cluster.deliver(accept, from: firstEndpoint) {
            first.receive(refusal, from: from, now: cluster.now, into: &effects)
        }
        let result = cluster.finish(id, on: &first, at: firstEndpoint, startingWith: effects)
        #expect(cluster.values == [[2], [2], [2]], "the first increment applied once, inside the second's value")
        if parents {
            // The second value names the first's ballot as its parent: the
            // retry writes it back and returns what its own change made.
            #expect(try result?.get() == [1], "\(String(describing: result))")
            #expect(first.counters.rivalValuesBuiltOnOwn == 1)
            return
        }
        guard case .failure(let error) = result else {
            Issue.record("the first increment must fail indeterminate: \(String(describing: result))")
            return
        }
        #expect(error.isIndeterminate, "\(error)")
    }

    @Test("a stale one-round-trip accept after another proposer's writes is refused as unwritten and retried cleanly")
    func staleCachedAcceptRetriesCleanly() throws {
        var cluster = try Cluster()
        var proposers = [try Self.makeProposer(7), try Self.makeProposer(8)]
        let endpoints = [Endpoint.loopbackV4(port: 100), .loopbackV4(port: 101)]
        // Proposer 0 writes (and caches its next ballot), proposer 1 writes
        // twice on top, then proposer 0 writes again with its stale cache.
        for (writer, expected) in [(0, [UInt8(1)]), (1, [2]), (1, [3]), (0, [4])] {
            var effects: [CASPaxosEffect] = []
            let id = try proposers[writer].propose(key: Self.key, change: Self.increment, now: cluster.now, into: &effects)
            let result = cluster.finish(id, on: &proposers[writer], at: endpoints[writer], startingWith: effects)
            #expect(try result?.get() == expected, "writer \(writer): \(String(describing: result))")
        }
        #expect(proposers[0].counters.failedAttempts == 1, "the stale accept was refused once, then retried")
        #expect(cluster.values == [[4], [4], [4]])
    }

    /// Proposer 0 writes (caching its next ballot), proposer 1 writes on
    /// top (on the acceptors `secondWriteReaches`, by default all), then
    /// proposer 0 sends its stale one-round-trip accept, which the
    /// acceptors proposer 1 reached refuse as unwritten. Only the first two
    /// answers arrive at once, refusals that abandon the attempt; after the
    /// back-off the retry's prepare reaches its quorum and finds proposer
    /// 1's ballot above the refused accept. Returns proposer 0, its
    /// proposal, the retry's pending effects and the third answer, held
    /// back.
    /// With `parents` (off by default: the wait is what decides without
    /// them), the prepare decides at once instead.
    static func staleAcceptRetryBeforeLastRefusal(
        in cluster: inout Cluster, secondWriteReaches: Range<Int>? = nil, parents: Bool = false
    ) throws -> (proposer: Proposer, id: UInt64, effects: [CASPaxosEffect], heldBack: (Endpoint, CASPaxosMessage)) {
        var proposers = [try makeProposer(7, parents: parents), try makeProposer(8, parents: parents)]
        let endpoints = [Endpoint.loopbackV4(port: 100), .loopbackV4(port: 101)]
        for (writer, expected) in [(0, [UInt8(1)]), (1, [2])] {
            var effects: [CASPaxosEffect] = []
            let id = try proposers[writer].propose(key: key, change: increment, now: cluster.now, into: &effects)
            let result = cluster.finish(
                id, on: &proposers[writer], at: endpoints[writer], startingWith: effects,
                reaching: writer == 1 ? secondWriteReaches : nil)
            #expect(try result?.get() == expected)
        }
        var proposer = proposers[0]
        var effects: [CASPaxosEffect] = []
        let id = try proposer.propose(key: key, change: increment, now: cluster.now, into: &effects)
        #expect(proposer.counters.oneRoundTripAttempts == 1)
        let refusals = cluster.deliver(effects, from: endpoints[0])
        #expect(refusals.count == 3)
        #expect(refusals.prefix(2).allSatisfy { if case .conflict(_, _, true) = $0.message { true } else { false } })
        effects.removeAll()
        for (from, refusal) in refusals.prefix(2) { proposer.receive(refusal, from: from, now: cluster.now, into: &effects) }
        #expect(proposer.counters.failedAttempts == 1)
        // The back-off ends; the retry's prepare gets every promise.
        cluster.now = cluster.now + .milliseconds(20)
        proposer.tick(now: cluster.now, into: &effects)
        let promises = cluster.deliver(effects, from: endpoints[0])
        effects.removeAll()
        for (from, promise) in promises { proposer.receive(promise, from: from, now: cluster.now, into: &effects) }
        return (proposer, id, effects, refusals[2])
    }

    @Test("a retry whose prepare outruns the stale accept's last refusal waits for it, then writes afresh")
    func retryWaitsForTheLastRefusal() throws {
        var cluster = try Cluster()
        var (proposer, id, effects, heldBack) = try Self.staleAcceptRetryBeforeLastRefusal(in: &cluster)
        #expect(effects.isEmpty, "neither an accept nor an indeterminate failure before the last refusal")
        #expect(proposer.counters.awaitedLastAccepts == 1)
        proposer.receive(heldBack.1, from: heldBack.0, now: cluster.now, into: &effects)
        let result = cluster.finish(id, on: &proposer, at: .loopbackV4(port: 100), startingWith: effects)
        #expect(try result?.get() == [3], "\(String(describing: result))")
        #expect(cluster.values == [[3], [3], [3]])
    }

    @Test("a retry waiting for the last refusal fails indeterminate when it does not come, or another answer does")
    func retryWaitingForTheLastRefusalFails() throws {
        // The third acceptor is down: nothing comes. The accept has been
        // out 20 ms when the wait begins, which lasts 20 ms more, then
        // fails the proposal (it does not retry).
        var cluster = try Cluster()
        var (proposer, id, effects, heldBack) = try Self.staleAcceptRetryBeforeLastRefusal(in: &cluster)
        let attempts = proposer.counters.attempts
        #expect(proposer.nextDeadline == cluster.now + .milliseconds(20))
        proposer.tick(now: cluster.now + .milliseconds(19), into: &effects)
        #expect(effects.isEmpty)
        proposer.tick(now: cluster.now + .milliseconds(20), into: &effects)
        var results = effects.compactMap { if case .proposalCompleted(id, let result) = $0 { result } else { nil } }
        if case .failure(let error) = results.first { #expect(error.code == .conflict) } else {
            Issue.record("expected an indeterminate failure: \(results)")
        }
        #expect(proposer.counters.attempts == attempts, "no further attempt")
        // The third acceptor answers an accept the first time with a
        // refusal that proves nothing (here a stale age): the proposal fails
        // at once.
        cluster = try Cluster()
        (proposer, id, effects, heldBack) = try Self.staleAcceptRetryBeforeLastRefusal(in: &cluster)
        #expect(effects.isEmpty && proposer.proposals[id]?.phase == .awaitingLastAccept)
        guard let lastAccept = proposer.proposals[id]?.lastAccept else {
            Issue.record("no last accept")
            return
        }
        proposer.receive(
            .staleAge(requestID: lastAccept.requestID, minimumAge: 0), from: cluster.endpoints[2], now: cluster.now,
            into: &effects)
        results = effects.compactMap { if case .proposalCompleted(id, let result) = $0 { result } else { nil } }
        if case .failure(let error) = results.first { #expect(error.code == .conflict) } else {
            Issue.record("expected an indeterminate failure: \(results)")
        }
        #expect(cluster.values == [[2], [2], [2]])
        // Proposer 1's write missed the third acceptor, which takes the
        // stale accept; its acceptance arrives late: the proposal fails at
        // once.
        cluster = try Cluster()
        (proposer, id, effects, heldBack) = try Self.staleAcceptRetryBeforeLastRefusal(
            in: &cluster, secondWriteReaches: 0..<2)
        #expect(effects.isEmpty && proposer.counters.awaitedLastAccepts == 1)
        guard case .accepted = heldBack.1 else {
            Issue.record("the third acceptor took the stale accept: \(heldBack.1)")
            return
        }
        proposer.receive(heldBack.1, from: heldBack.0, now: cluster.now, into: &effects)
        results = effects.compactMap { if case .proposalCompleted(id, let result) = $0 { result } else { nil } }
        if case .failure(let error) = results.first { #expect(error.code == .conflict) } else {
            Issue.record("expected an indeterminate failure: \(results)")
        }
        #expect(cluster.values == [[2], [2], [2]])
    }

    @Test("a configuration adopted during the wait restarts the attempt, which then fails indeterminate")
    func configurationDuringTheWait() throws {
        var cluster = try Cluster()
        var (proposer, id, effects, heldBack) = try Self.staleAcceptRetryBeforeLastRefusal(in: &cluster)
        #expect(proposer.proposals[id]?.phase == .awaitingLastAccept)
        // The refusals are counted by position in the old directory: the
        // new configuration forgets them, and the accept stays among those
        // that may have been written, even once the last refusal arrives.
        proposer.receive(
            .reconfigure(requestID: 1, quorums: .majority(of: cluster.endpoints, version: 2)),
            from: .loopbackV4(port: 101), now: cluster.now, into: &effects)
        #expect(proposer.proposals[id]?.lastAccept == nil)
        proposer.receive(heldBack.1, from: heldBack.0, now: cluster.now, into: &effects)
        #expect(proposer.proposals[id]?.sentAccepts.isEmpty == false)
        let result = cluster.finish(id, on: &proposer, at: .loopbackV4(port: 100), startingWith: effects)
        if case .failure(let error) = result { #expect(error.code == .conflict) } else {
            Issue.record("expected an indeterminate failure: \(String(describing: result))")
        }
        #expect(cluster.values == [[2], [2], [2]])
    }

    @Test("with parents, the retry after a stale one-round-trip accept writes afresh at once, its accept taken or not")
    func staleAcceptRetryWithParents() throws {
        for secondWriteReaches in [nil, 0..<2] {
            // The second write was built on the first (this proposer's
            // previous proposal), older than the stale accept: that accept
            // is in no value's history and can never be chosen once the
            // retry's is.
            var cluster = try Cluster()
            var (proposer, id, effects, heldBack) = try Self.staleAcceptRetryBeforeLastRefusal(
                in: &cluster, secondWriteReaches: secondWriteReaches, parents: true)
            #expect(proposer.counters.awaitedLastAccepts == 0 && proposer.counters.rivalValuesBuiltOnOlder == 1)
            #expect(effects.contains { if case .sendToEach(.acceptWithParent, _) = $0 { true } else { false } })
            proposer.receive(heldBack.1, from: heldBack.0, now: cluster.now, into: &effects)
            let result = cluster.finish(id, on: &proposer, at: .loopbackV4(port: 100), startingWith: effects)
            #expect(try result?.get() == [3], "\(String(describing: result))")
            #expect(cluster.values == [[3], [3], [3]])
        }
    }

    @Test("a retry does not wait for an accept whose answers were all lost")
    func noWaitWithoutRefusals() throws {
        var cluster = try Cluster()
        var proposers = [try Self.makeProposer(7, parents: false), try Self.makeProposer(8, parents: false)]
        let endpoints = [Endpoint.loopbackV4(port: 100), .loopbackV4(port: 101)]
        for writer in [0, 1] {
            var effects: [CASPaxosEffect] = []
            let id = try proposers[writer].propose(key: Self.key, change: Self.increment, now: cluster.now, into: &effects)
            _ = cluster.finish(id, on: &proposers[writer], at: endpoints[writer], startingWith: effects)
        }
        // The stale accept reaches every acceptor (each refuses it knowing)
        // but no answer comes back: the attempt times out, and the retry's
        // prepare finds proposer 1's ballot above it, and fails without
        // waiting.
        var effects: [CASPaxosEffect] = []
        let id = try proposers[0].propose(key: Self.key, change: Self.increment, now: cluster.now, into: &effects)
        _ = cluster.deliver(effects, from: endpoints[0])
        effects.removeAll()
        cluster.now = cluster.now + .milliseconds(100)
        proposers[0].tick(now: cluster.now, into: &effects)
        let result = cluster.finish(id, on: &proposers[0], at: endpoints[0], startingWith: effects)
        if case .failure(let error) = result { #expect(error.code == .conflict) } else {
            Issue.record("expected an indeterminate failure: \(String(describing: result))")
        }
        #expect(proposers[0].counters.awaitedLastAccepts == 0)
    }

    @Test("what a register can tell about the ballots it never accepted")
    func neverAcceptedHint() {
        let (p, q) = (NodeID(1), NodeID(2))
        func ballot(_ counter: UInt64, _ proposer: NodeID) -> Ballot { Ballot(counter: counter, proposer: proposer) }
        var register = RegisterState()
        #expect(register.neverAccepted(ballot(1, p)))
        register = register.accepting([1], at: ballot(2, p), promising: ballot(3, p))
        #expect(!register.neverAccepted(ballot(2, p)), "the accepted ballot itself")
        #expect(register.neverAccepted(ballot(3, p)) && register.neverAccepted(ballot(9, q)), "above the accepted one")
        #expect(register.neverAccepted(ballot(1, p)), "below, but nothing was accepted before")
        // q takes over twice; p's next ballot, never accepted, is still known.
        register = register.promising(ballot(5, q)).accepting([2], at: ballot(5, q), promising: ballot(6, q))
        register = register.accepting([3], at: ballot(6, q), promising: ballot(7, q))
        #expect(register.neverAccepted(ballot(3, p)), "above p's last accepted ballot")
        #expect(!register.neverAccepted(ballot(2, p)) && !register.neverAccepted(ballot(5, q)))
        // Recovered from a store: nothing known below the promise.
        let recovered = RegisterState(promised: register.promised, accepted: register.accepted, value: register.value)
        #expect(recovered == register, "the hint is not part of the state")
        #expect(!recovered.neverAccepted(ballot(3, p)))
        #expect(recovered.neverAccepted(ballot(8, p)), "above the promise")
    }

    @Test("proposers taking turns on a key: each one's displaced ballot is remembered, up to a bound")
    func neverAcceptedHintWithSeveralProposers() {
        let proposers = (1...3).map { NodeID(UInt64($0)) }
        func ballot(_ counter: UInt64, _ proposer: Int) -> Ballot { Ballot(counter: counter, proposer: proposers[proposer]) }
        // p0 writes twice in one round trip each, then p1, then p2: the
        // ballots each wrote last, and their cached next ones, which they
        // never had accepted.
        var register = RegisterState()
        register = register.accepting([1], at: ballot(1, 0), promising: ballot(2, 0))
        register = register.accepting([2], at: ballot(2, 0), promising: ballot(3, 0))
        register = register.promising(ballot(4, 1)).accepting([3], at: ballot(4, 1), promising: ballot(5, 1))
        register = register.promising(ballot(6, 2)).accepting([4], at: ballot(6, 2), promising: ballot(7, 2))
        #expect(register.neverAccepted(ballot(3, 0)), "p0's cached ballot, above its displaced 2")
        #expect(register.neverAccepted(ballot(5, 1)), "p1's cached ballot, above its displaced 4")
        #expect(!register.neverAccepted(ballot(2, 0)) && !register.neverAccepted(ballot(4, 1)), "accepted once")
        #expect(!register.neverAccepted(ballot(1, 0)), "below p0's displaced ballot: unknown")
        // p0 writes again: current now, its earlier ballots are no longer
        // known from what it had displaced.
        register = register.promising(ballot(8, 0)).accepting([5], at: ballot(8, 0), promising: ballot(9, 0))
        register = register.accepting([6], at: ballot(9, 0), promising: ballot(10, 0))
        #expect(!register.neverAccepted(ballot(8, 0)), "accepted before the current ballot")
        #expect(register.neverAccepted(ballot(7, 2)) && register.neverAccepted(ballot(5, 1)))
        // Beyond the bound, the proposer displaced longest ago is forgotten.
        var crowded = RegisterState()
        let many = (1...(DisplacedBallots.capacity + 1)).map { NodeID(UInt64(100 + $0)) }
        for (index, proposer) in many.enumerated() {
            let counter = UInt64(2 * index + 1)
            crowded = crowded.promising(Ballot(counter: counter, proposer: proposer))
                .accepting([1], at: Ballot(counter: counter, proposer: proposer), promising: Ballot(counter: counter + 1, proposer: proposer))
        }
        crowded = crowded.promising(Ballot(counter: 100, proposer: NodeID(1)))
            .accepting([2], at: Ballot(counter: 100, proposer: NodeID(1)), promising: Ballot(counter: 101, proposer: NodeID(1)))
        #expect(!crowded.neverAccepted(Ballot(counter: 2, proposer: many[0])), "forgotten: unknown")
        #expect(crowded.neverAccepted(Ballot(counter: 4, proposer: many[1])), "still remembered")
    }

    /// A read whose promises were on their way when a garbage collection
    /// invalidated this proposer cached the key's ballot: the collection
    /// re-wrote the key above it, so the next write's accept at that
    /// ballot was refused everywhere, and failed indeterminate though
    /// written nowhere.
    @Test("an attempt that an invalidation overtook caches nothing")
    func invalidationDuringAttempt() throws {
        var cluster = try Cluster()
        let endpoint = Endpoint.loopbackV4(port: 100)
        var proposer = try Proposer(
            id: NodeID(7), quorums: .majority(of: cluster.endpoints), configuration: CASPaxosConfiguration(), seed: 7)
        let now = cluster.now
        var effects: [CASPaxosEffect] = []
        // The key written once, so that a read ends at its promises.
        let write = try proposer.propose(key: Self.key, change: Self.increment, now: now, into: &effects)
        _ = cluster.finish(write, on: &proposer, at: endpoint, startingWith: effects)
        // Another proposer's write, so that this one holds no cached ballot.
        var other = try Proposer(
            id: NodeID(8), quorums: .majority(of: cluster.endpoints), configuration: CASPaxosConfiguration(), seed: 8)
        var otherEffects: [CASPaxosEffect] = []
        let otherWrite = try other.propose(key: Self.key, change: Self.increment, now: now, into: &otherEffects)
        _ = cluster.finish(otherWrite, on: &other, at: .loopbackV4(port: 101), startingWith: otherEffects)
        effects.removeAll()
        proposer.receive(.invalidate(requestID: 1, key: Self.key, ballot: Ballot(counter: 10, proposer: NodeID(9))),
                         from: .loopbackV4(port: 102), now: now, into: &effects)
        #expect(proposer.cachedKeyCount == 0)

        effects.removeAll()
        try proposer.read(key: Self.key, now: now, into: &effects)
        let promises = cluster.deliver(effects, from: endpoint)
        // The invalidation overtakes the promises.
        effects.removeAll()
        proposer.receive(.invalidate(requestID: 2, key: Self.key, ballot: Ballot(counter: 50, proposer: NodeID(9))),
                         from: .loopbackV4(port: 102), now: now, into: &effects)
        for (from, promise) in promises { proposer.receive(promise, from: from, now: now, into: &effects) }
        #expect(effects.contains { if case .proposalCompleted(_, .success) = $0 { true } else { false } })
        #expect(proposer.cachedKeyCount == 0, "the read cached a ballot the collection went past")
    }

    @Test("refusals that arrive after a configuration shrank do not make an accept 'written nowhere'")
    func refusalsAfterReconfiguration() throws {
        var cluster = try Cluster(acceptors: 5)
        let five = cluster.endpoints
        let (pEndpoint, qEndpoint) = (Endpoint.loopbackV4(port: 100), Endpoint.loopbackV4(port: 101))
        var p = try Proposer(id: NodeID(7), quorums: .majority(of: five), configuration: CASPaxosConfiguration(), seed: 7)
        var q = try Proposer(id: NodeID(8), quorums: .majority(of: five), configuration: CASPaxosConfiguration(), seed: 8)
        var now = Instant(nanoseconds: 1_000_000_000)
        var effects: [CASPaxosEffect] = []
        let id = try p.propose(key: Self.key, change: Self.increment, now: now, into: &effects)
        let promises = cluster.deliver(effects, from: pEndpoint)
        effects.removeAll()
        for (from, promise) in promises { p.receive(promise, from: from, now: now, into: &effects) }
        let accept = effects
        // Another proposer's prepare (a higher ballot: same counter, higher
        // ID) reaches four acceptors before the accept; the fifth takes it.
        var qEffects: [CASPaxosEffect] = []
        _ = try q.propose(key: Self.key, change: Self.increment, now: now, into: &qEffects)
        _ = cluster.deliver(qEffects, from: qEndpoint, reaching: 0..<4)
        let replies = cluster.deliver(accept, from: pEndpoint)
        let refusals = replies.filter { if case .conflict(_, _, true) = $1 { true } else { false } }
        #expect(refusals.count == 4)
        // The attempt times out; then the configuration drops the fifth
        // acceptor, and only then do the four refusals arrive.
        now = now + .milliseconds(150)
        effects.removeAll()
        p.tick(now: now, into: &effects)
        p.receive(
            .reconfigure(requestID: 1, quorums: .majority(of: Array(five[0..<4]), version: 2)), from: qEndpoint, now: now,
            into: &effects)
        for (from, refusal) in refusals { p.receive(refusal, from: from, now: now, into: &effects) }
        // Four refusals of four acceptors, but the accept went to five, and
        // the fifth took it: it must stay among those that may be written.
        #expect(p.proposals[id]?.sentAccepts.isEmpty == false)
    }
}
