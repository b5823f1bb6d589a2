import Benchmark
import PairedRuns

// CASPaxos over loopback UDP in one process, on two EventLoops: three
// acceptors on one and the proposers on the other; or the proposer on the
// first acceptor's node, on the clients' loop; or a proposer on every
// acceptor's node (ProposerPlacement); closed-loop clients (one proposal in
// flight each) incrementing counters. One iteration is one whole run of
// `operations` proposals on fresh nodes; the custom metrics describe it.
// The one-round-trip optimization on and off are shown side by side, and
// Raft in the same shape (RaftLoopbackRun: three replicas of the key-value
// map, the same clients writing their own keys) as the peer.
// - "ops/s": successful proposals per second;
// - "msgs/op %", "round trips/op %": datagrams sent by every node, and
//   request rounds (a prepare or accept to each acceptor), per successful
//   proposal, in hundredths (target with the optimization: 1 round trip
//   for uncontended writes; 6 messages, in fewer datagrams when the
//   messages of several clients to one node share a loop turn and travel
//   in one frame);
// - "failed attempts ‰": attempts refused or unanswered, per attempt;
// - "failed ‰": proposals that failed, per proposal (on a contended key,
//   indeterminate conflicts and timeouts);
// - "p99 µs": latency of successful proposals;
// - "max ms": the longest proposal, succeeded or failed (a proposer
//   starved on a hot key shows here: its clients' proposals wait until
//   the busiest proposer's clients stop, about the whole run, or fail at
//   their deadline, 2 s);
// - "overran": proposals that ended more than 50 ms after their deadline
//   (no livelock: must be 0);
// - "fsyncs/s", "answers/fsync %": store syncs of the three acceptors, and
//   promises plus acceptances per sync in hundredths (batching);
// - "busiest proposer %": the share of successful proposals made by the
//   proposer that made the most (fairness: 25 with 4 proposers whose
//   clients' writes all go through alike);
// - "vs socket per group %" (Raft.Groups32.*): 32 Raft groups' ops/s with
//   each machine's replicas on one socket (RaftGroupMultiplexer), as a
//   share of the same groups' with a socket per replica, in hundredths.

let opsPerSecond = BenchmarkMetric.custom("ops/s", polarity: .prefersLarger, useScalingFactor: false)
let messagesPerOp = BenchmarkMetric.custom("msgs/op %", polarity: .prefersSmaller, useScalingFactor: false)
let roundTripsPerOp = BenchmarkMetric.custom("round trips/op %", polarity: .prefersSmaller, useScalingFactor: false)
let failedAttempts = BenchmarkMetric.custom("failed attempts ‰", polarity: .prefersSmaller, useScalingFactor: false)
let failedProposals = BenchmarkMetric.custom("failed ‰", polarity: .prefersSmaller, useScalingFactor: false)
let p99Microseconds = BenchmarkMetric.custom("p99 µs", polarity: .prefersSmaller, useScalingFactor: false)
let maxMilliseconds = BenchmarkMetric.custom("max ms", polarity: .prefersSmaller, useScalingFactor: false)
let overran = BenchmarkMetric.custom("overran", polarity: .prefersSmaller, useScalingFactor: false)
let versusRaft = BenchmarkMetric.custom("vs Raft %", polarity: .prefersLarger, useScalingFactor: false)
let raftOpsPerSecond = BenchmarkMetric.custom("Raft ops/s", polarity: .prefersLarger, useScalingFactor: false)
let fsyncsPerSecond = BenchmarkMetric.custom("fsyncs/s", polarity: .prefersSmaller, useScalingFactor: false)
let answersPerSync = BenchmarkMetric.custom("answers/fsync %", polarity: .prefersLarger, useScalingFactor: false)
let busiestProposer = BenchmarkMetric.custom("busiest proposer %", polarity: .prefersSmaller, useScalingFactor: false)
let versusSocketPerGroup = BenchmarkMetric.custom(
    "vs socket per group %", polarity: .prefersLarger, useScalingFactor: false)
