import EventCore
import Raft
import RaftStateMachines
import Simulation

/// Failover in the simulator: three ``RaftNode``s on a `SimulatedNetwork`
/// (perfect 1 ms links), the default ``RaftConfiguration`` (150 ms election
/// timeout randomized up to 300 ms, 50 ms heartbeats, PreVote and
/// CheckQuorum). Per seed: elect a leader, run one simulated second with a
/// command proposed every 10 ms, run a further random 0–50 ms (so the crash
/// falls anywhere between two heartbeats), crash the leader, then step the
/// simulation event by event until a new leader has committed an entry of
/// its term (its no-op: the first entry a new leader can commit, Raft
/// §5.4.2). The figure is that simulated time, from the crash.
struct RaftFailoverRun {
    var seeds: ClosedRange<UInt64> = 1...100
    var configuration = RaftConfiguration()
    /// Give up on a seed after this much simulated time.
    var limit: Duration = .seconds(10)

    struct Outcome {
        /// Crash to a new leader's first commit, per seed that recovered,
        /// in nanoseconds, sorted.
        var failovers: [Int64] = []
        /// Seeds that found no leader before the crash, or none after it
        /// within ``RaftFailoverRun/limit``.
        var timeouts = 0
        /// Elections started after the crash (terms campaigned in), summed
        /// over the seeds: more than one per seed means split votes.
        var elections = 0

        func percentile(_ percent: Int) -> Int64 {
            failovers.isEmpty ? 0 : failovers[(failovers.count - 1) * percent / 100]
        }
    }

    func run() throws -> Outcome {
        var outcome = Outcome()
        for seed in seeds {
            if let (failover, elections) = try failover(seed: seed) {
                outcome.failovers.append(failover.nanoseconds)
                outcome.elections += elections
            } else {
                outcome.timeouts += 1
            }
        }
        outcome.failovers.sort()
        return outcome
    }

    /// One seed: the failover time and the elections it took, or nil if it
    /// did not finish within the limit.
    func failover(seed: UInt64) throws -> (Duration, Int)? {
        let network = SimulatedNetwork(seed: seed)
        try network.setDefaultConditions(LinkConditions(delay: .constant(.milliseconds(1))))
        let nodes = (0..<3).map { _ in network.addNode() }
        var generator = network.makeRandomGenerator()
        var rafts: [RaftNode] = []
        for index in 0..<3 {
            var peers: [NodeID: Endpoint] = [:]
            for other in 0..<3 where other != index { peers[NodeID(UInt64(other + 1))] = nodes[other].localEndpoint }
            rafts.append(
                try RaftNode(
                    id: NodeID(UInt64(index + 1)), group: 1, peers: peers, storage: InMemoryRaftStorage(),
                    stateMachine: CountingStateMachine(), transport: nodes[index], scheduler: nodes[index],
                    configuration: configuration, seed: generator.next()))
        }
        func currentLeader(among live: [Int]) -> Int? {
            live.filter { rafts[$0].role == .leader }.max { rafts[$0].term < rafts[$1].term }
        }
        // The first election.
        let electionEnd = network.now + limit
        while currentLeader(among: [0, 1, 2]) == nil {
            guard network.now < electionEnd, network.step() else { return nil }
        }
        // A second of steady state with a light load.
        let command = DirectRaftGroup.command(number: 0, size: 64)
        for _ in 0..<100 {
            network.run(for: .milliseconds(10))
            if let leader = currentLeader(among: [0, 1, 2]) { rafts[leader].propose(command) { _ in } }
        }
        let phase = Int64.random(in: 0..<configuration.heartbeatInterval.nanoseconds, using: &generator)
        network.run(for: .nanoseconds(phase))
        guard let old = currentLeader(among: [0, 1, 2]) else { return nil }
        let oldTerm = rafts[old].term
        let live = [0, 1, 2].filter { $0 != old }
        let electionsBefore = live.reduce(0) { $0 + rafts[$1].counters.electionsStarted }
        rafts[old].stop()
        network.crash(nodes[old])
        let crashedAt = network.now
        // The new leader's no-op is its last entry when it is first seen
        // leading: becoming leader appends it, and nothing else is proposed.
        var noop: [UInt64: UInt64] = [:]  // term -> index
        while network.now < crashedAt + limit, network.step() {
            for index in live where rafts[index].role == .leader && rafts[index].term > oldTerm {
                let term = rafts[index].term
                let first = noop[term] ?? rafts[index].lastIndex
                noop[term] = first
                if rafts[index].commitIndex >= first {
                    let elections = live.reduce(0) { $0 + rafts[$1].counters.electionsStarted } - electionsBefore
                    return (network.now - crashedAt, elections)
                }
            }
        }
        return nil
    }
}
