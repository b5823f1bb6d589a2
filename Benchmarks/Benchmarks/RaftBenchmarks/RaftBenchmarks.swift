import Benchmark
import PairedRuns
import Foundation
import Raft

// Raft, three replicas in one process, 64-byte commands, in-memory storage,
// driven directly in one thread (DirectRaftGroup: every message encoded
// into a frame and decoded, as on UDP, but no sockets), as etcd raft's
// in-process benchmarks drive RawNode; and failover in the simulator.
// CASPaxos in the same harness shape (DirectCASPaxosGroup), for issue 7's
// comparison, and the floor of a CASPaxos write (RegisterWriteFloor). One iteration is one whole run; the custom metrics describe it:
// - "commits/s" (Raft), "ops/s" (CASPaxos): commands applied on the leader,
//   writes completed, per second of wall time;
// - "p50 ns", "p90 ns", "p99 ns": per-commit latency of the sequential runs
//   (one proposal at a time: propose, pump until the leader applied it);
// - "leader persists/s", "entries/persist %": the leader's storage writes
//   (RaftStorage.persist calls: what a file store syncs once) per second,
//   and commands per write in hundredths (the batch a sync would cover);
// - "frames/commit %", "rounds/commit %": frames sent by all three, and pump
//   rounds, per commit, in hundredths;
// - "failover p50/p99/max µs": simulated time from the leader's crash until
//   a new leader committed its first entry, over 100 seeds; "timeouts":
//   seeds that did not recover within 10 s (must be 0); "elections/seed %":
//   elections started after the crash, in hundredths (100: no split vote);
// - "round trips/op %" (CASPaxos): prepare or accept rounds per write, in
//   hundredths (100 with the one-round-trip optimization);
// - "vs Raft %" (the *.VersusRaft pairs): CASPaxos ops/s as a share of
//   Raft's pipelined commits/s in the same iteration, in hundredths.
// etcd raft and hashicorp/raft are not run here (no Go toolchain):
// Scripts/bench prints their published figures as reference text.

let commitsPerSecond = BenchmarkMetric.custom("commits/s", polarity: .prefersLarger, useScalingFactor: false)
let opsPerSecond = BenchmarkMetric.custom("ops/s", polarity: .prefersLarger, useScalingFactor: false)
let p50Nanoseconds = BenchmarkMetric.custom("p50 ns", polarity: .prefersSmaller, useScalingFactor: false)
let p90Nanoseconds = BenchmarkMetric.custom("p90 ns", polarity: .prefersSmaller, useScalingFactor: false)
let p99Nanoseconds = BenchmarkMetric.custom("p99 ns", polarity: .prefersSmaller, useScalingFactor: false)
let leaderPersistsPerSecond = BenchmarkMetric.custom(
    "leader persists/s", polarity: .prefersSmaller, useScalingFactor: false)
let entriesPerPersist = BenchmarkMetric.custom("entries/persist %", polarity: .prefersLarger, useScalingFactor: false)
let leaderSyncsPerSecond = BenchmarkMetric.custom("leader fsyncs/s", polarity: .prefersSmaller, useScalingFactor: false)
let entriesPerSync = BenchmarkMetric.custom("entries/fsync %", polarity: .prefersLarger, useScalingFactor: false)
let framesPerCommit = BenchmarkMetric.custom("frames/commit %", polarity: .prefersSmaller, useScalingFactor: false)
let roundsPerCommit = BenchmarkMetric.custom("rounds/commit %", polarity: .prefersSmaller, useScalingFactor: false)
let failoverP50 = BenchmarkMetric.custom("failover p50 µs", polarity: .prefersSmaller, useScalingFactor: false)
let failoverP99 = BenchmarkMetric.custom("failover p99 µs", polarity: .prefersSmaller, useScalingFactor: false)
let failoverMaximum = BenchmarkMetric.custom("failover max µs", polarity: .prefersSmaller, useScalingFactor: false)
let failoverTimeouts = BenchmarkMetric.custom("timeouts", polarity: .prefersSmaller, useScalingFactor: false)
let electionsPerSeed = BenchmarkMetric.custom("elections/seed %", polarity: .prefersSmaller, useScalingFactor: false)
let roundTripsPerOp = BenchmarkMetric.custom("round trips/op %", polarity: .prefersSmaller, useScalingFactor: false)
let versusRaft = BenchmarkMetric.custom("vs Raft %", polarity: .prefersLarger, useScalingFactor: false)
let logReadsPerSecond = BenchmarkMetric.custom("log reads/s", polarity: .prefersLarger, useScalingFactor: false)
let versusLog = BenchmarkMetric.custom("vs log %", polarity: .prefersLarger, useScalingFactor: false)

