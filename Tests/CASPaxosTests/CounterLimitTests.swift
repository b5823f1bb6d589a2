@testable import CASPaxos
import EventCore
import Testing

/// The decoder takes ballot counters and proposer ages up to 2⁶². A faulty
/// or hostile peer's refusal can bring a proposer there; past it, every
/// message the proposer sent would fail to decode, and an acceptor on its
/// node (handed messages without decoding) would store a ballot or age its
/// log could not replay. The proposer fails its proposals instead, with a
/// typed error, and the acceptor drops such messages.
@Suite("Counter and age limits")
struct CounterLimitTests {
    static let acceptors = ProposerRestartTests.acceptors
    static let now = ProposerRestartTests.now
    static let key = ProposerRestartTests.key
    static let absurd = Ballot(counter: Ballot.maximumCounter, proposer: NodeID(9))

    /// Every ballot the effects send, piggybacked next ballots included.
    static func sentBallots(_ effects: [CASPaxosEffect]) -> [Ballot] {
        effects.flatMap { effect -> [Ballot] in
            switch effect {
            case .sendToEach(.prepare(_, _, let ballot, _, _), _): [ballot]
            case .sendToEach(.acceptWithParent(_, _, let ballot, _, _, _, _, let next), _): [ballot] + (next.map { [$0] } ?? [])
            default: []
            }
        }
    }

    /// Every acceptor refuses `request` naming a ballot at the maximum
    /// counter: the proposer fast-forwards to it.
    static func outbidToTheMaximum(
        _ proposer: inout Proposer, request: UInt64, into effects: inout [CASPaxosEffect]
    ) {
        for acceptor in acceptors {
            proposer.receive(
                .conflict(requestID: request, highest: absurd, neverAccepted: true), from: acceptor, now: now,
                into: &effects)
        }
    }

    /// Ticks the proposer at each deadline until no proposal is pending
    /// (for at most 3 s).
    static func runOut(_ proposer: inout Proposer, into effects: inout [CASPaxosEffect]) {
        var now = Self.now
        while proposer.pendingCount > 0, now < Self.now + .seconds(3) {
            now = proposer.nextDeadline
            proposer.tick(now: now, into: &effects)
        }
    }

    /// Proposes a write of `key` and answers its prepare with a stale-age
    /// refusal naming the maximum age: the proposal and its prepare's
    /// request. `effects` holds what came after the prepare.
    static func agedByItsFirstPrepare(
        _ proposer: inout Proposer, into effects: inout [CASPaxosEffect]
    ) throws -> (id: UInt64, prepare: UInt64) {
        let id = try proposer.propose(key: key, change: { _ in [1] }, now: now, into: &effects)
        let prepare = try #require(ProposerRestartTests.prepareRequest(in: effects))
        effects.removeAll()
        proposer.receive(.staleAge(requestID: prepare, minimumAge: ProposerAge.maximumAge), from: acceptors[0],
                         now: now, into: &effects)
        return (id, prepare)
    }

    /// The proposals that failed `.notAvailable`, in order.
    static func unavailable(_ effects: [CASPaxosEffect]) -> [UInt64] {
        effects.compactMap { effect -> UInt64? in
            if case .proposalCompleted(let id, .failure(let error)) = effect, error.code == .notAvailable { id } else { nil }
        }
    }

    /// One forged prepare at the maximum on one key used to bring the
    /// proposer's one counter there: every key's next prepare then failed
    /// (found by an embedder's walk-through). Only that key is lost now.
    @Test("a proposal refused at the maximum fails, definite, sends no ballot above it, and leaves the proposer its other keys")
    func absurdBallotStaysWithItsKey() throws {
        var proposer = try RequestIDTests.makeProposer(1)
        var effects: [CASPaxosEffect] = []
        let id = try proposer.propose(key: Self.key, change: { _ in [1] }, now: Self.now, into: &effects)
        let prepare = try #require(ProposerRestartTests.prepareRequest(in: effects))
        Self.outbidToTheMaximum(&proposer, request: prepare, into: &effects)
        Self.runOut(&proposer, into: &effects)
        #expect(Self.unavailable(effects) == [id])
        #expect(proposer.counters.ballotsExhausted >= 1)
        #expect(Self.sentBallots(effects).allSatisfy { $0.counter <= Ballot.maximumCounter })
        // The third refusal came after the quorum of two ended the attempt.
        #expect(proposer.counters.absurdBallots == 2)
        effects.removeAll()
        let other = try RequestIDTests.write(&proposer, key: "other")
        #expect(other.succeeded)
        effects.removeAll()
        _ = try proposer.propose(key: Array("third".utf8), change: { _ in [1] }, now: Self.now, into: &effects)
        // The counter stayed where the key's retries (no ballot beating
        // the promise, so drawn from it) and the other write left it.
        let ballots = Self.sentBallots(effects).map(\.counter)
        #expect(ballots.count == 1 && ballots.allSatisfy { $0 < 1_000 }, "\(ballots)")
    }

