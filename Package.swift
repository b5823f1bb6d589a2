// swift-tools-version: 6.1
//
// Chorus: gossip, SWIM, Raft and CASPaxos for Swift on one event-loop core.
// The root package has zero package dependencies (toolchain only); peers used
// for comparison live in the nested `Benchmarks/` package.
import PackageDescription

let package = Package(
    name: "Chorus",
    products: [
        .library(name: "EventCore", targets: ["EventCore"]),
        .library(name: "WireCodec", targets: ["WireCodec"]),
        .library(name: "UDPTransport", targets: ["UDPTransport"]),
        .library(name: "Simulation", targets: ["Simulation"]),
        .library(name: "Gossip", targets: ["Gossip"]),
        .library(name: "SWIM", targets: ["SWIM"]),
        .library(name: "Raft", targets: ["Raft"]),
        .library(name: "CASPaxos", targets: ["CASPaxos"]),
        .library(name: "Chorus", targets: ["Chorus"]),
        .executable(name: "chorus", targets: ["ChorusCLI"]),
    ],
    targets: [
        .target(name: "CChorusSystem"),
        .target(name: "EventCore", dependencies: ["CChorusSystem", "WireCodec"]),
        .target(name: "WireCodec", dependencies: ["CChorusSystem"]),
        .target(name: "UDPTransport", dependencies: ["EventCore", "WireCodec", "CChorusSystem"]),
        .target(name: "Simulation", dependencies: ["EventCore"]),
        .target(name: "Gossip", dependencies: ["EventCore", "WireCodec"]),
        .target(name: "SWIM", dependencies: ["EventCore", "WireCodec"]),
        .target(name: "Raft", dependencies: ["EventCore", "WireCodec"]),
        .target(name: "CASPaxos", dependencies: ["EventCore", "WireCodec"]),
        .target(name: "Chorus", dependencies: ["EventCore", "WireCodec", "SWIM", "Raft", "CASPaxos"]),
        .executableTarget(
            name: "ChorusCLI",
            dependencies: ["EventCore", "WireCodec", "UDPTransport", "Gossip", "SWIM", "Raft", "CASPaxos", "Chorus"]
        ),
        // Helpers shared by the test targets (not a product).
        .target(name: "TestSupport", dependencies: ["EventCore"], path: "Tests/TestSupport"),
        .testTarget(name: "EventCoreTests", dependencies: ["EventCore", "TestSupport"]),
        .testTarget(name: "WireCodecTests", dependencies: ["WireCodec", "EventCore"]),
        .testTarget(name: "UDPTransportTests", dependencies: ["UDPTransport", "EventCore", "WireCodec", "TestSupport"]),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "EventCore"]),
        .testTarget(
            name: "GossipTests",
            dependencies: ["Gossip", "Simulation", "UDPTransport", "EventCore", "WireCodec", "TestSupport"]),
        .testTarget(
            name: "SWIMTests", dependencies: ["SWIM", "Simulation", "UDPTransport", "EventCore", "WireCodec", "TestSupport"]),
        .testTarget(
            name: "RaftTests", dependencies: ["Raft", "Simulation", "UDPTransport", "EventCore", "WireCodec", "TestSupport"]),
        .testTarget(
            name: "CASPaxosTests",
            dependencies: ["CASPaxos", "Simulation", "UDPTransport", "EventCore", "WireCodec", "TestSupport"]),
        .testTarget(
            name: "ChorusTests",
            dependencies: ["Chorus", "SWIM", "CASPaxos", "Gossip", "Raft", "Simulation", "UDPTransport", "EventCore", "WireCodec", "TestSupport"]),
        .testTarget(name: "ChorusCLITests", dependencies: ["ChorusCLI", "CASPaxos", "Chorus", "EventCore", "Raft", "TestSupport", "UDPTransport"]),
    ],
    swiftLanguageModes: [.v6]
)