let socketPerGroupOpsPerSecond = BenchmarkMetric.custom(
    "socket per group ops/s", polarity: .prefersLarger, useScalingFactor: false)

func record(_ outcome: CASPaxosRunOutcome, to benchmark: Benchmark) {
    benchmark.measurement(opsPerSecond, Int(outcome.opsPerSecond))
    benchmark.measurement(messagesPerOp, Int((outcome.messagesPerOp * 100).rounded()))
    benchmark.measurement(roundTripsPerOp, Int((outcome.roundTripsPerOp * 100).rounded()))
    benchmark.measurement(failedAttempts, Int((outcome.failedAttemptRate * 1_000).rounded()))
    benchmark.measurement(failedProposals, Int((outcome.failedRate * 1_000).rounded()))
    benchmark.measurement(p99Microseconds, Int(outcome.p99Nanoseconds / 1_000))
    benchmark.measurement(maxMilliseconds, Int(outcome.maxNanoseconds / 1_000_000))
    benchmark.measurement(overran, outcome.overran)
    benchmark.measurement(fsyncsPerSecond, Int(outcome.syncsPerSecond))
    benchmark.measurement(answersPerSync, Int((outcome.answersPerSync * 100).rounded()))
    benchmark.measurement(busiestProposer, Int((outcome.busiestProposerShare * 100).rounded()))
}

