import EventCore
import Raft
import Simulation
import Testing

/// The replicated key-value store over 50 seeds of faults: every committed
/// command is applied once and in the same order everywhere, acknowledged
/// writes are never lost, every client saw the value the log order gives,
/// and an operation acknowledged before another began is ordered before it.
@Suite("Key-value store in the simulator")
struct KeyValueSimulationTests {
    @Test("puts, deletes and gets under faults (3 nodes for odd seeds, 5 for even ones)",
          arguments: Array(1...50 as ClosedRange<UInt64>))
    func underFaults(seed: UInt64) throws {
        let count = seed % 2 == 0 ? 5 : 3
        let cluster = try RaftCluster(count: count, seed: seed, link: RaftSimulationTests.faultyLink,
                                      makeStateMachine: { KeyValueStateMachine() })
        var nemesis = Nemesis(cluster: cluster, seed: seed ^ 0x6B76)
        var random = SeededRandomGenerator(seed: seed)
        var operation = 0
        for _ in 0..<12 {  // 6 s of simulated time
            try nemesis.strike()
            for _ in 0..<25 {
                operation += 1
                let key = "k\(Int.random(in: 0..<4, using: &random))"
                let command: KeyValueCommand = switch Int.random(in: 0..<10, using: &random) {
                case 0: .delete(key: key)
                case 1, 2: .get(key: key)
                default: .put(key: key, value: Array("s\(seed)-\(operation)".utf8))
                }
                if let target = nemesis.target() { cluster.propose(command.encoded, at: target) }
                cluster.run(for: .milliseconds(20))
            }
        }
        try nemesis.stop()
        let settled = cluster.run(until: {
            cluster.converged && cluster.rafts.allSatisfy { $0?.pendingProposalCount == 0 }
        }, limit: .seconds(20))
        #expect(settled, "seed \(seed): converged")
        cluster.checkLogMatching()
        #expect(cluster.violations.isEmpty, "seed \(seed): \(cluster.violations.prefix(3))")
        #expect(cluster.lostAcknowledgements().isEmpty, "seed \(seed): \(cluster.lostAcknowledgements().prefix(3))")
        #expect(cluster.acknowledged.count > 20, "seed \(seed): progress (\(cluster.acknowledged.count))")

        // Every node holds the map the log gives.
        let log = cluster.committed.sorted { $0.key < $1.key }
        let replay = KeyValueStateMachine()
        var expectedResults: [[UInt8]: [UInt8]] = [:]
        var position: [[UInt8]: Int] = [:]
        for (offset, (index, command)) in log.enumerated() {
            expectedResults[command] = replay.apply(command, at: index)
            position[command] = offset
        }
        for index in cluster.live {
            let machine = cluster.stateMachines[index] as? KeyValueStateMachine
            #expect(machine?.values == replay.values, "seed \(seed): node \(index + 1)'s map")
            #expect(machine?.malformedCommands == 0)
        }
        // Each client saw what the log order gives, and real time agrees
        // with it: an operation acknowledged before another was invoked
        // comes first in the log. Gets and deletes of a key repeat the same
        // bytes, so only operations whose bytes were acknowledged once and
        // committed once are matched with their log entry.
        var acknowledgedCount: [[UInt8]: Int] = [:]
        for ack in cluster.acknowledged { acknowledgedCount[ack.command, default: 0] += 1 }
        var committedCount: [[UInt8]: Int] = [:]
        for (_, command) in log { committedCount[command, default: 0] += 1 }
        let unique = cluster.acknowledged.filter { acknowledgedCount[$0.command] == 1 && committedCount[$0.command] == 1 }
        for ack in unique {
            #expect(ack.result == expectedResults[ack.command], "seed \(seed): a client saw a value out of log order")
        }
        let ordered = unique.compactMap { ack in position[ack.command].map { (ack, $0) } }
        for (earlier, earlierPosition) in ordered {
            for (later, laterPosition) in ordered where earlier.completedAt < later.invokedAt {
                #expect(earlierPosition < laterPosition, "seed \(seed): real-time order violated")
            }
        }
    }
}
