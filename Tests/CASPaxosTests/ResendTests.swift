@testable import CASPaxos
import EventCore
import Testing

/// An attempt sends its request again to the acceptors that have not
/// answered it, every ``CASPaxosConfiguration/resendInterval``, until its
/// attempt times out: a datagram lost on a lossy link costs an interval,
/// not an attempt, and an accept that reached too few acceptors completes
/// before another proposer's write can leave it indeterminate.
///
/// Driven by hand (``DuplicatedAcceptTests/Cluster``), so that each message
/// can be delivered or lost as the scenario needs.
@Suite("Resending unanswered requests")
struct ResendTests {
    typealias Cluster = DuplicatedAcceptTests.Cluster
    static let key = DuplicatedAcceptTests.key

    static func makeProposer(
        _ id: UInt64, resendInterval: Duration = .milliseconds(20), parents: Bool = true
    ) throws -> Proposer {
        var configuration = CASPaxosConfiguration()
        configuration.resendInterval = resendInterval
        configuration.isParentBallotEnabled = parents
        return try Proposer(
            id: NodeID(id), quorums: .majority(of: DuplicatedAcceptTests.acceptorEndpoints),
            configuration: configuration, seed: id)
    }

    /// The requests `effects` sends: each message with its destinations.
    static func requests(_ effects: [CASPaxosEffect]) -> [(message: CASPaxosMessage, to: [Endpoint])] {
        effects.compactMap { effect in
            switch effect {
            case .sendToEach(let message, let destinations): (message, destinations)
            case .send(let message, let destination): (message, [destination])
            case .persist, .proposalCompleted, .maintenanceCompleted: nil
            }
        }
    }

    @Test("an unanswered prepare goes again, with its request ID and ballot, to the acceptors that have not answered, at 20, 40 and 80 ms")
    func resendsToTheSilent() throws {
        var proposer = try Self.makeProposer(7)
        let endpoints = DuplicatedAcceptTests.acceptorEndpoints
        let start = Instant(nanoseconds: 1_000_000_000)
        var now = start
        var effects: [CASPaxosEffect] = []
        _ = try proposer.propose(key: Self.key, change: { _ in [1] }, now: now, into: &effects)
        guard case .prepare(let requestID, _, let ballot, _, _)? = Self.requests(effects).first?.message else {
            Issue.record("no prepare: \(effects)")
            return
        }
        // Nothing answers: a copy to all three after 20 ms, then after as
        // long as the phase has run (40 ms).
        var copies: [[Endpoint]] = []
        for at in [20, 40] {
            #expect(proposer.nextDeadline == start + .milliseconds(at))
            now = proposer.nextDeadline
            effects.removeAll()
            proposer.tick(now: now, into: &effects)
            for (message, destinations) in Self.requests(effects) {
                guard case .prepare(requestID, Self.key, ballot, _, _) = message else {
                    Issue.record("not a copy of the prepare: \(message)")
                    continue
                }
                copies.append(destinations)
            }
        }
        #expect(copies == Array(repeating: endpoints, count: 2))
        #expect(proposer.counters.requestsResent == 6)
        #expect(proposer.counters.requestsSent == 3, "copies are not counted as requests")
        // The first acceptor answers; the next copy skips it.
        var acceptor = try Acceptor(configuration: CASPaxosConfiguration())
        var replies: [CASPaxosEffect] = []
        acceptor.receive(
            .prepare(requestID: requestID, key: Self.key, ballot: ballot, age: 0, version: .zero),
            from: .loopbackV4(port: 100), into: &replies)
        for case .send(let promise, _) in replies { proposer.receive(promise, from: endpoints[0], now: now, into: &effects) }
        #expect(proposer.nextDeadline == start + .milliseconds(80))
        now = proposer.nextDeadline
        effects.removeAll()
        proposer.tick(now: now, into: &effects)
        #expect(Self.requests(effects).map(\.to) == [Array(endpoints[1...])])
        // The attempt's 100 ms run out, and it is abandoned, with no copy
        // at its end.
        effects.removeAll()
        now = proposer.nextDeadline
        #expect(now == start + .milliseconds(100))
        proposer.tick(now: now, into: &effects)
        #expect(proposer.counters.failedAttempts == 1)
        #expect(proposer.counters.requestsResent == 8)
    }

