@testable import CASPaxos
import EventCore
import Testing

/// A read that ends at the promises of a collected key (every promise:
/// nothing accepted, a removal floor named) caches its ballot; the write
/// that takes that cached ballot must name no parent, as a write whose
/// prepare saw the floor names none. Named "never written" (the first
/// version of parents did, found by review), it let the retry of a write
/// that was chosen, deleted and collected read the parent as "built on a
/// value older than my first accept" and apply its change a second time.
/// Now the retry ends indeterminate, as before parents.
@Suite("Parent after collection")
struct ParentAfterCollectionTests {
    typealias T = DuplicatedAcceptTests

    @Test("a cached read of a collected key must not let a retry apply its change again (plain prepares)")
    func cachedReadOfCollectedKey() throws { try run(readPrepares: false) }

    /// Default configuration: read prepares are stored because another
    /// proposer's write prepared the collected key everywhere (a promise-only
    /// register) and then stopped before its accept.
    @Test("a cached read of a collected key must not let a retry apply its change again (default configuration)")
    func cachedReadOfCollectedKeyDefault() throws { try run(readPrepares: true) }

    func run(readPrepares: Bool) throws {
        var cluster = try T.Cluster()
        var a = try T.makeProposer(1)
        let aEndpoint = Endpoint.loopbackV4(port: 101)
        // 1. A's increment is accepted everywhere (chosen: value [1]); every
        //    `accepted` reply is lost, so A does not know.
        let (aID, _) = try T.acceptEverywhereLosingReplies(&a, at: aEndpoint, in: &cluster)
        #expect(cluster.values == [[1], [1], [1]])
        // 2. The key is then deleted and collected: every acceptor removed it
        //    and keeps a removal floor above the tombstone (the state a
        //    collection leaves, modelled directly).
        let floor = Ballot(counter: 50, proposer: NodeID(9))
        cluster.acceptors = try (0..<3).map { _ in
            try Acceptor(recovering: AcceptorSnapshot(removalFloor: floor), configuration: CASPaxosConfiguration())
        }
        // 3. Proposer C reads the key (plain prepares: every promise stored,
        //    accepted nothing, names the floor): the read ends at its promises
        //    and caches its ballot, acceptedAt .zero.
        if readPrepares {
            let prepare = CASPaxosMessage.prepare(
                requestID: 77, key: T.key, ballot: Ballot(counter: 60, proposer: NodeID(4)), age: 0, version: .zero)
            _ = cluster.deliver([.sendToEach(prepare, cluster.endpoints)], from: Endpoint.loopbackV4(port: 104))
            #expect(cluster.acceptors.allSatisfy { $0.register(T.key) != nil })
        }
        var configuration = CASPaxosConfiguration()
        configuration.isReadPrepareEnabled = readPrepares
        var c = try Proposer(
            id: NodeID(3), quorums: .majority(of: T.acceptorEndpoints), configuration: configuration, seed: 3)
        let cEndpoint = Endpoint.loopbackV4(port: 103)
        var effects: [CASPaxosEffect] = []
        let readID = try c.read(key: T.key, now: cluster.now, into: &effects)
        let read = cluster.finish(readID, on: &c, at: cEndpoint, startingWith: effects)
        guard case .success(nil)? = read else {
            Issue.record("read: \(String(describing: read))")
            return
        }
        // 4. C increments through the cached ballot: [1], parent .zero.
        effects.removeAll()
        let writeID = try c.propose(key: T.key, change: T.increment, now: cluster.now, into: &effects)
        let write = cluster.finish(writeID, on: &c, at: cEndpoint, startingWith: effects)
        #expect(try write?.get() == [1])
        #expect(cluster.acceptors.allSatisfy { $0.register(T.key)?.parent == nil }, "built below a removal floor")
        // 5. A's proposal retries. Its increment was chosen once already
        //    (then deleted); it must not apply it again.
        cluster.now = cluster.now + .milliseconds(150)
        effects.removeAll()
        a.tick(now: cluster.now, into: &effects)
        let result = cluster.finish(aID, on: &a, at: aEndpoint, startingWith: effects)
        #expect(a.counters.rivalValuesBuiltOnOlder == 0)
        #expect(cluster.values != [[2], [2], [2]], "A's increment applied twice: \(String(describing: result))")
        if case .success = result {
            Issue.record("A's retry succeeded after its change was chosen and collected: \(String(describing: result)), values \(cluster.values)")
        }
    }
}
