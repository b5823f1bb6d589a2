import Benchmark

/// Registers a benchmark that compares Chorus with a peer in interleaved
/// pairs: each iteration runs both back to back, the first of the pair
/// alternating, and records Chorus's figure as a share of the peer's, in
/// hundredths (`ratio`), beside both figures. On a shared machine whose
/// speed drifts over minutes, the median of these paired ratios compares
/// the two under the same conditions, where the ratio of two medians
/// measured minutes apart does not.
///
/// - Parameters:
///   - chorus, peer: one run each, returning its figure (larger is better).
///   - chorusMetric, peerMetric: the metrics the two figures are recorded as.
public func registerPairedRuns(
    _ name: String, ratio: BenchmarkMetric, chorusMetric: BenchmarkMetric, peerMetric: BenchmarkMetric,
    chorus: @escaping () throws -> Double, peer: @escaping () throws -> Double
) {
    var peerFirst = false
    Benchmark(
        name,
        configuration: .init(
            metrics: [.wallClock, ratio, chorusMetric, peerMetric], warmupIterations: 1, maxDuration: .seconds(30),
            maxIterations: 9)
    ) { benchmark in
        do {
            benchmark.startMeasurement()
            peerFirst.toggle()
            let peerBefore = peerFirst ? try peer() : nil
            let ours = try chorus()
            let theirs = try peerBefore ?? peer()
            benchmark.stopMeasurement()
            benchmark.measurement(ratio, Int((ours / theirs * 100).rounded()))
            benchmark.measurement(chorusMetric, Int(ours))
            benchmark.measurement(peerMetric, Int(theirs))
        } catch {
            benchmark.error("cannot run \(name): \(error)")
        }
    }
}
