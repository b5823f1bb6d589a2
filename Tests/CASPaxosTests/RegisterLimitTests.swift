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
    /// `register` (by default a value: a register holding only a promise
    /// would make room for a new key), and a removal floor of `floor`.
    static func fullAcceptor(
        floor: Ballot = .zero,
        holding register: RegisterState = RegisterState(
            promised: Ballot(counter: 50, proposer: NodeID(1)), accepted: Ballot(counter: 40, proposer: NodeID(1)),
            value: [0])
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
        let ballot = try #require(preparedBallot(effects.prefix(1)), "no prepare: \(effects)")
        let floor = ballot.predecessor
        #expect(floor.successor == ballot)
        return (id, effects, floor)
    }

    /// The ballot of the first prepare `effects` send, if any.
    static func preparedBallot(_ effects: some Sequence<CASPaxosEffect>) -> Ballot? {
        effects.lazy.compactMap { effect -> Ballot? in
            if case .sendToEach(.prepare(_, _, let ballot, _, _), _) = effect { ballot } else { nil }
        }.first
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

    // MARK: Promise-only registers make room

    static func writes(_ effects: [CASPaxosEffect]) -> [AcceptorWrite] {
        effects.compactMap { if case .persist(let write) = $0 { write } else { nil } }
    }

    /// `message`'s replies from `acceptor`, its writes applied to `store`
    /// (as its driver applies them before the replies leave).
    static func handle(
        _ message: CASPaxosMessage, by acceptor: inout Acceptor, storingIn store: InMemoryAcceptorStore
    ) -> [CASPaxosMessage] {
        var effects: [CASPaxosEffect] = []
        acceptor.receive(message, from: endpoints[0], into: &effects)
        for write in writes(effects) { store.apply(write) }
        return replies(effects)
    }

    static func ballot(_ counter: UInt64, _ proposer: UInt64) -> Ballot {
        Ballot(counter: counter, proposer: NodeID(proposer))
    }

    /// A prepare whose accept never came leaves a register holding only a
    /// promise. At the limit, a new key takes the room of the oldest such
    /// register (by when it was last promised), and the removal floor
    /// keeps that register's promise: for its key nothing changes.
    @Test("a full acceptor makes room by folding its oldest promise-only register into the floor, which keeps its promise")
    func promiseOnlyRegisterMakesRoom() throws {
        var configuration = CASPaxosConfiguration()
        configuration.maximumRegisters = 3
        var acceptor = try Acceptor(configuration: configuration)
        let store = InMemoryAcceptorStore()
        let (x, y, z, w) = (Array("x".utf8), Array("y".utf8), Array("z".utf8), Array("w".utf8))
        func prepare(_ id: UInt64, _ key: [UInt8], _ ballot: Ballot) -> [CASPaxosMessage] {
            Self.handle(
                .prepare(requestID: id, key: key, ballot: ballot, age: 0, version: .zero), by: &acceptor, storingIn: store)
        }
        func accept(_ id: UInt64, _ key: [UInt8], _ ballot: Ballot) -> [CASPaxosMessage] {
            Self.handle(
                .accept(requestID: id, key: key, ballot: ballot, age: 0, value: [UInt8(id)], nextBallot: nil, version: .zero),
                by: &acceptor, storingIn: store)
        }
        // x and z hold promises only (x promised again after z was), y a
        // value.
        _ = prepare(1, x, Self.ballot(10, 1))
        _ = prepare(2, y, Self.ballot(11, 1))
        #expect(accept(3, y, Self.ballot(11, 1)) == [.accepted(requestID: 3)])
        _ = prepare(4, z, Self.ballot(12, 1))
        _ = prepare(5, x, Self.ballot(13, 1))
        #expect(acceptor.registerCount == 3)

        // A new key takes z's room: z is the oldest promise.
        var effects: [CASPaxosEffect] = []
        acceptor.receive(
            .prepare(requestID: 6, key: w, ballot: Self.ballot(14, 2), age: 0, version: .zero), from: Self.endpoints[0],
            into: &effects)
        for write in Self.writes(effects) { store.apply(write) }
        #expect(
            Self.writes(effects) == [
                .remove(key: z, floor: Self.ballot(12, 0)),
                .register(key: w, state: RegisterState(promised: Self.ballot(14, 2))),
            ])
        #expect(Self.replies(effects) == [.promise(requestID: 6, accepted: .zero, value: nil, removalFloor: Self.ballot(12, 0))])
        #expect(acceptor.register(z) == nil && acceptor.snapshot.removalFloor == Self.ballot(12, 0))
        #expect(acceptor.counters.promiseOnlyRegistersFolded == 1 && acceptor.counters.registersRefused == 0)

        // z refuses what it refused (a prepare below its promise), and takes
        // an accept at its promise, making room again: x goes, the oldest
        // promise now (w was promised after it). The acceptance stands,
        // below the floor x's fold raises.
        guard case .conflict(7, Self.ballot(12, 1), false)? = prepare(7, z, Self.ballot(11, 9)).first else {
            Issue.record("z's promise was not kept")
            return
        }
        #expect(accept(8, z, Self.ballot(12, 1)) == [.accepted(requestID: 8)])
        #expect(acceptor.register(x) == nil && acceptor.register(z)?.value == [8])
        #expect(acceptor.snapshot.removalFloor == Self.ballot(13, 0))
        guard case .conflict(9, _, _)? = accept(9, x, Self.ballot(12, 5)).first else {
            Issue.record("x's promise was not kept")
            return
        }
        // w is the last promise-only register; once it holds a value, the
        // acceptor holds values only, and refuses a new key.
        #expect(accept(10, w, Self.ballot(14, 2)) == [.accepted(requestID: 10)])
        #expect(prepare(11, Array("v".utf8), Self.ballot(20, 1)) == [.registersFull(requestID: 11)])
        #expect(acceptor.counters.promiseOnlyRegistersFolded == 2 && acceptor.counters.registersRefused == 1)

        // The store holds what the acceptor does, and an acceptor recovered
        // from it has no promise-only register to fold.
        #expect(store.snapshot == acceptor.snapshot)
        var recovered = try Acceptor(recovering: store.load(), configuration: configuration)
        #expect(
            Self.handle(
                .prepare(requestID: 12, key: Array("v".utf8), ballot: Self.ballot(20, 1), age: 0, version: .zero),
                by: &recovered, storingIn: store) == [.registersFull(requestID: 12)])
    }

    @Test("a ballot's predecessor is the greatest ballot below it, zero below the least real one")
    func predecessor() {
        for ballot in [Self.ballot(7, 3), Self.ballot(7, 0), Self.ballot(2, 0), Self.ballot(7, UInt64.max)] {
            #expect(ballot.predecessor < ballot && ballot.predecessor.successor == ballot, "\(ballot)")
        }
        #expect(Self.ballot(7, 0).predecessor == Self.ballot(6, UInt64.max))
        #expect(Self.ballot(1, 0).predecessor == .zero && Ballot.zero.predecessor == .zero)
    }

    /// What the fold is for: a proposer that crashed between its prepares
    /// and its accepts left every acceptor full of registers holding only
    /// a promise. New keys take their room, one each, until every register
    /// holds a value; then a new key is refused, definitely.
    @Test("writes a crashed proposer left unfinished fill every acceptor; new keys still take their room")
    func abandonedWritesGiveTheirRoom() throws {
        var configuration = CASPaxosConfiguration()
        configuration.maximumRegisters = 4
        var cluster = try Cluster()
        cluster.acceptors = try (0..<3).map { _ in try Acceptor(configuration: configuration) }
        let abandoned = (0..<4).map { Array("abandoned-\($0)".utf8) }
        var crashed = try DuplicatedAcceptTests.makeProposer(3)
        for key in abandoned {
            var effects: [CASPaxosEffect] = []
            _ = try crashed.propose(key: key, change: { _ in [3] }, now: cluster.now, into: &effects)
            _ = cluster.deliver(effects, from: .loopbackV4(port: 99))
        }
        #expect(cluster.acceptors.allSatisfy { $0.registerCount == 4 })

        var writer = try DuplicatedAcceptTests.makeProposer(7)
        let endpoint = Endpoint.loopbackV4(port: 100)
        func write(_ key: String) throws -> Result<[UInt8]?, CASPaxosError>? {
            var effects: [CASPaxosEffect] = []
            let id = try writer.propose(key: Array(key.utf8), change: { _ in [7] }, now: cluster.now, into: &effects)
            return cluster.finish(id, on: &writer, at: endpoint, startingWith: effects)
        }
        for number in 0..<4 { #expect(try write("new-\(number)")?.get() == [7], "new-\(number)") }
        #expect(cluster.acceptors.allSatisfy { $0.counters.promiseOnlyRegistersFolded == 4 && $0.registerCount == 4 })
        #expect(cluster.acceptors.allSatisfy { acceptor in abandoned.allSatisfy { acceptor.register($0) == nil } })
        guard case .failure(let error)? = try write("one-too-many") else {
            Issue.record("a fifth key was written")
            return
        }
        #expect(error.code == .registersFull && !error.isIndeterminate, "\(error)")
        // The abandoned keys read as never written.
        var effects: [CASPaxosEffect] = []
        let read = try writer.read(key: abandoned[0], now: cluster.now, into: &effects)
        #expect(try cluster.finish(read, on: &writer, at: endpoint, startingWith: effects)?.get() == nil)
    }

    @Test("an acceptor recovered with promise-only registers folds them in byte order")
    func recoveredPromiseOnlyRegisters() throws {
        var configuration = CASPaxosConfiguration()
        configuration.maximumRegisters = 3
        let (a, b, c) = (Array("a".utf8), Array("b".utf8), Array("c".utf8))
        var acceptor = try Acceptor(
            recovering: AcceptorSnapshot(registers: [
                b: RegisterState(promised: Self.ballot(5, 1)),
                a: RegisterState(promised: Self.ballot(6, 1)),
                c: RegisterState(promised: Self.ballot(7, 1), accepted: Self.ballot(7, 1), value: [7]),
            ]),
            configuration: configuration)
        let store = InMemoryAcceptorStore(acceptor.snapshot)
        var folded: [[UInt8]] = []
        for (id, key) in [(1, "d"), (2, "e")] as [(UInt64, String)] {
            let replies = Self.handle(
                .prepare(requestID: id, key: Array(key.utf8), ballot: Self.ballot(9, 2), age: 0, version: .zero),
                by: &acceptor, storingIn: store)
            #expect(replies.count == 1 && !replies.contains(.registersFull(requestID: id)))
            folded += [a, b].filter { acceptor.register($0) == nil && !folded.contains($0) }
        }
        // a's promise is the higher: the floor is just below it.
        #expect(folded == [a, b] && acceptor.snapshot.removalFloor == Self.ballot(6, 0))
        #expect(acceptor.counters.promiseOnlyRegistersFolded == 2 && store.snapshot == acceptor.snapshot)
    }

    /// A fold may raise the floor above the new key's ballot: a promise is
    /// decided under the raised floor (one below it could not be kept: the
    /// key's own fold would take it); an acceptance stands
    /// (``promiseOnlyRegisterMakesRoom``). A folded key is read and
    /// collected as any absent key.
    @Test("a new key's promise is decided under the floor its fold raised; a folded key is read, and its tombstone re-written, as any absent key")
    func foldThenDecide() throws {
        let new = Array("fresh".utf8)
        var acceptor = try Self.fullAcceptor(holding: RegisterState(promised: Self.ballot(100, 1)))
        let store = InMemoryAcceptorStore(acceptor.snapshot)
        // The held register (promised 100.1) gives its room; the prepare at
        // 50.2 is then below the floor, refused, and nothing is stored.
        let refused = Self.handle(
            .prepare(requestID: 1, key: new, ballot: Self.ballot(50, 2), age: 0, version: .zero), by: &acceptor,
            storingIn: store)
        #expect(refused == [.conflict(requestID: 1, highest: Self.ballot(100, 1), neverAccepted: false)])
        #expect(acceptor.registerCount == 0 && acceptor.snapshot.removalFloor == Self.ballot(100, 0))
        #expect(acceptor.counters.promiseOnlyRegistersFolded == 1 && store.snapshot == acceptor.snapshot)

        // The folded key, read, is promised without a register, naming the
        // floor; a collection's re-write of it is taken through the floor.
        let read = Self.handle(
            .readPrepare(requestID: 2, key: Self.held, ballot: Self.ballot(100, 1), age: 0, version: .zero),
            by: &acceptor, storingIn: store)
        #expect(read == [.unrecordedPromise(requestID: 2, removalFloor: Self.ballot(100, 0))])
        let rewrite = Self.handle(
            .rewriteTombstone(requestID: 3, key: Self.held, ballot: Self.ballot(120, 3), age: 0, version: .zero),
            by: &acceptor, storingIn: store)
        #expect(rewrite == [.accepted(requestID: 3)])
        #expect(acceptor.registerCount == 0 && acceptor.snapshot.removalFloor == Self.ballot(120, 3))
        #expect(store.snapshot == acceptor.snapshot)
    }

    /// The race a folded promise must not lose: B prepares `key` (ballot
    /// Q), A prepares it higher (P) on a full acceptor, which then folds
    /// the register to make room for another key. B's accept at Q must
    /// still be refused there, or B and A both create the key from
    /// nothing: two compare-and-sets from nil that succeed.
    @Test("a folded promise still refuses a lower accept: two creations of one key cannot both succeed")
    func foldedPromiseRefusesLowerAccept() throws {
        var cluster = try Cluster()
        var configuration = CASPaxosConfiguration()
        configuration.maximumRegisters = 2
        let held = RegisterState(promised: Self.ballot(1, 1), accepted: Self.ballot(1, 1), value: [0])
        cluster.acceptors[0] = try Acceptor(
            recovering: AcceptorSnapshot(registers: [Self.held: held]), configuration: configuration)
        let key = Array("created".utf8)
        func create(_ value: UInt8) -> CASPaxosChange { { $0 == nil ? [value] : $0 } }
        func answer(_ proposer: inout Proposer, _ replies: [(from: Endpoint, message: CASPaxosMessage)]) -> [CASPaxosEffect] {
            var effects: [CASPaxosEffect] = []
            for (from, reply) in replies { proposer.receive(reply, from: from, now: cluster.now, into: &effects) }
            return effects
        }
        let (endpointA, endpointB) = (Endpoint.loopbackV4(port: 100), Endpoint.loopbackV4(port: 101))
        var a = try DuplicatedAcceptTests.makeProposer(7)
        var b = try DuplicatedAcceptTests.makeProposer(5)
        var effects: [CASPaxosEffect] = []

        // B is promised Q by acceptors 0 and 2, and sends its accept (held
        // back); A is promised P > Q by 0 and 1, and sends its accept.
        let idB = try b.propose(key: key, change: create(5), now: cluster.now, into: &effects)
        let q = try #require(Self.preparedBallot(effects))
        let acceptB = answer(&b, cluster.deliver(effects, from: endpointB, reaching: [0, 2]))
        effects.removeAll()
        let idA = try a.propose(key: key, change: create(7), now: cluster.now, into: &effects)
        let p = try #require(Self.preparedBallot(effects))
        #expect(q < p)
        let acceptA = answer(&a, cluster.deliver(effects, from: endpointA, reaching: [0, 1]))

        // Another key's prepare fills acceptor 0: the promise-only register
        // of `key` (promised P) gives its room.
        var c = try DuplicatedAcceptTests.makeProposer(9)
        effects.removeAll()
        _ = try c.propose(key: Array("other".utf8), change: create(9), now: cluster.now, into: &effects)
        _ = cluster.deliver(effects, from: .loopbackV4(port: 102), reaching: [0])
        #expect(cluster.acceptors[0].register(key) == nil && cluster.acceptors[0].counters.promiseOnlyRegistersFolded == 1)

        // B's accept at Q reaches 0 and 2: 0 refuses it (the floor keeps P).
        let repliesB = cluster.deliver(acceptB, from: endpointB, reaching: [0, 2])
        #expect(repliesB.contains { if case .conflict = $0.message { $0.from == cluster.endpoints[0] } else { false } })
        let afterB = answer(&b, repliesB)
        // A's accept at P reaches 0 and 1: A created the key.
        let resultA = cluster.finish(idA, on: &a, at: endpointA, startingWith: acceptA, reaching: 0..<2)
        #expect(try resultA?.get() == [7])
        // B, whose accept one acceptor took, finds A's value: it did not
        // create the key.
        let resultB = try #require(cluster.finish(idB, on: &b, at: endpointB, startingWith: afterB), "B never ended")
        if case .success(let value) = resultB { #expect(value == [7], "B created the key too") }
        var reader = try DuplicatedAcceptTests.makeProposer(11)
        effects.removeAll()
        let read = try reader.read(key: key, now: cluster.now, into: &effects)
        #expect(try cluster.finish(read, on: &reader, at: .loopbackV4(port: 103), startingWith: effects)?.get() == [7])
    }
}
