#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Benchmark

// SWIM membership in the simulator (1 ms links, deterministic seeds), two
// profiles side by side on the same clusters and seeds:
// - "chorus": Chorus's default SWIMConfiguration;
// - "memberlist": memberlist's LAN profile EMULATED WITH CHORUS SWIM (the
//   same timings and multipliers, see SWIMProfile.swift). It is not
//   hashicorp/memberlist's code, which is a Go library: the real one runs
//   on real sockets in Benchmarks/Peers/memberlist-go, and
//   `Scripts/bench --go-peers SWIM` prints it beside the 64-member row.
//
// "SWIM.<N>Members.<profile>" at 64, 100 and 1,000 members (10,000 with
// CHORUS_BENCH_SWIM_10K=1): join through member 0 (spread over 1, 1, 5 and
// 20 s), convergence, the steady state over one push-pull period (at least
// 60 s), then 5 crashes one after the other. "SWIM.64MembersLoss2pct.
// <profile>": 64 members on links losing 2% of datagrams for 10 simulated
// minutes, one crash. One iteration is one whole run; the custom metrics:
// - "conv ms": simulated time from the last join until every member sees
//   every member alive (target at 64 members: 2 s);
// - "detect first/all mean/max ms": from a crash until the first member,
//   and until every live member, declares it dead (target at 64 members
//   with 2% loss: all within 4 s);
// - "false positives": dead declarations about live members (must be 0);
//   "live suspicions": suspicions of live members (refuted);
// - "packets/member/s ‰", "bytes/member/s ‰": the steady state, sent per
//   member per second, in thousandths (target at 64 members: 3 packets,
//   300 bytes); "push-pull bytes/member/s ‰": the anti-entropy share;
// - "timeouts": convergences or detections that did not finish (must be 0).
// Wall time is the benchmark's own wall clock. CHORUS_SWIM_BENCH_TRACE=1
// prints each phase's simulated and wall time and memory to stderr.
//
// The cost grows with the square of the cluster: every member holds every
// other (10^8 records at 10,000 members, all in this process). Measured on
// a shared 2-core machine, Chorus profile: 1,000 members, 0.25 GB and 15
// CPU seconds; 10,000 members, 9.4 GB resident at peak (94 bytes per
// (member, known member) pair) and 17 to 19 CPU minutes (17 to 24 minutes
// of wall time), three quarters of it the join storm and its convergence,
// while every member gossips at full rate until the news of 10,000 joins
// dies out (their membership queues are full: see
// SWIMConfiguration.membershipQueueCapacity); the memberlist profile takes
// 14 minutes more.

let convergenceMilliseconds = BenchmarkMetric.custom("conv ms", polarity: .prefersSmaller, useScalingFactor: false)
let firstMeanMilliseconds = BenchmarkMetric.custom("detect first mean ms", polarity: .prefersSmaller, useScalingFactor: false)
let firstMaximumMilliseconds = BenchmarkMetric.custom("detect first max ms", polarity: .prefersSmaller, useScalingFactor: false)
let allMeanMilliseconds = BenchmarkMetric.custom("detect all mean ms", polarity: .prefersSmaller, useScalingFactor: false)
let allMaximumMilliseconds = BenchmarkMetric.custom("detect all max ms", polarity: .prefersSmaller, useScalingFactor: false)
let falsePositiveCount = BenchmarkMetric.custom("false positives", polarity: .prefersSmaller, useScalingFactor: false)
let liveSuspicionCount = BenchmarkMetric.custom("live suspicions", polarity: .prefersSmaller, useScalingFactor: false)
let packetRate = BenchmarkMetric.custom("packets/member/s ‰", polarity: .prefersSmaller, useScalingFactor: false)
let byteRate = BenchmarkMetric.custom("bytes/member/s ‰", polarity: .prefersSmaller, useScalingFactor: false)
let pushPullByteRate = BenchmarkMetric.custom("push-pull bytes/member/s ‰", polarity: .prefersSmaller, useScalingFactor: false)
let timeoutCount = BenchmarkMetric.custom("timeouts", polarity: .prefersSmaller, useScalingFactor: false)

func benchmarks() {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, convergenceMilliseconds, firstMeanMilliseconds, firstMaximumMilliseconds,
                  allMeanMilliseconds, allMaximumMilliseconds, falsePositiveCount, liveSuspicionCount,
                  packetRate, byteRate, pushPullByteRate, timeoutCount],
        warmupIterations: 0,
        maxDuration: .seconds(600),
        maxIterations: 1
    )
    var scenarios: [(String, SWIMScenario)] = [
        ("64Members", SWIMScenario(memberCount: 64, joinSpread: .seconds(1), seed: 42)),
        ("100Members", SWIMScenario(memberCount: 100, joinSpread: .seconds(1), seed: 42)),
        ("1000Members", SWIMScenario(memberCount: 1_000, joinSpread: .seconds(5), seed: 42)),
    ]
    // 10,000 members only on request: every member holds every other, and
    // the simulator runs them all in one process, so it needs about 40
    // times the memory and 75 times the CPU of the 1,000-member run (see
    // the cost above and `Scripts/bench --help`).
    if getenv("CHORUS_BENCH_SWIM_10K") != nil {
        scenarios.append(("10000Members", SWIMScenario(memberCount: 10_000, joinSpread: .seconds(20), seed: 42)))
    }
    scenarios.append(("64MembersLoss2pct", SWIMScenario(
        memberCount: 64, joinSpread: .seconds(1), lossProbability: 0.02, crashes: 1,
        totalDuration: .seconds(600), seed: 7)))
    for (name, scenario) in scenarios {
        for profile in SWIMProfile.allCases {
            Benchmark("SWIM.\(name).\(profile)") { benchmark in
                let run = SWIMSimulationRun(scenario: scenario, profile: profile)
                benchmark.startMeasurement()
                let outcome = run.run()
                benchmark.stopMeasurement()
                benchmark.measurement(convergenceMilliseconds, outcome.convergenceMilliseconds)
                benchmark.measurement(firstMeanMilliseconds, outcome.firstDetectionMeanMilliseconds)
                benchmark.measurement(firstMaximumMilliseconds, outcome.firstDetectionMaximumMilliseconds)
                benchmark.measurement(allMeanMilliseconds, outcome.allDetectionMeanMilliseconds)
                benchmark.measurement(allMaximumMilliseconds, outcome.allDetectionMaximumMilliseconds)
                benchmark.measurement(falsePositiveCount, outcome.falsePositives)
                benchmark.measurement(liveSuspicionCount, outcome.liveSuspicions)
                benchmark.measurement(packetRate, outcome.milliPacketsPerMemberPerSecond)
                benchmark.measurement(byteRate, outcome.milliBytesPerMemberPerSecond)
                benchmark.measurement(pushPullByteRate, outcome.milliPushPullBytesPerMemberPerSecond)
                benchmark.measurement(timeoutCount, outcome.timeouts)
            }
        }
    }
}