    /// An acceptor that promised a key the maximum is lost to that key, as
    /// a crashed one is: the key's retries draw ballots the others take.
    @Test("a key one acceptor promised the maximum is still written by the other two, on a retry too")
    func minorityAtTheMaximum() throws {
        var proposer = try RequestIDTests.makeProposer(1)
        var effects: [CASPaxosEffect] = []
        let id = try proposer.propose(key: Self.key, change: { _ in [1] }, now: Self.now, into: &effects)
        var now = Self.now
        var succeeded = false
        var attempts = 0
        // The first attempt hears only the refusal and times out; the next
        // hears the other two as well.
        while !succeeded, attempts < 10 {
            if let prepare = ProposerRestartTests.prepareRequest(in: effects) {
                attempts += 1
                effects.removeAll()
                proposer.receive(.conflict(requestID: prepare, highest: Self.absurd, neverAccepted: true),
                                 from: Self.acceptors[0], now: now, into: &effects)
                if attempts > 1 {
                    for acceptor in Self.acceptors.dropFirst() {
                        proposer.receive(.promise(requestID: prepare, accepted: .zero, value: nil, removalFloor: nil),
                                         from: acceptor, now: now, into: &effects)
                    }
                }
            }
            for case .sendToEach(.acceptWithParent(let accept, _, _, _, _, _, _, _), _) in effects {
                for acceptor in Self.acceptors.dropFirst() {
                    proposer.receive(.accepted(requestID: accept), from: acceptor, now: now, into: &effects)
                }
            }
            succeeded = effects.contains {
                if case .proposalCompleted(id, .success) = $0 { true } else { false }
            }
            if !succeeded {
                effects.removeAll()
                now = proposer.nextDeadline
                proposer.tick(now: now, into: &effects)
            }
        }
        #expect(succeeded)
        #expect(attempts == 2)
        #expect(proposer.counters.ballotsExhausted == 1)
    }

    /// A forged ballot at the followed limit is followed: the proposer has
    /// 2⁶⁰ ballots of its own left (the review found the limit its own
    /// counter stopped at, so a forge there or just below exhausted it).
    @Test("a forged ballot at the followed limit leaves the proposer its other keys")
    func forgedAtTheFollowedLimit() throws {
        var proposer = try RequestIDTests.makeProposer(1)
        var effects: [CASPaxosEffect] = []
        _ = try proposer.propose(key: Self.key, change: { _ in [1] }, now: Self.now, into: &effects)
        let prepare = try #require(ProposerRestartTests.prepareRequest(in: effects))
        for acceptor in Self.acceptors {
            proposer.receive(
                .conflict(
                    requestID: prepare, highest: Ballot(counter: Ballot.followedCounterLimit, proposer: NodeID(9)),
                    neverAccepted: true),
                from: acceptor, now: Self.now, into: &effects)
        }
        #expect(proposer.counter == Ballot.followedCounterLimit)
        #expect(try RequestIDTests.write(&proposer, key: "other").succeeded)
        #expect(proposer.counters.absurdBallots == 0)
    }

