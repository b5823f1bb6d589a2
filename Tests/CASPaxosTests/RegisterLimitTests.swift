@testable import CASPaxos
import EventCore
import Testing

/// An acceptor that holds ``CASPaxosConfiguration/maximumRegisters``
/// registers refuses to store a new key with
/// ``CASPaxosMessage/registersFull(requestID:)``, and a proposer that such
/// refusals leave short of a quorum fails the proposal at once with
/// ``CASPaxosError/Code/registersFull``, rather than retry, unanswered,
/// until its deadline.
@Suite("Register limit")
struct RegisterLimitTests {
    typealias Cluster = DuplicatedAcceptTests.Cluster
    static let endpoints = DuplicatedAcceptTests.acceptorEndpoints
    static let held = Array("held".utf8)
    static let new = Array("new".utf8)

    /// An acceptor with room for one register, holding ``held`` as
    /// `register`, and a removal floor of `floor`.
    static func fullAcceptor(
        floor: Ballot = .zero, holding register: RegisterState = RegisterState(promised: Ballot(counter: 50, proposer: NodeID(1)))
    ) throws -> Acceptor {
        var configuration = CASPaxosConfiguration()
        configuration.maximumRegisters = 1
        return try Acceptor(
            recovering: AcceptorSnapshot(registers: [held: register], removalFloor: floor),
            configuration: configuration)
    }

    /// `proposer` starts writing [1] to ``new``: the proposal, its effects
    /// (the prepare), and the removal floor just below the prepare's
    /// ballot, whose least ballot above is that one (an acceptor with that
    /// floor promises it without a register).
    static func firstWrite(
        _ proposer: inout Proposer, at now: Instant
    ) throws -> (id: UInt64, effects: [CASPaxosEffect], floor: Ballot) {
        var effects: [CASPaxosEffect] = []
        let id = try proposer.propose(key: new, change: { _ in [1] }, now: now, into: &effects)
        let prepared = effects.first.flatMap { effect -> Ballot? in
            if case .sendToEach(.prepare(_, _, let ballot, _, _), _) = effect { ballot } else { nil }
        }
        let ballot = try #require(prepared, "no prepare: \(effects)")
        let floor = Ballot(counter: ballot.counter, proposer: NodeID(ballot.proposer.rawValue - 1))
        #expect(floor.successor == ballot)
        return (id, effects, floor)
    }

    static func replies(_ effects: [CASPaxosEffect]) -> [CASPaxosMessage] {
        effects.compactMap { if case .send(let message, _) = $0 { message } else { nil } }
    }

    @Test("a full acceptor refuses to store a new key, says so, and stores nothing; its keys and refusals work as before")
    func fullAcceptorSaysSo() throws {
        var acceptor = try Self.fullAcceptor(floor: Ballot(counter: 9, proposer: NodeID(4)))
        var effects: [CASPaxosEffect] = []
        let above = Ballot(counter: 20, proposer: NodeID(7))
        acceptor.receive(
            .prepare(requestID: 1, key: Self.new, ballot: above, age: 0, version: .zero), from: Self.endpoints[0],
            into: &effects)
        acceptor.receive(
            .accept(requestID: 2, key: Self.new, ballot: above, age: 0, value: [1], nextBallot: nil, version: .zero),
            from: Self.endpoints[0], into: &effects)
        #expect(Self.replies(effects) == [.registersFull(requestID: 1), .registersFull(requestID: 2)])
        #expect(acceptor.counters.registersRefused == 2)
        #expect(acceptor.registerCount == 1 && acceptor.register(Self.new) == nil)
        #expect(!effects.contains { if case .persist = $0 { true } else { false } })

        // A ballot at the floor is refused as by an acceptor with room (it
        // may have accepted it for a key it removed), and the least ballot
        // above the floor is promised, as it is by every absent key, with
        // nothing to store.
        effects.removeAll()
        acceptor.receive(
            .prepare(requestID: 3, key: Self.new, ballot: Ballot(counter: 9, proposer: NodeID(4)), age: 0, version: .zero),
            from: Self.endpoints[0], into: &effects)
        acceptor.receive(
            .prepare(requestID: 4, key: Self.new, ballot: Ballot(counter: 9, proposer: NodeID(5)), age: 0, version: .zero),
            from: Self.endpoints[0], into: &effects)
        let answers = Self.replies(effects)
        #expect(answers.count == 2)
        if case .conflict(3, _, false) = answers.first {} else { Issue.record("not a conflict: \(answers)") }
        if case .promise(4, .zero, nil, _) = answers.last {} else { Issue.record("not a promise: \(answers)") }
        #expect(acceptor.registerCount == 1)

        // The key it holds is written as ever.
        effects.removeAll()
        acceptor.receive(
            .accept(requestID: 5, key: Self.held, ballot: Ballot(counter: 60, proposer: NodeID(7)), age: 0, value: [2], nextBallot: nil, version: .zero),
            from: Self.endpoints[0], into: &effects)
        #expect(Self.replies(effects) == [.accepted(requestID: 5)])
        #expect(acceptor.register(Self.held)?.value == [2])
    }

