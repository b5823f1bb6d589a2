import CASPaxos
import EventCore
import Simulation
import Testing

/// The paper's one-round-trip optimization (section 2.2.1): a run of writes
/// from one proposer costs one round trip each instead of two.
@Suite("One-round-trip optimization")
struct OneRoundTripTests {
    /// Messages sent by the whole cluster for `writes` sequential writes.
    static func messages(writes: Int, oneRoundTrip: Bool) throws -> (messages: Int, counters: ProposerCounters) {
        var configuration = CASPaxosConfiguration()
        configuration.isOneRoundTripEnabled = oneRoundTrip
        let cluster = try SimulatedCASCluster(seed: 7, proposerCount: 1, configuration: configuration)
        for number in 0..<writes {
            cluster.perform(.write([UInt8(number)]), key: Array("k".utf8), client: 0, proposer: 0)
            cluster.network.run(for: .milliseconds(20))
        }
        #expect(cluster.succeeded == writes)
        #expect(cluster.check() == .linearizable)
        return (cluster.network.statistics.sent, cluster.proposers[0].counters.proposer)
    }

    @Test("10 writes: 12 messages each without, 6 with (after the first)")
    func messageCounts() throws {
        let without = try Self.messages(writes: 10, oneRoundTrip: false)
        let with = try Self.messages(writes: 10, oneRoundTrip: true)
        // 3 acceptors: prepare + promise + accept + accepted = 12 per write.
        #expect(without.messages == 120)
        // The first write takes both phases, the other 9 only the accept.
        #expect(with.messages == 12 + 9 * 6)
        #expect(with.counters.oneRoundTripAttempts == 9)
        #expect(without.counters.oneRoundTripAttempts == 0)
    }

    /// Messages sent by the whole cluster, and the proposers' counters
    /// added up, for `writes` sequential writes by 4 proposers: each write
    /// by `proposer(write)` on key `key(write)` of 8.
    static func messages(
        writes: Int, oneRoundTrip: Bool, seed: UInt64 = 11, proposer: (Int) -> Int, key: (Int) -> Int
    ) throws -> (messages: Int, counters: ProposerCounters) {
        var configuration = CASPaxosConfiguration()
        configuration.isOneRoundTripEnabled = oneRoundTrip
        let cluster = try SimulatedCASCluster(seed: seed, proposerCount: 4, configuration: configuration)
        for number in 0..<writes {
            cluster.perform(
                .write([UInt8(truncatingIfNeeded: number)]), key: Array("k\(key(number))".utf8), client: number % 4,
                proposer: proposer(number))
            cluster.network.run(for: .milliseconds(20))
        }
        #expect(cluster.succeeded == writes)
        #expect(cluster.check() == .linearizable)
        var total = ProposerCounters()
        for node in cluster.proposers {
            let counters = node.counters.proposer
            total.attempts += counters.attempts
            total.oneRoundTripAttempts += counters.oneRoundTripAttempts
            total.failedAttempts += counters.failedAttempts
        }
        return (cluster.network.statistics.sent, total)
    }

    @Test("a write after another proposer's piggybacks no next ballot, the next write of the same proposer does, and the first proposer's cached ballot is stale")
    func writeAfterAnotherProposer() throws {
        let cluster = try SimulatedCASCluster(seed: 9, proposerCount: 2)
        let key = Array("k".utf8)
        cluster.perform(.write([1]), key: key, client: 0, proposer: 0)
        cluster.network.run(for: .milliseconds(20))
        #expect(cluster.proposers[0].proposer?.cachedKeyCount == 1)
        cluster.perform(.write([2]), key: key, client: 1, proposer: 1)
        cluster.network.run(for: .milliseconds(20))
        // Proposer 0 wrote the key last: proposer 1 promises itself no
        // next ballot, which would refuse proposer 0's next prepare.
        #expect(cluster.proposers[1].proposer?.cachedKeyCount == 0)
        cluster.perform(.write([3]), key: key, client: 1, proposer: 1)
        cluster.network.run(for: .milliseconds(20))
        #expect(cluster.proposers[1].proposer?.cachedKeyCount == 1)
        cluster.perform(.write([4]), key: key, client: 1, proposer: 1)
        cluster.network.run(for: .milliseconds(20))
        #expect(cluster.proposers[1].counters.proposer.oneRoundTripAttempts == 1)
        #expect(cluster.succeeded == 4)
        // Proposer 0's cached ballot is stale: its read is refused, then
        // takes both phases and sees proposer 1's last write.
        #expect(cluster.outcome(of: .read, key: key, client: 0, proposer: 0, within: .milliseconds(50)) == .ok([4]))
        #expect(cluster.proposers[0].counters.proposer.failedAttempts >= 1)
        #expect(cluster.check() == .linearizable)
    }