func hundredths(_ value: Double) -> Int { Int((value * 100).rounded()) }

func record(_ outcome: RaftRunOutcome, to benchmark: Benchmark) {
    benchmark.measurement(commitsPerSecond, Int(outcome.commitsPerSecond))
    benchmark.measurement(leaderPersistsPerSecond, Int(outcome.leaderPersistsPerSecond))
    benchmark.measurement(entriesPerPersist, hundredths(outcome.entriesPerLeaderPersist))
    let commits = Double(max(1, outcome.commits))
    benchmark.measurement(framesPerCommit, hundredths(Double(outcome.frames) / commits))
    benchmark.measurement(roundsPerCommit, hundredths(Double(outcome.rounds) / commits))
    if outcome.leaderSyncs > 0 {
        benchmark.measurement(leaderSyncsPerSecond, Int(outcome.leaderSyncsPerSecond))
        benchmark.measurement(entriesPerSync, hundredths(outcome.entriesPerLeaderSync))
    }
    if !outcome.latencies.isEmpty {
        benchmark.measurement(p50Nanoseconds, Int(outcome.latency(50)))
        benchmark.measurement(p90Nanoseconds, Int(outcome.latency(90)))
        benchmark.measurement(p99Nanoseconds, Int(outcome.latency(99)))
    }
}