    /// A ballot above the followed limit but below the maximum is beaten
    /// from the counter above the limit: the key stays writable, its
    /// ballots (prepares, accepts, piggybacked next ballots, the cached
    /// one's reuse) rise and never repeat, and the other keys' stay low.
    @Test("a key refused for an absurd ballot below the maximum is beaten from the counter above the limit")
    func absurdBallotBelowTheMaximumIsBeaten() throws {
        var proposer = try RequestIDTests.makeProposer(1)
        var effects: [CASPaxosEffect] = []
        let limit = Ballot.followedCounterLimit
        let forged = Ballot(counter: limit + 5, proposer: NodeID(9))
        _ = try proposer.propose(key: Self.key, change: { _ in [1] }, now: Self.now, into: &effects)
        let first = try #require(ProposerRestartTests.prepareRequest(in: effects))
        for acceptor in Self.acceptors {
            proposer.receive(.conflict(requestID: first, highest: forged, neverAccepted: true), from: acceptor,
                             now: Self.now, into: &effects)
        }
        // After the back-off, the retry's prepare beats the forged ballot.
        effects.removeAll()
        proposer.tick(now: proposer.nextDeadline, into: &effects)
        let second = try #require(ProposerRestartTests.prepareRequest(in: effects))
        for acceptor in Self.acceptors.prefix(2) {
            proposer.receive(.promise(requestID: second, accepted: .zero, value: nil, removalFloor: nil), from: acceptor,
                             now: Self.now, into: &effects)
        }
        let accept = try #require(effects.lazy.compactMap { effect -> UInt64? in
            if case .sendToEach(.acceptWithParent(let requestID, _, _, _, _, _, _, _), _) = effect { requestID } else { nil }
        }.first)
        for acceptor in Self.acceptors.prefix(2) {
            proposer.receive(.accepted(requestID: accept), from: acceptor, now: Self.now, into: &effects)
        }
        // The key's next write takes its cached ballot (one round trip).
        _ = try proposer.propose(key: Self.key, change: { _ in [2] }, now: Self.now, into: &effects)
        // Prepare, accept (with its next ballot), the cached ballot's
        // accept (with the next).
        let own = Ballot.ownCounterLimit
        #expect(Self.sentBallots(effects).map(\.counter) == [own + 1, own + 1, own + 2, own + 2, own + 3])
        #expect(proposer.counters.absurdBallots == 2)
        effects.removeAll()
        _ = try proposer.propose(key: Array("other".utf8), change: { _ in [1] }, now: Self.now, into: &effects)
        #expect(Self.sentBallots(effects).map(\.counter) == [2])
    }

    @Test("an acceptor drops in-process messages whose ballot, next ballot or age is above the maximum; it stores none")
    func acceptorRefusesAbsurdValues() throws {
        var acceptor = try Acceptor(configuration: CASPaxosConfiguration())
        let over = Ballot(counter: Ballot.maximumCounter + 1, proposer: NodeID(1))
        let top = Ballot(counter: Ballot.maximumCounter, proposer: NodeID(1))
        let below = Ballot(counter: 5, proposer: NodeID(1))
        let messages: [CASPaxosMessage] = [
            .prepare(requestID: 1, key: Self.key, ballot: over, age: 0, version: .zero),
            .prepare(requestID: 2, key: Self.key, ballot: below, age: ProposerAge.maximumAge + 1, version: .zero),
            .accept(requestID: 3, key: Self.key, ballot: over, age: 0, value: [1], nextBallot: nil, version: .zero),
            .accept(requestID: 4, key: Self.key, ballot: below, age: 0, value: [1], nextBallot: over, version: .zero),
        ]
        var effects: [CASPaxosEffect] = []
        for message in messages { acceptor.receive(message, from: Self.acceptors[0], into: &effects) }
        #expect(effects.isEmpty)
        #expect(acceptor.counters.invalidBallots == 4)
        #expect(acceptor.register(Self.key) == nil)
        // At the maximums, taken.
        acceptor.receive(
            .accept(requestID: 5, key: Self.key, ballot: below, age: ProposerAge.maximumAge, value: [1], nextBallot: top,
                    version: .zero),
            from: Self.acceptors[0], into: &effects)
        #expect(acceptor.register(Self.key)?.promised == top)
    }

    @Test("a proposer at the maximum age fails its proposals, definite, sends nothing, and stays there when invalidated")
    func ageAtTheMaximum() throws {
        var proposer = try RequestIDTests.makeProposer(1)
        var effects: [CASPaxosEffect] = []
        let (first, _) = try Self.agedByItsFirstPrepare(&proposer, into: &effects)
        proposer.receive(.invalidate(requestID: 8, key: Self.key, ballot: Self.absurd), from: Self.acceptors[0],
                         now: Self.now, into: &effects)
        #expect(proposer.age == ProposerAge.maximumAge)
        let second = try proposer.propose(key: Array("other".utf8), change: { _ in [1] }, now: Self.now, into: &effects)
        // The first retries after its back-off, and fails too.
        Self.runOut(&proposer, into: &effects)
        #expect(Self.sentBallots(effects).isEmpty)
        #expect(Set(Self.unavailable(effects)) == [first, second])
    }

    @Test("a proposer brought to the maximum age mid-attempt sends no accept once its promises come")
    func ageReachedMidAttempt() throws {
        var proposer = try RequestIDTests.makeProposer(1)
        var effects: [CASPaxosEffect] = []
        let (id, prepare) = try Self.agedByItsFirstPrepare(&proposer, into: &effects)
        for acceptor in Self.acceptors.dropFirst() {
            proposer.receive(.promise(requestID: prepare, accepted: .zero, value: nil, removalFloor: nil), from: acceptor,
                             now: Self.now, into: &effects)
        }
        #expect(Self.sentBallots(effects).isEmpty)
        #expect(Self.unavailable(effects) == [id])
    }

    @Test("a garbage collection on a proposer at the maximum age stops at once, .notAvailable, instead of restarting for ever")
    func maintenanceAtTheMaximumAge() throws {
        var proposer = try RequestIDTests.makeProposer(1)
        var effects: [CASPaxosEffect] = []
        _ = try Self.agedByItsFirstPrepare(&proposer, into: &effects)
        effects.removeAll()
        let task = try proposer.collectGarbage(key: Array("gone".utf8), proposers: [], now: Self.now, into: &effects)
        let ended = effects.contains {
            if case .maintenanceCompleted(task, .failure(let error)) = $0 { error.code == .notAvailable } else { false }
        }
        #expect(ended)
        #expect(proposer.garbageCollectionCount == 0)
    }

    @Test("a garbage collection of a key promised at the maximum stops, .notAvailable, naming the key no proposer can write")
    func maintenanceOnAnExhaustedKey() throws {
        var proposer = try RequestIDTests.makeProposer(1)
        var effects: [CASPaxosEffect] = []
        let task = try proposer.collectGarbage(key: Array("gone".utf8), proposers: [], now: Self.now, into: &effects)
        let prepare = try #require(effects.lazy.compactMap { effect -> UInt64? in
            switch effect {
            case .sendToEach(.prepare(let request, _, _, _, _), _), .sendToEach(.collectionPrepare(let request, _, _, _, _), _):
                request
            default: nil
            }
        }.first)
        Self.outbidToTheMaximum(&proposer, request: prepare, into: &effects)
        Self.runOut(&proposer, into: &effects)
        let failure = effects.lazy.compactMap { effect -> CASPaxosError? in
            if case .maintenanceCompleted(task, .failure(let error)) = effect { error } else { nil }
        }.first
        #expect(failure?.code == .notAvailable)
        #expect(failure?.detail.hasSuffix("the task stopped at key 'gone': an acceptor promised it a ballot at the limit, so only a quorum of the others can take its writes; run the task again once they answer") == true, "\(String(describing: failure))")
        #expect(proposer.garbageCollectionCount == 0)
    }

    @Test("a refusal that answers no request of the proposer moves neither its counter nor its age")
    func unsolicitedRefusals() throws {
        var proposer = try RequestIDTests.makeProposer(1)
        var effects: [CASPaxosEffect] = []
        proposer.receive(.conflict(requestID: 12_345, highest: Self.absurd, neverAccepted: true), from: Self.acceptors[0],
                         now: Self.now, into: &effects)
        proposer.receive(.staleAge(requestID: 12_346, minimumAge: ProposerAge.maximumAge), from: Self.acceptors[0],
                         now: Self.now, into: &effects)
        #expect(proposer.age == 0)
        _ = try proposer.propose(key: Self.key, change: { _ in [1] }, now: Self.now, into: &effects)
        #expect(Self.sentBallots(effects).map(\.counter) == [1])
    }

    @Test("exhausted, every proposal queued on the key fails in turn, in order, without recursion as deep as the queue")
    func queuedProposalsFail() throws {
        var configuration = CASPaxosConfiguration()
        configuration.maximumPendingProposals = 100_000
        var proposer = try Proposer(
            id: NodeID(1), quorums: .majority(of: Self.acceptors), configuration: configuration, seed: 1)
        var effects: [CASPaxosEffect] = []
        // Its own counter one ballot short of its limit.
        proposer.counter = Ballot.ownCounterLimit - 1
        let first = try proposer.propose(key: Self.key, change: { _ in [1] }, now: Self.now, into: &effects)
        let prepare = try #require(ProposerRestartTests.prepareRequest(in: effects))
        let queued = try (0..<50_000).map { _ in
            try proposer.propose(key: Self.key, change: { _ in [1] }, now: Self.now, into: &effects)
        }
        for acceptor in Self.acceptors {
            proposer.receive(
                .conflict(
                    requestID: prepare, highest: Ballot(counter: Ballot.followedCounterLimit, proposer: NodeID(9)),
                    neverAccepted: true),
                from: acceptor, now: Self.now, into: &effects)
        }
        Self.runOut(&proposer, into: &effects)
        #expect(Self.unavailable(effects) == [first] + queued)
    }

    /// Every absent key is promised at the removal floor: an absurd ballot
    /// there would refuse every proposer's ballots for every new key (the
    /// review of the proposer's containment found a collection spreading
    /// a key's absurd ballot so). It stays in the register it reached.
    @Test("an acceptor keeps its removal floor at or below the own-counter limit: absurd re-writes dropped, absurd registers kept")
    func acceptorKeepsItsFloorSane() throws {
        var configuration = CASPaxosConfiguration()
        configuration.maximumRegisters = 2
        var acceptor = try Acceptor(configuration: configuration)
        var effects: [CASPaxosEffect] = []
        let absurd = Ballot(counter: Ballot.ownCounterLimit + 1, proposer: NodeID(9))
        let sender = Self.acceptors[0]
        // A re-write of a key it lacks would raise the floor: dropped.
        acceptor.receive(.rewriteTombstone(requestID: 1, key: [1], ballot: absurd, age: 0, version: .zero), from: sender,
                         into: &effects)
        #expect(effects.isEmpty)
        #expect(acceptor.snapshot.removalFloor == .zero)
        // Full of promise-only registers, the oldest absurd: a new key's
        // prepare folds the other one.
        acceptor.receive(.prepare(requestID: 2, key: [2], ballot: absurd, age: 0, version: .zero), from: sender, into: &effects)
        acceptor.receive(.prepare(requestID: 3, key: [3], ballot: Ballot(counter: 5, proposer: NodeID(1)), age: 0, version: .zero),
                         from: sender, into: &effects)
        acceptor.receive(.prepare(requestID: 4, key: [4], ballot: Ballot(counter: 10, proposer: NodeID(1)), age: 0, version: .zero),
                         from: sender, into: &effects)
        #expect(acceptor.register([2])?.promised == absurd)
        #expect(acceptor.register([3]) == nil)
        #expect(acceptor.register([4]) != nil)
        #expect(acceptor.snapshot.removalFloor.counter < 10)
        // A collection's removal of a tombstone promised above the limit
        // keeps it (and is acknowledged: the collection ends).
        effects.removeAll()
        acceptor.receive(.accept(requestID: 5, key: [2], ballot: absurd, age: 0, value: nil, nextBallot: nil, version: .zero),
                         from: sender, into: &effects)
        acceptor.receive(.removeTombstone(requestID: 6, key: [2], ballot: absurd), from: sender, into: &effects)
        #expect(acceptor.register([2])?.isTombstone == true)
        #expect(effects.contains { if case .send(.acknowledged(6), _) = $0 { true } else { false } })
        #expect(acceptor.snapshot.removalFloor.counter < 10)
        #expect(acceptor.counters.absurdFloorsRefused == 3)
    }

    /// A proposer that followed a forge to the followed limit draws its
    /// own ballots above it: acceptors fold and collect them as any other
    /// (the review found them refused, a full acceptor then taking no new
    /// key of that proposer's).
    @Test("ballots a proposer draws after following a forge to the followed limit are folded and collected as any")
    func ownBallotsPastTheFollowedLimitAreSane() throws {
        var configuration = CASPaxosConfiguration()
        configuration.maximumRegisters = 1
        var acceptor = try Acceptor(configuration: configuration)
        var effects: [CASPaxosEffect] = []
        let sender = Self.acceptors[0]
        let (first, second) = (
            Ballot(counter: Ballot.followedCounterLimit + 1, proposer: NodeID(1)),
            Ballot(counter: Ballot.followedCounterLimit + 2, proposer: NodeID(1))
        )
        acceptor.receive(.prepare(requestID: 1, key: [1], ballot: first, age: 0, version: .zero), from: sender, into: &effects)
        effects.removeAll()
        // Full: the promise-only register of [1] is folded for [2].
        acceptor.receive(.prepare(requestID: 2, key: [2], ballot: second, age: 0, version: .zero), from: sender, into: &effects)
        #expect(acceptor.register([1]) == nil)
        #expect(acceptor.register([2])?.promised == second)
        #expect(!effects.contains { if case .send(.registersFull, _) = $0 { true } else { false } })
        #expect(acceptor.counters.absurdFloorsRefused == 0)
    }

    @Test("an acceptor drops an in-process setMinimumAges above the maximum age; it stores none")
    func minimumAgesAboveTheMaximum() throws {
        var acceptor = try Acceptor(configuration: CASPaxosConfiguration())
        var effects: [CASPaxosEffect] = []
        let ages = [ProposerAge(proposer: NodeID(1), age: ProposerAge.maximumAge + 1)]
        acceptor.receive(.setMinimumAges(requestID: 1, ages: ages), from: Self.acceptors[0], into: &effects)
        #expect(effects.isEmpty)
        #expect(acceptor.snapshot.minimumAges.isEmpty)
        #expect(acceptor.counters.invalidBallots == 1)
    }
}
