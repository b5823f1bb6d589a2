@testable import CASPaxos
import EventCore
import Testing

/// A read's prepare of a key an acceptor holds no register for is
/// promised without being stored (``CASPaxosMessage/unrecordedPromise(requestID:removalFloor:)``).
/// Nothing stops an older accept from being taken there afterwards, so a
/// read that must write a value back may not rely on such a promise: it
/// prepares again, with promises that are stored. Driven by hand, the
/// proposers and acceptors of ``DuplicatedAcceptTests``.
@Suite("Unrecorded promises")
struct UnrecordedPromiseTests {
    static let writerEndpoint = Endpoint.loopbackV4(port: 101)
    static let readerEndpoint = Endpoint.loopbackV4(port: 102)
    static let key = DuplicatedAcceptTests.key

    /// The writer's [1] is chosen on acceptors 0 and 1; acceptor 2 never
    /// hears of the key. The reader's prepare reaches acceptor 2 (no
    /// register: a promise not stored) and acceptor 0 ([1]). Then the
    /// writer's next write, [2], an accept at its cached ballot (below the
    /// reader's), is taken by acceptors 1 and 2 and chosen, and the
    /// writer's client is told so. Written back over the promise acceptor
    /// 2 did not store, the reader's [1] would overwrite the chosen [2]:
    /// a later read would return [1] after a write of [2] had completed.
    @Test("a read that must write back over a promise not stored prepares again, and finds the write chosen since")
    func writeBackAfterAnOlderAcceptWasChosen() throws {
        var cluster = try DuplicatedAcceptTests.Cluster()
        var writer = try DuplicatedAcceptTests.makeProposer(1)
        var reader = try DuplicatedAcceptTests.makeProposer(2)
        var effects: [CASPaxosEffect] = []
        let first = try writer.propose(key: Self.key, change: { _ in [1] }, now: cluster.now, into: &effects)
        #expect(cluster.finish(first, on: &writer, at: Self.writerEndpoint, startingWith: effects, reaching: 0..<2) == .success([1]))

        // The writer's next write goes straight to an accept at its cached
        // ballot; held back for now.
        var writerAccept: [CASPaxosEffect] = []
        let second = try writer.propose(key: Self.key, change: { _ in [2] }, now: cluster.now, into: &writerAccept)

        // The reader's ballot above the writer's.
        reader.counter = 10
        var readEffects: [CASPaxosEffect] = []
        let read = try reader.read(key: Self.key, now: cluster.now, into: &readEffects)
        let fromAbsent = cluster.deliver(readEffects, from: Self.readerEndpoint, reaching: 2..<3)
        let fromHolder = cluster.deliver(readEffects, from: Self.readerEndpoint, reaching: 0..<1)
        guard case .unrecordedPromise? = fromAbsent.first?.message, case .promiseWithParent? = fromHolder.first?.message else {
            Issue.record("unexpected answers: \(fromAbsent), \(fromHolder)")
            return
        }
        #expect(cluster.acceptors[2].register(Self.key) == nil)

        // The writer's [2] is chosen on acceptors 1 and 2 (acceptor 0
        // promised the reader's ballot and refuses it).
        var writerEffects: [CASPaxosEffect] = []
        for (from, reply) in cluster.deliver(writerAccept, from: Self.writerEndpoint) {
            writer.receive(reply, from: from, now: cluster.now, into: &writerEffects)
        }
        #expect(writerEffects.contains { if case .proposalCompleted(second, .success([2])) = $0 { true } else { false } })

        // The reader's quorum: a promise not stored and [1].
        var effectsAfter: [CASPaxosEffect] = []
        for (from, reply) in fromAbsent + fromHolder {
            reader.receive(reply, from: from, now: cluster.now, into: &effectsAfter)
        }
        #expect(reader.counters.readsPreparedAgain == 1)
        #expect(
            cluster.finish(read, on: &reader, at: Self.readerEndpoint, startingWith: effectsAfter) == .success([2]),
            "the read returns the write that completed before it, not the older value it would have written back")
        #expect(cluster.values == [[2], [2], [2]])
    }

    /// Between 2F+1 and 2F+2 acceptors the prepare quorum (2 of the 3 old
    /// acceptors) is no accept quorum (3 of the 4), so a read cannot end
    /// at agreeing promises; but a prepare quorum that accepted nothing
    /// meets every accept quorum, so no write was chosen and the read
    /// returns nil at once. (It prepared again and wrote a tombstone back
    /// on every acceptor, three round trips.)
    @Test("between 3 and 4 acceptors a read of a key no acceptor holds ends at the promises with nil, storing nothing")
    func intermediateConfigurationRead() throws {
        var cluster = try DuplicatedAcceptTests.Cluster(acceptors: 4)
        let quorums = AcceptorQuorums(
            version: 2, prepareAcceptors: Array(cluster.endpoints[0..<3]), prepareQuorum: 2,
            acceptAcceptors: cluster.endpoints, acceptQuorum: 3)
        var reader = try Proposer(id: NodeID(2), quorums: quorums, configuration: CASPaxosConfiguration(), seed: 2)
        var effects: [CASPaxosEffect] = []
        let read = try reader.read(key: Self.key, now: cluster.now, into: &effects)
        #expect(cluster.finish(read, on: &reader, at: Self.readerEndpoint, startingWith: effects) == .success(nil))
        #expect(reader.counters.attempts == 1)
        #expect(reader.counters.readsEndedAtPromises == 1)
        #expect(reader.counters.readsPreparedAgain == 0)
        #expect(cluster.acceptors.allSatisfy { $0.registerCount == 0 })
        #expect(reader.cachedKeyCount == 0)
    }

    /// For a cluster being upgraded from a build that does not know the
    /// read's prepare.
    @Test("with isReadPrepareEnabled off, reads send plain prepares, stored as before")
    func readPrepareOff() throws {
        var configuration = CASPaxosConfiguration()
        configuration.isReadPrepareEnabled = false
        let cluster = try SimulatedCASCluster(seed: 27, proposerCount: 1, configuration: configuration)
        #expect(cluster.outcome(of: .read, key: Self.key, client: 0, proposer: 0, within: .milliseconds(20)) == .ok(nil))
        let acceptors = cluster.acceptors.compactMap { $0?.counters.acceptor }
        #expect(acceptors.map(\.unrecordedPromises).reduce(0, +) == 0)
        #expect(acceptors.map(\.promises).reduce(0, +) >= 2)
        #expect(cluster.memoryStores.filter { $0.snapshot.registerCount == 1 }.count >= 2)
    }
}
