import CASPaxos
import EventCore
import Simulation
import Testing

/// Reads: a proposal with the identity change, which ends at the promises
/// when they prove the value chosen (every promise names the same accepted
/// ballot, held by an accept quorum) and otherwise writes the value back.
@Suite("Reads")
struct ReadTests {
    static let key = Array("k".utf8)

    @Test("a read that every promise agrees on takes the prepare round alone, and caches its ballot")
    func agreedPromises() throws {
        let cluster = try SimulatedCASCluster(seed: 21, proposerCount: 2)
        cluster.perform(.write([1]), key: Self.key, client: 0, proposer: 0)
        cluster.network.run(for: .milliseconds(20))
        let sentBefore = cluster.network.statistics.sent
        #expect(
            cluster.outcome(of: .read, key: Self.key, client: 1, proposer: 1, within: .milliseconds(20)) == .ok([1]))
        let reader = cluster.proposers[1].counters.proposer
        #expect(reader.readsEndedAtPromises == 1)
        // Every attempt a prepare to the 3 acceptors (the first one is
        // refused: the writer's cached ballot is promised, and higher), and
        // every request answered; no accept.
        #expect(reader.attempts == 2)
        #expect(reader.requestsSent == 3 * reader.attempts)
        #expect(cluster.network.statistics.sent - sentBefore == 2 * reader.requestsSent)
        // The quorum promised the read's ballot: the next write on the key
        // takes the accept phase at once.
        let write = cluster.outcome(of: .write([2]), key: Self.key, client: 1, proposer: 1, within: .milliseconds(20))
        #expect(write == .ok([2]))
        let writer = cluster.proposers[1].counters.proposer
        #expect(writer.oneRoundTripAttempts == 1)
        #expect(writer.attempts == reader.attempts + 1)
        #expect(writer.requestsSent == reader.requestsSent + 3)
        #expect(
            cluster.outcome(of: .read, key: Self.key, client: 0, proposer: 0, within: .milliseconds(190)) == .ok([2]))
        #expect(cluster.check() == .linearizable)
    }

    @Test("a read of a key never written ends at the promises with no value")
    func emptyRegister() throws {
        let cluster = try SimulatedCASCluster(seed: 22, proposerCount: 1)
        #expect(
            cluster.outcome(of: .read, key: Self.key, client: 0, proposer: 0, within: .milliseconds(20)) == .ok(nil))
        #expect(cluster.proposers[0].counters.proposer.readsEndedAtPromises == 1)
        #expect(cluster.proposers[0].counters.proposer.requestsSent == 3)
    }

    @Test("promises that disagree (a write accepted by one acceptor only) make the read write the highest value back")
    func disagreeingPromises() throws {
        var configuration = CASPaxosConfiguration()
        configuration.proposalTimeout = .milliseconds(200)
        let cluster = try SimulatedCASCluster(seed: 23, proposerCount: 2, configuration: configuration)
        let (writer, reader) = (cluster.proposerNodes[0], cluster.proposerNodes[1])
        let acceptors = cluster.acceptorNodes
        cluster.perform(.write([1]), key: Self.key, client: 0, proposer: 0)
        cluster.network.run(for: .milliseconds(20))
        // The writer's one-round-trip accept of [2] reaches acceptor 0 only.
        cluster.network.block(from: writer, to: acceptors[1])
        cluster.network.block(from: writer, to: acceptors[2])
        #expect(
            cluster.outcome(of: .write([2]), key: Self.key, client: 0, proposer: 0, within: .seconds(1)) == .unknown)
        cluster.network.heal()
        // The reader hears acceptors 0 and 1: [2] at the writer's second
        // ballot, [1] at its first.
        cluster.network.block(from: reader, to: acceptors[2])
        #expect(
            cluster.outcome(of: .read, key: Self.key, client: 1, proposer: 1, within: .milliseconds(50)) == .ok([2]))
        let counters = cluster.proposers[1].counters.proposer
        #expect(counters.readsEndedAtPromises == 0)
        // A prepare to the 3 acceptors per attempt (the first is refused by
        // acceptor 0, which promised the writer's retries), then one accept.
        #expect(counters.attempts == 2)
        #expect(counters.requestsSent == 3 * counters.attempts + 3)
        // A read that hears acceptors 1 and 2 only: had the first read
        // returned [2] without writing it back, both would still hold [1],
        // and this read would return it after [2] (a violation).
        cluster.network.heal()
        cluster.network.block(from: writer, to: acceptors[0])
        #expect(
            cluster.outcome(of: .read, key: Self.key, client: 0, proposer: 0, within: .milliseconds(190)) == .ok([2]))
        #expect(cluster.check() == .linearizable)
    }

    @Test("reads of keys no acceptor holds store nothing, sync nothing and cache nothing")
    func absentKeysStoreNothing() throws {
        let cluster = try SimulatedCASCluster(seed: 25, proposerCount: 1)
        for index in 0..<20 {
            let key = Array("absent-\(index)".utf8)
            #expect(cluster.outcome(of: .read, key: key, client: 0, proposer: 0, within: .milliseconds(20)) == .ok(nil))
        }
        #expect(cluster.memoryStores.allSatisfy { $0.snapshot.registerCount == 0 })
        #expect(cluster.acceptors.allSatisfy { $0?.counters.syncs == 0 })
        #expect(cluster.acceptors.map { $0?.counters.acceptor.unrecordedPromises ?? 0 }.reduce(0, +) >= 40)
        #expect(cluster.proposers[0].counters.proposer.readsEndedAtPromises == 20)
        // Nothing cached: a write of one of the keys takes both phases.
        let key = Array("absent-0".utf8)
        #expect(cluster.outcome(of: .write([1]), key: key, client: 0, proposer: 0, within: .milliseconds(20)) == .ok([1]))
        #expect(cluster.proposers[0].counters.proposer.oneRoundTripAttempts == 0)
        #expect(cluster.check() == .linearizable)
    }

    /// Acceptor 2 never heard the write: its promise to the read is not
    /// stored, and the read, which must write the value back (acceptor 1,
    /// which holds it too, is out of its reach), prepares again with
    /// stored promises first. Written back over a promise not stored, the
    /// value could overwrite an older accept that acceptor 2 took in
    /// between, and that was chosen with acceptor 1.
    @Test("a read that must write back prepares again when a promise of its quorum was not stored")
    func writeBackNeedsStoredPromises() throws {
        let cluster = try SimulatedCASCluster(seed: 26, proposerCount: 2)
        let (writer, reader) = (cluster.proposerNodes[0], cluster.proposerNodes[1])
        let acceptors = cluster.acceptorNodes
        cluster.network.block(from: writer, to: acceptors[2])
        #expect(cluster.outcome(of: .write([7]), key: Self.key, client: 0, proposer: 0, within: .milliseconds(20)) == .ok([7]))
        #expect(cluster.memoryStores[2].snapshot.registerCount == 0)
        cluster.network.heal()
        cluster.network.block(from: reader, to: acceptors[1])
        // (The first prepare is refused by acceptor 0, which promised the
        // writer's next ballot, and times out: acceptor 1 is out of reach.)
        #expect(cluster.outcome(of: .read, key: Self.key, client: 1, proposer: 1, within: .milliseconds(400)) == .ok([7]))
        let counters = cluster.proposers[1].counters.proposer
        #expect(counters.readsPreparedAgain == 1)
        #expect(counters.readsEndedAtPromises == 0)
        #expect(cluster.memoryStores[2].snapshot.register(Self.key)?.value == [7], "written back")
        #expect(cluster.check() == .linearizable)
    }

    @Test("without the one-round-trip optimization an agreed read caches nothing")
    func noCacheWithoutOneRoundTrip() throws {
        var configuration = CASPaxosConfiguration()
        configuration.isOneRoundTripEnabled = false
        let cluster = try SimulatedCASCluster(seed: 24, proposerCount: 1, configuration: configuration)
        cluster.perform(.read, key: Self.key, client: 0, proposer: 0)
        cluster.network.run(for: .milliseconds(20))
        #expect(
            cluster.outcome(of: .write([1]), key: Self.key, client: 0, proposer: 0, within: .milliseconds(20)) == .ok([1]))
        let counters = cluster.proposers[0].counters.proposer
        #expect(counters.readsEndedAtPromises == 1)
        #expect(counters.oneRoundTripAttempts == 0)
        #expect(counters.requestsSent == 3 + 6)
    }
}