    @Test("two full acceptors of three fail a new key's write at once, definitely; one full acceptor of three does not stop it")
    func quorumOfFullAcceptorsFailsAtOnce() throws {
        var cluster = try Cluster()
        cluster.acceptors[0] = try Self.fullAcceptor()
        var proposer = try DuplicatedAcceptTests.makeProposer(7)
        let endpoint = Endpoint.loopbackV4(port: 100)
        var effects: [CASPaxosEffect] = []
        let write: CASPaxosChange = { _ in [1] }
        var id = try proposer.propose(key: Self.new, change: write, now: cluster.now, into: &effects)
        let started = cluster.now
        let written = cluster.finish(id, on: &proposer, at: endpoint, startingWith: effects)
        #expect(try written?.get() == [1])
        #expect(cluster.acceptors.map { $0.register(Self.new) != nil } == [false, true, true])

        cluster.acceptors[1] = try Self.fullAcceptor()
        effects.removeAll()
        id = try proposer.propose(key: Array("newer".utf8), change: write, now: cluster.now, into: &effects)
        let refused = cluster.finish(id, on: &proposer, at: endpoint, startingWith: effects)
        guard case .failure(let error)? = refused else {
            Issue.record("the write did not fail: \(String(describing: refused))")
            return
        }
        #expect(error.code == .registersFull && !error.isIndeterminate, "\(error)")
        #expect(cluster.now == started, "it failed at its first attempt, with no retry")
        #expect(proposer.counters.registersFullFailures == 1)
        #expect(proposer.counters.failedAttempts == 0)
    }

    /// Acceptors whose removal floor is just below the proposer's first
    /// ballot promise it without a register (as every absent key's), so
    /// the accept goes out; refused there for want of room, it is written
    /// on the third acceptor alone, and the failure says it may have been.
    @Test("a write refused for full registers after its accept went out fails indeterminate")
    func fullAfterAcceptIsIndeterminate() throws {
        var cluster = try Cluster()
        var proposer = try DuplicatedAcceptTests.makeProposer(7)
        let (id, effects, floor) = try Self.firstWrite(&proposer, at: cluster.now)
        for index in 0..<2 { cluster.acceptors[index] = try Self.fullAcceptor(floor: floor) }
        let result = cluster.finish(id, on: &proposer, at: .loopbackV4(port: 100), startingWith: effects)
        guard case .failure(let error)? = result else {
            Issue.record("the write did not fail: \(String(describing: result))")
            return
        }
        #expect(error.code == .conflict && error.isIndeterminate, "\(error)")
        #expect(cluster.acceptors[0].register(Self.new) == nil && cluster.acceptors[1].register(Self.new) == nil)
        #expect(cluster.acceptors[2].register(Self.new)?.value == [1])
    }

    /// A refusal for want of room proves nothing of the future, unlike a
    /// conflict (a promise only rises): once room frees, a repeated copy
    /// of the refused accept is taken. So a proposal whose accept every
    /// acceptor refused, the full ones for want of room, has not proved it
    /// unwritten, and fails indeterminate.
    @Test("an accept refused for want of room may be taken later from a repeated copy: the proposal fails indeterminate")
    func roomFreedLater() throws {
        var cluster = try Cluster()
        var proposer = try DuplicatedAcceptTests.makeProposer(7)
        let endpoint = Endpoint.loopbackV4(port: 100)
        let (id, prepare, floor) = try Self.firstWrite(&proposer, at: cluster.now)
        var effects = prepare
        // Acceptors 0 and 1 are full (a tombstone below their floor), and
        // promise the proposer's first ballot, the least above the floor,
        // with nothing stored.
        let tombstone = Ballot(counter: floor.counter, proposer: NodeID(1))
        for index in 0..<2 {
            cluster.acceptors[index] = try Self.fullAcceptor(
                floor: floor, holding: RegisterState(promised: tombstone, accepted: tombstone, value: nil))
        }
        let promises = cluster.deliver(effects, from: endpoint, reaching: 0..<2)
        effects.removeAll()
        for (from, reply) in promises { proposer.receive(reply, from: from, now: cluster.now, into: &effects) }
        let accept = effects
        // Another proposer's prepare reaches acceptor 2 first: it refuses
        // the accept with a conflict, knowing it never took it; 0 and 1
        // refuse it for want of room.
        var other = try DuplicatedAcceptTests.makeProposer(9)
        var otherEffects: [CASPaxosEffect] = []
        _ = try other.propose(key: Self.new, change: { _ in [9] }, now: cluster.now, into: &otherEffects)
        _ = cluster.deliver(otherEffects, from: .loopbackV4(port: 101), reaching: 2..<3)
        effects.removeAll()
        // The conflict first: the full acceptors' refusals then end the
        // attempt with every acceptor's refusal in.
        let refusals =
            cluster.deliver(accept, from: endpoint, reaching: 2..<3) + cluster.deliver(accept, from: endpoint, reaching: 0..<2)
        #expect(refusals.filter { if case .registersFull = $0.message { true } else { false } }.count == 2)
        for (from, reply) in refusals { proposer.receive(reply, from: from, now: cluster.now, into: &effects) }
        let result = cluster.finish(id, on: &proposer, at: endpoint, startingWith: effects)
        guard case .failure(let error)? = result else {
            Issue.record("the write did not fail: \(String(describing: result))")
            return
        }
        #expect(error.code == .conflict && error.isIndeterminate, "\(error)")

        // Room frees (acceptor 0 collects its tombstone, acceptor 1 gets a
        // higher limit) and a repeated copy of the accept arrives: both take
        // it, and a read finds the value chosen.
        var ignored: [CASPaxosEffect] = []
        cluster.acceptors[0].receive(
            .removeTombstone(requestID: 77, key: Self.held, ballot: tombstone), from: endpoint, into: &ignored)
        cluster.acceptors[1] = try Acceptor(recovering: cluster.acceptors[1].snapshot, configuration: CASPaxosConfiguration())
        _ = cluster.deliver(accept, from: endpoint, reaching: 0..<2)
        var reader = try DuplicatedAcceptTests.makeProposer(11)
        var readEffects: [CASPaxosEffect] = []
        let read = try reader.read(key: Self.new, now: cluster.now, into: &readEffects)
        let seen = cluster.finish(read, on: &reader, at: .loopbackV4(port: 102), startingWith: readEffects)
        #expect(try seen?.get() == [1])
    }
}