    /// Before, the copies stopped: the check that the proposer's age had
    /// not moved compared it with the age the attempt began at, which the
    /// refusal had moved before the accept went out. The attempt then
    /// waited out its timeout (100 ms) for an answer lost once.
    @Test("an accept sent after a stale-age refusal aged the proposer mid-prepare is sent again, at that age")
    func acceptAfterStaleAgeIsResent() throws {
        var now = Instant(nanoseconds: 1_000_000_000)
        var (proposer, requestID, ballot, age) = try Self.proposerPreparing(at: now)
        let endpoints = DuplicatedAcceptTests.acceptorEndpoints
        var effects: [CASPaxosEffect] = []
        // The first acceptor requires age 1 (a collection aged this proposer
        // while the prepare was on its way); the other two promise.
        proposer.receive(.staleAge(requestID: requestID, minimumAge: age + 1), from: endpoints[0], now: now, into: &effects)
        for endpoint in endpoints[1...] {
            var acceptor = try Acceptor(configuration: CASPaxosConfiguration())
            var replies: [CASPaxosEffect] = []
            acceptor.receive(
                .prepare(requestID: requestID, key: Self.key, ballot: ballot, age: age, version: .zero),
                from: .loopbackV4(port: 100), into: &replies)
            for case .send(let promise, _) in replies { proposer.receive(promise, from: endpoint, now: now, into: &effects) }
        }
        let accepts = Self.requests(effects).compactMap { Self.acceptAge(of: $0.message) }
        #expect(accepts == [age + 1], "one accept, at the new age: \(effects)")
        // No answer comes: the accept goes again.
        effects.removeAll()
        now = proposer.nextDeadline
        proposer.tick(now: now, into: &effects)
        let copies = Self.requests(effects).filter { Self.acceptAge(of: $0.message) == age + 1 }
        #expect(copies.map(\.to) == [endpoints], "\(effects)")
        #expect(proposer.counters.requestsResent == 3)
    }

    /// A retry's prepare at an age a stale-age refusal raised is sent
    /// again too: the phase's request age is the retry's, not one left
    /// from an earlier phase (nothing else checks that the prepare path
    /// sets it).
    @Test("a retry's prepare after stale-age refusals aged the proposer is sent again, at the new age")
    func prepareAfterStaleAgeIsResent() throws {
        var now = Instant(nanoseconds: 1_000_000_000)
        var (proposer, requestID, _, age) = try Self.proposerPreparing(at: now)
        let endpoints = DuplicatedAcceptTests.acceptorEndpoints
        var effects: [CASPaxosEffect] = []
        // Two acceptors of three require age 1: the attempt is abandoned.
        for endpoint in endpoints[..<2] {
            proposer.receive(.staleAge(requestID: requestID, minimumAge: age + 1), from: endpoint, now: now, into: &effects)
        }
        #expect(proposer.counters.failedAttempts == 1)
        // The back-off ends: a new prepare, at age 1.
        now = proposer.nextDeadline
        proposer.tick(now: now, into: &effects)
        guard case .prepare(let retryID, _, _, let retryAge, _)? = Self.requests(effects).first?.message else {
            Issue.record("no retry: \(effects)")
            return
        }
        #expect(retryID != requestID && retryAge == age + 1)
        // No answer comes: the prepare goes again, at age 1.
        effects.removeAll()
        now = proposer.nextDeadline
        proposer.tick(now: now, into: &effects)
        let copies = Self.requests(effects).filter { request in
            guard case .prepare(retryID, _, _, age + 1, _) = request.message else { return false }
            return true
        }
        #expect(copies.map(\.to) == [endpoints], "\(effects)")
        #expect(proposer.counters.requestsResent == 3)
    }

    /// Before, a stale-age refusal of one acceptor stopped the copies of
    /// the prepare to the others (the proposer's age no longer matched
    /// the request's), and a promise lost once cost the attempt's 100 ms.
    @Test("a prepare one acceptor refused for its age is sent again to the silent ones, at the age it went out at")
    func prepareCopiedAtItsAgeAfterStaleAge() throws {
        var now = Instant(nanoseconds: 1_000_000_000)
        var (proposer, requestID, ballot, age) = try Self.proposerPreparing(at: now)
        let endpoints = DuplicatedAcceptTests.acceptorEndpoints
        var effects: [CASPaxosEffect] = []
        proposer.receive(.staleAge(requestID: requestID, minimumAge: age + 1), from: endpoints[0], now: now, into: &effects)
        #expect(proposer.counters.failedAttempts == 0)
        now = proposer.nextDeadline
        proposer.tick(now: now, into: &effects)
        let copies = Self.requests(effects).filter { request in
            guard case .prepare(requestID, Self.key, ballot, age, _) = request.message else { return false }
            return true
        }
        #expect(copies.map(\.to) == [Array(endpoints[1...])], "\(effects)")
        #expect(proposer.counters.requestsResent == 2)
    }

