// swift-tools-version: 6.1
//
// Chorus benchmarks: a nested package, so the peers Chorus is compared with
// (swift-protobuf, SwiftNIO) and the benchmark harness never become
// dependencies of the toolkit. Run everything through `Scripts/bench`, which
// prints each Chorus figure beside its peer's.
//
// ordo-one/benchmark requires benchmark sources under `Benchmarks/<Target>/`
// of this package; support targets live under `Sources/`.
import PackageDescription

let benchmarkPlugin: [Target.PluginUsage] = [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
let harness: Target.Dependency = .product(name: "Benchmark", package: "benchmark")

let package = Package(
    name: "ChorusBenchmarks",
    dependencies: [
        // The root package; named explicitly so the checkout directory's name does not matter.
        .package(name: "Chorus", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // sendmmsg/recvmmsg loopback blaster in C: the physical-limit baseline.
        .target(name: "CLoopbackBaseline", path: "Sources/CLoopbackBaseline"),
        // CRC32C with the SSE4.2 instruction: the peer for WireCodec's CRC32C.
        .target(name: "CChecksumBaseline", path: "Sources/CChecksumBaseline"),
        // Chorus and a peer run back to back in each iteration: the median
        // of the paired ratios (CASPaxos against Raft).
        .target(name: "PairedRuns", dependencies: [harness], path: "Sources/PairedRuns"),
        // Raft's counting state machine (its pipelined throughput), shared
        // by the in-process and the loopback Raft runs.
        .target(
            name: "RaftStateMachines", dependencies: [.product(name: "Raft", package: "Chorus")],
            path: "Sources/RaftStateMachines"),

        // WireCodec frames, CRC32C, and SWIM/Raft-shaped messages vs swift-protobuf.
        .executableTarget(
            name: "CodecBenchmarks",
            dependencies: [
                harness,
                "CChecksumBaseline",
                .product(name: "WireCodec", package: "Chorus"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Benchmarks/CodecBenchmarks",
            exclude: ["Protobuf/chorus_bench.proto"],
            plugins: benchmarkPlugin
        ),

        // EventCore.TimerWheel vs a binary-heap timer queue, 100k pending.
        .executableTarget(
            name: "TimerBenchmarks",
            dependencies: [harness, .product(name: "EventCore", package: "Chorus")],
            path: "Benchmarks/TimerBenchmarks",
            plugins: benchmarkPlugin
        ),

        // Loopback datagrams: UDPTransport (direct, and behind Chorus's
        // ProtocolMultiplexer) vs SwiftNIO vs C sendmmsg/recvmmsg.
        .executableTarget(
            name: "TransportBenchmarks",
            dependencies: [
                harness,
                "CLoopbackBaseline",
                .product(name: "EventCore", package: "Chorus"),
                .product(name: "UDPTransport", package: "Chorus"),
                .product(name: "WireCodec", package: "Chorus"),
                .product(name: "Chorus", package: "Chorus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/TransportBenchmarks",
            plugins: benchmarkPlugin
        ),

        // The deterministic simulator: 1,000 nodes, 1,000,000 messages.
        .executableTarget(
            name: "SimulationBenchmarks",
            dependencies: [
                harness,
                .product(name: "EventCore", package: "Chorus"),
                .product(name: "Simulation", package: "Chorus"),
            ],
            path: "Benchmarks/SimulationBenchmarks",
            plugins: benchmarkPlugin
        ),

        // Gossip in the simulator: Plumtree against push gossip at 100,
        // 1,000 and 10,000 nodes.
        .executableTarget(
            name: "GossipBenchmarks",
            dependencies: [
                harness,
                .product(name: "EventCore", package: "Chorus"),
                .product(name: "Gossip", package: "Chorus"),
                .product(name: "Simulation", package: "Chorus"),
            ],
            path: "Benchmarks/GossipBenchmarks",
            plugins: benchmarkPlugin
        ),

        // SWIM in the simulator at 100, 1,000 and 10,000 members: Chorus's
        // defaults beside memberlist's LAN profile (emulated with Chorus
        // SWIM by configuration; not memberlist's code).
        .executableTarget(
            name: "SWIMBenchmarks",
            dependencies: [
                harness,
                .product(name: "EventCore", package: "Chorus"),
                .product(name: "SWIM", package: "Chorus"),
                .product(name: "Simulation", package: "Chorus"),
                .product(name: "WireCodec", package: "Chorus"),
            ],
            path: "Benchmarks/SWIMBenchmarks",
            plugins: benchmarkPlugin
        ),

        // CASPaxos on loopback UDP: uncontended writes with and without the
        // one-round-trip optimization, a contended key, durable stores.
        .executableTarget(
            name: "CASPaxosBenchmarks",
            dependencies: [
                harness,
                "PairedRuns",
                "RaftStateMachines",
                .product(name: "CASPaxos", package: "Chorus"),
                .product(name: "EventCore", package: "Chorus"),
                .product(name: "Raft", package: "Chorus"),
                .product(name: "UDPTransport", package: "Chorus"),
            ],
            path: "Benchmarks/CASPaxosBenchmarks",
            plugins: benchmarkPlugin
        ),

        // Raft: three replicas in one process driven directly (frames
        // encoded and decoded, no sockets): pipelined throughput, sequential
        // commit latency, 64 closed-loop clients; failover in the simulator;
        // CASPaxos uncontended writes in the same harness shape.
        .executableTarget(
            name: "RaftBenchmarks",
            dependencies: [
                harness,
                "PairedRuns",
                "RaftStateMachines",
                .product(name: "CASPaxos", package: "Chorus"),
                .product(name: "EventCore", package: "Chorus"),
                .product(name: "Raft", package: "Chorus"),
                .product(name: "Simulation", package: "Chorus"),
                .product(name: "WireCodec", package: "Chorus"),
            ],
            path: "Benchmarks/RaftBenchmarks",
            plugins: benchmarkPlugin
        ),
    ],
    swiftLanguageModes: [.v6]
)