func benchmarks() {
    Benchmark.defaultConfiguration = .init(
        metrics: [
            .wallClock, .mallocCountTotal, commitsPerSecond, p50Nanoseconds, p90Nanoseconds, p99Nanoseconds,
            leaderPersistsPerSecond, entriesPerPersist, leaderSyncsPerSecond, entriesPerSync, framesPerCommit,
            roundsPerCommit,
        ],
        warmupIterations: 1,
        maxDuration: .seconds(20),
        maxIterations: 5
    )

    /// A Raft run on a fresh, elected group: `workload` gets the group.
    func registerRaft(
        _ name: String, _ setup: @escaping () throws -> RaftGroupSetup,
        _ workload: @escaping (DirectRaftGroup) throws -> RaftRunOutcome
    ) {
        Benchmark(name) { benchmark in
            var directory: String?
            defer { if let directory { try? FileManager.default.removeItem(atPath: directory) } }
            do {
                let setup = try setup()
                directory = setup.temporaryDirectory
                let group = try DirectRaftGroup(setup)
                try group.elect()
                benchmark.startMeasurement()
                let outcome = try workload(group)
                benchmark.stopMeasurement()
                record(outcome, to: benchmark)
            } catch {
                benchmark.error("cannot run \(name): \(error)")
            }
        }
    }

    // 1. Pipelined: 1,000 proposals outstanding (topped up before every
    //    round), 200,000 commits per run.
    registerRaft("Raft.Pipelined.InMemory", { RaftGroupSetup() }) {
        try $0.runClosedLoop(inFlight: 1_000, commits: 200_000)
    }
    // The same with the replicated key-value map applying every command
    // (the line above counts them only).
    registerRaft("Raft.Pipelined.KeyValue", { RaftGroupSetup(makeStateMachine: { _ in KeyValueStateMachine() }) }) {
        try $0.runClosedLoop(inFlight: 1_000, commits: 200_000)
    }
    // 2. Sequential: one proposal at a time, 20,000 commits per run.
    registerRaft("Raft.Sequential.InMemory", { RaftGroupSetup() }) {
        try $0.runSequential(commits: 20_000)
    }
    // 3. 64 closed-loop clients (64 proposals outstanding), in memory.
    registerRaft("Raft.Concurrent64.InMemory", { RaftGroupSetup() }) {
        try $0.runClosedLoop(inFlight: 64, commits: 100_000)
    }
    // 3b. The same on FileRaftStorage with fsync on (a temporary directory
    //     per run): the leader's fsyncs/s and entries per fsync show group
    //     commit. The three replicas share this thread, so their fsyncs
    //     run one after another.
    registerRaft("Raft.Concurrent64.File", {
        var setup = try RaftGroupSetup(inTemporaryDirectory: "chorus-raft-bench")
        let directory = setup.temporaryDirectory!
        setup.makeStorage = { try FileRaftStorage(directory: "\(directory)/replica-\($0)", opening: .new) }
        return setup
    }) { try $0.runClosedLoop(inFlight: 64, commits: 20_000) }

    // 3c. ReadIndex reads, 64 outstanding, in memory, counted on the
    //     leader once confirmed (the shape of etcd raft's `reads64` in
    //     Benchmarks/Peers/raft-go, which batches the reads asked before
    //     a round into one ReadIndex call, as etcd's server does).
    registerRaft("Raft.Reads64.InMemory", { RaftGroupSetup() }) {
        try $0.runClosedLoopReads(inFlight: 64, reads: 200_000, throughLog: false)
    }
    // 3d. Reads on FileRaftStorage with fsync on, the key-value map (1,024
    //     keys written first), 64 outstanding: ReadIndex reads (a heartbeat
    //     round each batch, no log entry, the key looked up in the
    //     leader's map once confirmed), paired in the same iteration with as many gets
    //     through the log (each an entry appended, fsynced on a majority
    //     and applied). `commits/s` is the ReadIndex reads'.
    Benchmark(
        "Raft.Reads64.File.ReadIndexVersusLog",
        configuration: .init(
            metrics: [.wallClock, commitsPerSecond, logReadsPerSecond, versusLog, leaderSyncsPerSecond],
            warmupIterations: 1, maxDuration: .seconds(30), maxIterations: 5)
    ) { benchmark in
        var directory: String?
        defer { if let directory { try? FileManager.default.removeItem(atPath: directory) } }
        do {
            var setup = try RaftGroupSetup(inTemporaryDirectory: "chorus-raft-reads")
            directory = setup.temporaryDirectory
            let path = setup.temporaryDirectory!
            setup.makeStorage = { try FileRaftStorage(directory: "\(path)/replica-\($0)", opening: .new) }
            setup.makeStateMachine = { _ in KeyValueStateMachine() }
            let group = try DirectRaftGroup(setup)
            try group.elect()
            _ = try group.runClosedLoop(inFlight: 64, commits: 1_024)  // every key read has a value
            benchmark.startMeasurement()
            let readIndex = try group.runClosedLoopReads(inFlight: 64, reads: 100_000, throughLog: false)
            let throughLog = try group.runClosedLoopReads(inFlight: 64, reads: 20_000, throughLog: true)
            benchmark.stopMeasurement()
            benchmark.measurement(commitsPerSecond, Int(readIndex.commitsPerSecond))
            benchmark.measurement(logReadsPerSecond, Int(throughLog.commitsPerSecond))
            benchmark.measurement(versusLog, hundredths(readIndex.commitsPerSecond / max(throughLog.commitsPerSecond, 1)))
            // The ReadIndex reads' fsyncs: none is needed.
            benchmark.measurement(leaderSyncsPerSecond, Int(readIndex.leaderSyncsPerSecond))
        } catch {
            benchmark.error("cannot run the reads: \(error)")
        }
    }

    // 4. Failover in the simulator, 100 seeds in one run (simulated time:
    //    the figures do not depend on the machine).
    Benchmark(
        "Raft.Failover.Simulated",
        configuration: .init(
            metrics: [.wallClock, failoverP50, failoverP99, failoverMaximum, failoverTimeouts, electionsPerSeed],
            warmupIterations: 0, maxDuration: .seconds(120), maxIterations: 1)
    ) { benchmark in
        do {
            benchmark.startMeasurement()
            let outcome = try RaftFailoverRun().run()
            benchmark.stopMeasurement()
            benchmark.measurement(failoverP50, Int(outcome.percentile(50) / 1_000))
            benchmark.measurement(failoverP99, Int(outcome.percentile(99) / 1_000))
            benchmark.measurement(failoverMaximum, Int((outcome.failovers.last ?? 0) / 1_000))
            benchmark.measurement(failoverTimeouts, outcome.timeouts)
            benchmark.measurement(
                electionsPerSeed, hundredths(Double(outcome.elections) / Double(max(1, outcome.failovers.count))))
        } catch {
            benchmark.error("cannot run the failover: \(error)")
        }
    }

    // CASPaxos in the same harness shape: uncontended writes of 64-byte
    // values, 1,000 keys with one write in flight each (as Raft's 1,000
    // outstanding proposals), after one warm-up write per key; the
    // proposer on the first acceptor's node (as Raft's leader is one of
    // its replicas), and, for comparison, on a node of its own.
    let casPaxosMetrics: [BenchmarkMetric] = [
        .wallClock, .mallocCountTotal, opsPerSecond, roundTripsPerOp, framesPerCommit, p50Nanoseconds,
        p90Nanoseconds, p99Nanoseconds,
    ]
    func registerCASPaxos(
        _ name: String, keys: Int, colocated: Bool = true,
        _ workload: @escaping (DirectCASPaxosGroup) throws -> CASPaxosDirectOutcome
    ) {
        Benchmark(
            name,
            configuration: .init(
                metrics: casPaxosMetrics, warmupIterations: 1, maxDuration: .seconds(20), maxIterations: 5)
        ) { benchmark in
            do {
                let group = try DirectCASPaxosGroup(keys: keys, colocated: colocated)
                try group.warmUp()
                benchmark.startMeasurement()
                let outcome = try workload(group)
                benchmark.stopMeasurement()
                benchmark.measurement(opsPerSecond, Int(outcome.opsPerSecond))
                benchmark.measurement(roundTripsPerOp, hundredths(outcome.roundTripsPerOp))
                let writes = Double(max(1, outcome.succeeded))
                benchmark.measurement(framesPerCommit, hundredths(Double(outcome.frames) / writes))
                if !outcome.latencies.isEmpty {
                    benchmark.measurement(p50Nanoseconds, Int(outcome.latency(50)))
                    benchmark.measurement(p90Nanoseconds, Int(outcome.latency(90)))
                    benchmark.measurement(p99Nanoseconds, Int(outcome.latency(99)))
                }
            } catch {
                benchmark.error("cannot run \(name): \(error)")
            }
        }
    }
    registerCASPaxos("CASPaxosDirect.Pipelined.InMemory", keys: 1_000) { try $0.runClosedLoop(operations: 50_000) }
    registerCASPaxos("CASPaxosDirect.Pipelined.ProposerApart", keys: 1_000, colocated: false) {
        try $0.runClosedLoop(operations: 50_000)
    }
    registerCASPaxos("CASPaxosDirect.Sequential.InMemory", keys: 1) { try $0.runSequential(operations: 20_000) }

    // Issue 7's target in interleaved pairs (registerPairedRuns) with
    // Raft.Pipelined.InMemory (the counting state machine, 200,000
    // commits), or with Raft.Pipelined.KeyValue: the CASPaxos ops/s as a
    // share of Raft's commits/s, in hundredths ("vs Raft %").
    // - CASPaxosDirect.Pipelined.VersusRaft (and .VersusRaftKeyValue):
    //   DirectCASPaxosGroup as in CASPaxosDirect.Pipelined.InMemory,
    //   200,000 writes;
    // - CASPaxosDirect.Floor.VersusRaft: RegisterWriteFloor, the least work
    //   any CASPaxos write costs in this harness, 200,000 writes;
    // - CASPaxosDirect.FloorWithStore.VersusRaft: the same, each acceptor
    //   also keeping a store copy of its registers (the target's in-memory
    //   stores).
    func registerVersusRaft(_ name: String, keyValue: Bool = false, _ run: @escaping () throws -> Double) {
        registerPairedRuns(
            name, ratio: versusRaft, chorusMetric: opsPerSecond, peerMetric: commitsPerSecond, chorus: run,
            peer: {
                let setup = keyValue ? RaftGroupSetup(makeStateMachine: { _ in KeyValueStateMachine() }) : RaftGroupSetup()
                let group = try DirectRaftGroup(setup)
                try group.elect()
                return try group.runClosedLoop(inFlight: 1_000, commits: 200_000).commitsPerSecond
            })
    }
    for (name, keyValue) in [("VersusRaft", false), ("VersusRaftKeyValue", true)] {
        registerVersusRaft("CASPaxosDirect.Pipelined.\(name)", keyValue: keyValue) {
            let group = try DirectCASPaxosGroup(keys: 1_000)
            try group.warmUp()
            return try group.runClosedLoop(operations: 200_000).opsPerSecond
        }
    }
    for (name, keepsStoreCopy) in [("Floor", false), ("FloorWithStore", true)] {
        registerVersusRaft("CASPaxosDirect.\(name).VersusRaft") {
            let floor = RegisterWriteFloor(keys: 1_000, keepsStoreCopy: keepsStoreCopy)
            _ = try floor.runClosedLoop(operations: 1_000)
            return try floor.runClosedLoop(operations: 200_000)
        }
    }
}
