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

    @Test("another proposer's write invalidates the cached ballot: the retry takes both phases and sees it")
    func staleCache() throws {
        let cluster = try SimulatedCASCluster(seed: 9, proposerCount: 2)
        let key = Array("k".utf8)
        cluster.perform(.write([1]), key: key, client: 0, proposer: 0)
        cluster.network.run(for: .milliseconds(20))
        cluster.perform(.write([2]), key: key, client: 1, proposer: 1)
        cluster.network.run(for: .milliseconds(20))
        #expect(cluster.outcome(of: .read, key: key, client: 0, proposer: 0, within: .milliseconds(50)) == .ok([2]))
        #expect(cluster.proposers[0].counters.proposer.failedAttempts >= 1)
        #expect(cluster.check() == .linearizable)
    }
}