func benchmarks() {
    Benchmark.defaultConfiguration = .init(
        metrics: [
            .wallClock, opsPerSecond, messagesPerOp, roundTripsPerOp, failedAttempts, failedProposals, p99Microseconds,
            maxMilliseconds, overran, fsyncsPerSecond, answersPerSync, busiestProposer,
        ],
        warmupIterations: 1,
        maxDuration: .seconds(20),
        // Loopback runs on a shared 2-core machine are noisy: the median of
        // 9 runs of a fraction of a second each.
        maxIterations: 9
    )

    func register(
        _ name: String, _ workload: CASPaxosWorkload,
        _ run: @escaping (CASPaxosWorkload) throws -> CASPaxosRunOutcome = { try CASPaxosLoopbackRun($0).run() }
    ) {
        Benchmark(name) { benchmark in
            do {
                benchmark.startMeasurement()
                let outcome = try run(workload)
                benchmark.stopMeasurement()
                record(outcome, to: benchmark)
            } catch {
                benchmark.error("cannot run \(name): \(error)")
            }
        }
    }

    // Uncontended writes: 32 clients, each on its own key, in-memory stores.
    register("CASPaxos.Uncontended.OneRoundTrip", CASPaxosWorkload())
    // The same with the proposer on the first acceptor's node (Raft's
    // shape below: the leader is a replica, and shares the clients' loop).
    register("CASPaxos.Uncontended.Colocated", CASPaxosWorkload(placement: .firstAcceptor))
    // The leaderless shape: a proposer on every acceptor's node, the same
    // 32 clients spread over the two loops (16 on the first node's, 8 on
    // each of the other two).
    register("CASPaxos.Uncontended.EveryNode", CASPaxosWorkload(placement: .everyAcceptor))
    register("CASPaxos.Uncontended.TwoRoundTrips", CASPaxosWorkload(oneRoundTrip: false))
    // Raft's peer in the same shape: the replicated key-value map, the
    // same 32 clients on their own keys (RaftLoopbackRun).
    register("CASPaxos.Uncontended.RaftPeer", CASPaxosWorkload()) { try RaftLoopbackRun($0).run() }

    // CASPaxos and its Raft peer in interleaved pairs (registerPairedRuns):
    // CASPaxos's ops/s as a share of Raft's, in hundredths ("vs Raft %").
    func registerVersusRaft(_ name: String, _ workload: CASPaxosWorkload) {
        registerPairedRuns(
            name, ratio: versusRaft, chorusMetric: opsPerSecond, peerMetric: raftOpsPerSecond,
            chorus: { try CASPaxosLoopbackRun(workload).run().opsPerSecond },
            peer: { try RaftLoopbackRun(CASPaxosWorkload()).run().opsPerSecond })
    }
    registerVersusRaft("CASPaxos.Uncontended.ColocatedVersusRaft", CASPaxosWorkload(placement: .firstAcceptor))
    registerVersusRaft("CASPaxos.Uncontended.EveryNodeVersusRaft", CASPaxosWorkload(placement: .everyAcceptor))
    // The leaderless shape against Raft's pipelined throughput itself
    // (its counting state machine, which the in-process comparison uses):
    // the shape the "no leader to bottleneck on" is about, each
    // loop on a core of its own.
    registerPairedRuns(
        "CASPaxos.Uncontended.EveryNodeVersusRaftCounting", ratio: versusRaft, chorusMetric: opsPerSecond,
        peerMetric: raftOpsPerSecond,
        chorus: { try CASPaxosLoopbackRun(CASPaxosWorkload(placement: .everyAcceptor)).run().opsPerSecond },
        peer: { try RaftLoopbackRun(CASPaxosWorkload(), counting: true).run().opsPerSecond })

    // One key, 4 proposers with 2 clients each.
    register(
        "CASPaxos.Contended.FourProposers",
        CASPaxosWorkload(proposers: 4, clients: 8, sharedKey: true, operations: 5_000))
    // The same without parents: retries that find another proposer's value
    // above their accept fail indeterminate.
    register(
        "CASPaxos.Contended.FourProposers.WithoutParents",
        CASPaxosWorkload(proposers: 4, clients: 8, sharedKey: true, parents: false, operations: 5_000))

    // 4 proposers, 8 clients each, every write to a key drawn from 64
    // shared ones: writes spread over proposers with no key affinity. With
    // the optimization, a proposer piggybacks next ballots only while most
    // of its writes follow its own (LastWriterShare), so the two should
    // run alike.
    register(
        "CASPaxos.SharedKeys.FourProposers.OneRoundTrip",
        CASPaxosWorkload(proposers: 4, clients: 32, randomKeys: 64, operations: 10_000))
    register(
        "CASPaxos.SharedKeys.FourProposers.TwoRoundTrips",
        CASPaxosWorkload(proposers: 4, clients: 32, randomKeys: 64, oneRoundTrip: false, operations: 10_000))

    // Durable stores, fdatasync before every answer, 32 clients on their own keys.
    register("CASPaxos.Durable.Fsync", CASPaxosWorkload(durable: true, operations: 10_000))

    // Many Raft groups per process (RaftLoopbackRun with groups): 32 groups
    // of three replicas, every machine's replicas on one socket through a
    // RaftGroupMultiplexer, 64 clients (2 a group) writing their own keys;
    // then the same with a socket per replica (96 sockets), the host
    // without the multiplexer; then the two paired ("vs socket per group
    // %": the shared socket's ops/s as a share of the other's).
    let groupWorkload = CASPaxosWorkload(clients: 64, operations: 64_000)
    register("Raft.Groups32.SharedSocket", groupWorkload) { try RaftLoopbackRun($0, groups: 32).run() }
    register("Raft.Groups32.SocketPerGroup", groupWorkload) {
        try RaftLoopbackRun($0, groups: 32, socketPerGroup: true).run()
    }
    registerPairedRuns(
        "Raft.Groups32.SharedVersusSocketPerGroup", ratio: versusSocketPerGroup, chorusMetric: opsPerSecond,
        peerMetric: socketPerGroupOpsPerSecond,
        chorus: { try RaftLoopbackRun(groupWorkload, groups: 32).run().opsPerSecond },
        peer: { try RaftLoopbackRun(groupWorkload, groups: 32, socketPerGroup: true).run().opsPerSecond })
}