    @Test("proposers writing shared keys in turn: the optimization costs no messages; on keys of their own it halves them")
    func sharedKeys() throws {
        var random = SeededRandomGenerator(seed: 5)
        let proposerOf = (0..<400).map { _ in Int.random(in: 0..<4, using: &random) }
        let keyOf = (0..<400).map { _ in Int.random(in: 0..<8, using: &random) }
        let without = try Self.messages(writes: 400, oneRoundTrip: false, proposer: { proposerOf[$0] }, key: { keyOf[$0] })
        let with = try Self.messages(writes: 400, oneRoundTrip: true, proposer: { proposerOf[$0] }, key: { keyOf[$0] })
        // About a quarter of the writes follow the same proposer's on the
        // key: the proposers soon stop piggybacking, and take at most a
        // few cached ballots (each refused once another proposer wrote).
        #expect(with.counters.oneRoundTripAttempts <= 20)
        #expect(with.messages <= without.messages + without.messages / 20)
        // Each proposer on keys of its own (2 each): 1 round trip per
        // write after each key's first.
        let own = try Self.messages(
            writes: 400, oneRoundTrip: true, proposer: { proposerOf[$0] }, key: { proposerOf[$0] * 2 + keyOf[$0] % 2 })
        #expect(own.counters.oneRoundTripAttempts == 400 - 8)
        #expect(own.counters.failedAttempts == 0)
    }

    @Test("a proposer that stopped piggybacking on shared keys starts again on keys of its own")
    func piggybackingResumes() throws {
        var random = SeededRandomGenerator(seed: 6)
        let proposerOf = (0..<300).map { number in number < 200 ? Int.random(in: 0..<4, using: &random) : 0 }
        let keyOf = (0..<300).map { _ in Int.random(in: 0..<8, using: &random) }
        let run = try Self.messages(writes: 300, oneRoundTrip: true, proposer: { proposerOf[$0] }, key: { keyOf[$0] })
        // The last 100 writes are proposer 0's alone: after a few dozen,
        // each of its keys' writes takes one round trip.
        #expect(run.counters.oneRoundTripAttempts >= 50)
    }

    @Test("writes that take the cached ballot keep the share up beside writes that follow another proposer's")
    func cachedWritesCount() throws {
        let cluster = try SimulatedCASCluster(seed: 12, proposerCount: 2)
        let own = Array("own".utf8)
        let shared = Array("shared".utf8)
        for round in 0..<30 {
            // Each of proposer 0's writes of `shared` follows proposer 1's.
            for proposer in [1, 0] {
                cluster.perform(.write([UInt8(round)]), key: shared, client: proposer, proposer: proposer)
                cluster.network.run(for: .milliseconds(20))
            }
            for _ in 0..<5 {
                cluster.perform(.write([UInt8(round)]), key: own, client: 0, proposer: 0)
                cluster.network.run(for: .milliseconds(20))
            }
        }
        #expect(cluster.succeeded == 30 * 7)
        // 5 of every 6 of proposer 0's writes took its cached ballot: the
        // share stays above three quarters, and every write of `own` after
        // the first takes one round trip.
        #expect(cluster.proposers[0].counters.proposer.oneRoundTripAttempts == 30 * 5 - 1)
        #expect(cluster.check() == .linearizable)
    }

    @Test("a write whose cached ballot was refused, retried after another proposer's write, piggybacks nothing")
    func refusedCachedBallot() throws {
        let cluster = try SimulatedCASCluster(seed: 13, proposerCount: 2)
        let key = Array("k".utf8)
        for (number, proposer) in [0, 0, 1, 0].enumerated() {
            cluster.perform(.write([UInt8(number)]), key: key, client: proposer, proposer: proposer)
            cluster.network.run(for: .milliseconds(50))
        }
        #expect(cluster.succeeded == 4)
        let counters = cluster.proposers[0].counters.proposer
        #expect(counters.oneRoundTripAttempts == 2)
        #expect(counters.failedAttempts >= 1)
        // The retry's prepare found proposer 1's write: no next ballot.
        #expect(cluster.proposers[0].proposer?.cachedKeyCount == 0)
        #expect(cluster.check() == .linearizable)
    }
}
