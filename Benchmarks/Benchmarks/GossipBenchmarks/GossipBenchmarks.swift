import Benchmark
import Gossip

// Gossip dissemination in the simulator, Plumtree against push gossip (the
// Pittacus behaviour, fanout 4) on the same clusters: 100, 1,000 and 10,000
// nodes, links delaying 1-5 ms. One iteration is one whole run (build,
// join, settle, warm up, 20 measured broadcasts until all delivered); the
// custom metrics describe the measured broadcasts:
// - "copies/node/bcast ‰": payload copies sent per node per broadcast, in
//   thousandths (target for Plumtree: at most 1,200);
// - "max hops" and "mean hops %": rounds to reach every node (first copy),
//   the mean in hundredths; expected O(log N);
// - "sim ms": simulated time from a broadcast to its last delivery, worst;
// - "delivered %": must be 100.
// Wall time of the 10,000-node run is the benchmark's own wall clock
// (target: under a minute).

let copies = BenchmarkMetric.custom("copies/node/bcast ‰", polarity: .prefersSmaller, useScalingFactor: false)
let maximumHops = BenchmarkMetric.custom("max hops", polarity: .prefersSmaller, useScalingFactor: false)
let meanHops = BenchmarkMetric.custom("mean hops %", polarity: .prefersSmaller, useScalingFactor: false)
let simulatedMilliseconds = BenchmarkMetric.custom("sim ms", polarity: .prefersSmaller, useScalingFactor: false)
let deliveredPercent = BenchmarkMetric.custom("delivered %", polarity: .prefersLarger, useScalingFactor: false)

func benchmarks() {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, copies, maximumHops, meanHops, simulatedMilliseconds, deliveredPercent],
        warmupIterations: 0,
        maxDuration: .seconds(60),
        maxIterations: 1
    )
    for nodeCount in [100, 1_000, 10_000] {
        for mode in [DisseminationMode.plumtree, .push] {
            Benchmark("Gossip.\(nodeCount)Nodes.\(mode)") { benchmark in
                let run = GossipSimulationRun(nodeCount: nodeCount, mode: mode, seed: 42)
                benchmark.startMeasurement()
                let outcome = run.run()
                benchmark.stopMeasurement()
                benchmark.measurement(copies, outcome.milliCopiesPerNodePerBroadcast)
                benchmark.measurement(maximumHops, outcome.maximumHops)
                benchmark.measurement(meanHops, outcome.centiMeanHops)
                benchmark.measurement(simulatedMilliseconds, outcome.milliseconds)
                benchmark.measurement(deliveredPercent, outcome.deliveredPercent)
            }
        }
    }
}
