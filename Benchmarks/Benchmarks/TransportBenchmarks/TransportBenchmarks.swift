import Benchmark
import CLoopbackBaseline

// Loopback datagram throughput, 64-byte payloads, one sender and one
// receiver (see LoopbackHarness.swift for the exact shape of a run):
// - Chorus: UDPTransport on two EventLoops;
// - Chorus multiplexed: the same, the receiver's handler behind Chorus's
//   ProtocolMultiplexer (one socket shared by a machine's protocols);
// - SwiftNIO: DatagramChannel from DatagramBootstrap;
// - C: sendmmsg/recvmmsg from two threads (CLoopbackBaseline), the
//   practical limit of this machine for the same work: every datagram
//   carries its destination address, as in UDPTransport and NIO;
// - C connected: the same program with the sending socket connect()ed to
//   the receiver, a kernel shortcut (one route lookup, not one per datagram)
//   that only a socket with a single peer can take; shown for reference.
// Loopback64B.<peer>: each iteration is one run of `datagramsPerRun`
// datagrams; the custom metric "datagrams/s" is what arrived per second.
// Loopback64B.Interleaved runs the three back to back in every iteration
// and records Chorus's rate as a share of each peer's, which stays
// meaningful when other work on the machine comes and goes between
// benchmarks. Target: Chorus at least 90% of C, and ahead of NIO.

let receivedPerSecond = BenchmarkMetric.custom("datagrams/s", polarity: .prefersLarger, useScalingFactor: false)
let receivedPercent = BenchmarkMetric.custom("received %", polarity: .prefersLarger, useScalingFactor: false)

/// Records one run's figures on `benchmark`.
func report(_ result: BlastResult, to benchmark: Benchmark) {
    benchmark.measurement(receivedPerSecond, result.receivedPerSecond)
    benchmark.measurement(receivedPercent, result.receivedPercent)
}

/// Chorus's rate as a percentage of C's and of NIO's, from runs made back
/// to back in one iteration (so both sides of a ratio saw the same load).
let chorusPercentOfC = BenchmarkMetric.custom("chorus % of C", polarity: .prefersLarger, useScalingFactor: false)
let chorusPercentOfNIO = BenchmarkMetric.custom("chorus % of NIO", polarity: .prefersLarger, useScalingFactor: false)
let chorusPercentOfConnectedC = BenchmarkMetric.custom(
    "chorus % of C connected", polarity: .prefersLarger, useScalingFactor: false)
/// The multiplexed receiver's rate as a percentage of the direct one's.
let multiplexedPercentOfChorus = BenchmarkMetric.custom(
    "multiplexed % of chorus", polarity: .prefersLarger, useScalingFactor: false)

/// One run of the C baseline, addressing every datagram (`connected`
/// false) or on a connected socket.
func blastC(connected: Bool) -> BlastResult? {
    var outcome = CLoopbackResult()
    let status = CLoopback_blast(
        UInt64(datagramsPerRun), UInt32(payloadSize), UInt32(batchSize),
        Int32(socketBufferSize), Int32(socketBufferSize), UInt32(quietPeriodMilliseconds), connected ? 1 : 0,
        &outcome)
    guard status == 0 else { return nil }
    return BlastResult(sent: Int(outcome.sent), received: Int(outcome.received), elapsedNanoseconds: outcome.elapsed_ns)
}

func benchmarks() {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, receivedPerSecond, receivedPercent],
        warmupIterations: 1,
        maxDuration: .seconds(8),
        maxIterations: 5
    )

    // Sockets and loops are set up in the first (warm-up) iteration that
    // needs them and reused; a run's clock starts when sending starts.
    var chorusInstances: [Bool: ChorusLoopback] = [:]
    var nioInstance: NIOLoopback?
    func chorus(multiplexed: Bool = false) throws -> ChorusLoopback {
        if let instance = chorusInstances[multiplexed] { return instance }
        let made = try ChorusLoopback(multiplexed: multiplexed)
        chorusInstances[multiplexed] = made
        return made
    }
    func nio() throws -> NIOLoopback {
        if let nioInstance { return nioInstance }
        let made = try NIOLoopback()
        nioInstance = made
        return made
    }

    // Each implementation alone: its rate, wall clock and allocations per run.
    Benchmark("Loopback64B.Chorus") { benchmark in
        do {
            report(try chorus().blast(), to: benchmark)
        } catch {
            benchmark.error("cannot set up the UDPSocketTransports: \(error)")
        }
    }
    Benchmark("Loopback64B.ChorusMultiplexed") { benchmark in
        do {
            report(try chorus(multiplexed: true).blast(), to: benchmark)
        } catch {
            benchmark.error("cannot set up the multiplexed UDPSocketTransports: \(error)")
        }
    }
    Benchmark("Loopback64B.NIO") { benchmark in
        do {
            report(try nio().blast(), to: benchmark)
        } catch {
            benchmark.error("cannot set up the NIO channels: \(error)")
        }
    }
    for connected in [false, true] {
        Benchmark(connected ? "Loopback64B.CConnected" : "Loopback64B.C") { benchmark in
            guard let result = blastC(connected: connected) else {
                benchmark.error("CLoopback_blast failed to set up its sockets or threads")
                return
            }
            report(result, to: benchmark)
        }
    }

    // The five back to back in every iteration, in rotating order, so the
    // ratios hold even when other work on the machine comes and goes.
    Benchmark(
        "Loopback64B.Interleaved",
        configuration: .init(
            metrics: [
                .wallClock, .throughput, chorusPercentOfC, chorusPercentOfNIO, chorusPercentOfConnectedC,
                multiplexedPercentOfChorus,
            ],
            maxDuration: .seconds(50), maxIterations: 7)
    ) { benchmark in
        do {
            let (chorus, multiplexed, nio) = (try chorus(), try chorus(multiplexed: true), try nio())
            var rates: [String: Int] = [:]
            let runs: [(String, () -> BlastResult?)] = [
                ("chorus", { chorus.blast() }), ("nio", { nio.blast() }), ("c", { blastC(connected: false) }),
                ("c connected", { blastC(connected: true) }), ("multiplexed", { multiplexed.blast() }),
            ]
            for offset in 0..<runs.count {
                let (name, run) = runs[(benchmark.currentIteration + offset) % runs.count]
                guard let result = run(), result.receivedPerSecond > 0 else {
                    benchmark.error("the \(name) run failed")
                    return
                }
                rates[name] = result.receivedPerSecond
            }
            benchmark.measurement(chorusPercentOfC, rates["chorus"]! * 100 / rates["c"]!)
            benchmark.measurement(chorusPercentOfNIO, rates["chorus"]! * 100 / rates["nio"]!)
            benchmark.measurement(chorusPercentOfConnectedC, rates["chorus"]! * 100 / rates["c connected"]!)
            benchmark.measurement(multiplexedPercentOfChorus, rates["multiplexed"]! * 100 / rates["chorus"]!)
        } catch {
            benchmark.error("cannot set up the loopback peers: \(error)")
        }
    }
}