    /// Proposer 7 after it proposed a write of ``key`` at `now`, and the
    /// request ID, ballot and age of the prepare it sent.
    static func proposerPreparing(at now: Instant) throws -> (Proposer, UInt64, Ballot, UInt64) {
        var proposer = try makeProposer(7)
        var effects: [CASPaxosEffect] = []
        _ = try proposer.propose(key: key, change: { _ in [1] }, now: now, into: &effects)
        let prepare = try #require(
            requests(effects).lazy.compactMap { request -> (UInt64, Ballot, UInt64)? in
                guard case .prepare(let requestID, _, let ballot, let age, _) = request.message else { return nil }
                return (requestID, ballot, age)
            }.first, "no prepare: \(effects)")
        return (proposer, prepare.0, prepare.1, prepare.2)
    }

    /// The age an accept carries (nil for any other message).
    static func acceptAge(of message: CASPaxosMessage) -> UInt64? {
        switch message {
        case .accept(_, _, _, let age, _, _, _), .acceptWithParent(_, _, _, let age, _, _, _, _): age
        default: nil
        }
    }

    @Test("on a slow link, the first copy waits twice the time phases take to reach their quorum")
    func resendWaitsForSlowAnswers() throws {
        var cluster = try Cluster()
        var proposer = try Self.makeProposer(7)
        let endpoint = Endpoint.loopbackV4(port: 100)
        var effects: [CASPaxosEffect] = []
        // Every phase's answers take 30 ms: the estimate converges to it.
        for value in 1...40 {
            effects.removeAll()
            let id = try proposer.propose(key: Self.key, change: { _ in [UInt8(value)] }, now: cluster.now, into: &effects)
            var completed = false
            while !completed {
                let replies = cluster.deliver(effects, from: endpoint)
                cluster.now = cluster.now + .milliseconds(30)
                effects.removeAll()
                for (from, reply) in replies { proposer.receive(reply, from: from, now: cluster.now, into: &effects) }
                for case .proposalCompleted(id, let result) in effects {
                    #expect((try? result.get()) == [UInt8(value)])
                    completed = true
                }
            }
        }
        #expect(proposer.counters.requestsResent == 0)
        // The next write's accept waits about 60 ms for its first copy.
        effects.removeAll()
        _ = try proposer.propose(key: Self.key, change: { _ in [0] }, now: cluster.now, into: &effects)
        let firstCopy = proposer.nextDeadline - cluster.now
        #expect(firstCopy > .milliseconds(55) && firstCopy <= .milliseconds(60), "\(firstCopy)")
    }

    /// Proposer 7 increments; its prepare reaches every acceptor, its
    /// accept the first only. At proposer 7's next wake-up (a resend, or
    /// the end of the attempt) what it sends is delivered and answered,
    /// then proposer 8 increments through the other two acceptors only;
    /// then proposer 7 runs to its end. Returns proposer 7's result and
    /// the acceptors' values.
    static func acceptReachingOne(resendInterval: Duration, parents: Bool = true) throws -> (
        result: Result<[UInt8]?, CASPaxosError>?, values: [[UInt8]?]
    ) {
        var cluster = try Cluster()
        var first = try makeProposer(7, resendInterval: resendInterval, parents: parents)
        let firstEndpoint = Endpoint.loopbackV4(port: 100)
        var effects: [CASPaxosEffect] = []
        let id = try first.propose(key: key, change: DuplicatedAcceptTests.increment, now: cluster.now, into: &effects)
        let promises = cluster.deliver(effects, from: firstEndpoint)
        effects.removeAll()
        for (from, promise) in promises { first.receive(promise, from: from, now: cluster.now, into: &effects) }
        let acceptance = cluster.deliver(effects, from: firstEndpoint, reaching: 0..<1)
        #expect(acceptance.count == 1)
        effects.removeAll()
        for (from, answer) in acceptance { first.receive(answer, from: from, now: cluster.now, into: &effects) }
        #expect(effects.isEmpty, "one acceptance of the two needed")
        cluster.now = first.nextDeadline
        first.tick(now: cluster.now, into: &effects)
        var firstPending: [CASPaxosEffect] = []
        for (from, answer) in cluster.deliver(effects, from: firstEndpoint) {
            first.receive(answer, from: from, now: cluster.now, into: &firstPending)
        }
        var second = try makeProposer(8, resendInterval: resendInterval, parents: parents)
        effects.removeAll()
        let secondID = try second.propose(
            key: key, change: DuplicatedAcceptTests.increment, now: cluster.now, into: &effects)
        let secondResult = cluster.finish(
            secondID, on: &second, at: .loopbackV4(port: 101), startingWith: effects, reaching: 1..<3)
        #expect((try? secondResult?.get()) != nil, "the second increment: \(String(describing: secondResult))")
        let result = cluster.finish(id, on: &first, at: firstEndpoint, startingWith: firstPending)
        return (result, cluster.values)
    }

    @Test("an accept that reached one acceptor of three completes at its resend; sent once, the retry applies it afresh, or without parents ends indeterminate")
    func acceptCompletesAtResend() throws {
        let resent = try Self.acceptReachingOne(resendInterval: .milliseconds(20))
        #expect(try resent.result?.get() == [1], "\(String(describing: resent.result))")
        #expect(resent.values == [[1], [2], [2]], "the second increment built on the first")
        // Without resends the attempt times out, and the second proposer
        // writes over the two acceptors the accept missed. Its value names
        // the empty register as its parent, older than the first's
        // accept, which can then never be chosen once the retry's value
        // is: the retry applies the increment to the second's value.
        let afresh = try Self.acceptReachingOne(resendInterval: .milliseconds(100))
        #expect(try afresh.result?.get() == [2], "\(String(describing: afresh.result))")
        #expect(afresh.values == [[2], [2], [2]])
        // Without parents the first cannot tell whether its accept was
        // chosen.
        let once = try Self.acceptReachingOne(resendInterval: .milliseconds(100), parents: false)
        guard case .failure(let error)? = once.result else {
            Issue.record("sent once, the first increment must fail: \(String(describing: once.result))")
            return
        }
        #expect(error.code == .conflict && error.isIndeterminate, "\(error)")
        #expect(once.values == [[1], [1], [1]], "the first increment lost, the second applied")
    }

    /// The case the acceptor's rule is for: an accept every acceptor took,
    /// promising the next ballot it carried, with every answer lost. Its
    /// resend is a copy below each acceptor's promise, which each takes
    /// again (it still holds that ballot), so the write completes at the
    /// resend, and caches the next ballot, instead of abandoning its
    /// attempt on the copies' refusals and writing again through a retry.
    @Test("an accept every acceptor took, its answers lost, completes at its resend: each takes the copy again above the next ballot it promised")
    func resentAcceptTakenAgain() throws {
        var cluster = try Cluster()
        var proposer = try Self.makeProposer(7)
        let endpoint = Endpoint.loopbackV4(port: 100)
        let (id, accept) = try DuplicatedAcceptTests.acceptEverywhereLosingReplies(&proposer, at: endpoint, in: &cluster)
        guard case .acceptWithParent(_, _, let ballot, _, _, _, _, let next?)? = Self.requests(accept).first?.message else {
            Issue.record("no accept carrying a next ballot: \(accept)")
            return
        }
        #expect(cluster.acceptors.allSatisfy { $0.register(Self.key)?.accepted == ballot && $0.register(Self.key)?.promised == next })
        cluster.now = proposer.nextDeadline
        var effects: [CASPaxosEffect] = []
        proposer.tick(now: cluster.now, into: &effects)
        #expect(Self.requests(effects).map(\.to) == [DuplicatedAcceptTests.acceptorEndpoints])
        var completion: [CASPaxosEffect] = []
        for (from, answer) in cluster.deliver(effects, from: endpoint) {
            proposer.receive(answer, from: from, now: cluster.now, into: &completion)
        }
        let results = completion.compactMap { effect -> Result<[UInt8]?, CASPaxosError>? in
            guard case .proposalCompleted(id, let result) = effect else { return nil }
            return result
        }
        #expect(results.count == 1)
        #expect(try results.first?.get() == [1], "\(results)")
        #expect(cluster.acceptors.map(\.counters.repeatedAcceptances) == [1, 1, 1])
        #expect(proposer.counters.failedAttempts == 0)
        #expect(proposer.cachedKeyCount == 1, "the acceptances' acceptors promised the next ballot")
        #expect(cluster.values == [[1], [1], [1]])
    }
}
