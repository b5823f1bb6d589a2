import EventCore
import SWIM
import Simulation
import TestSupport
import Testing
import UDPTransport

/// Multicast discovery: members find each other without seeds, in the
/// simulator (IPv4 and IPv6 groups) and on real UDP over loopback.
@Suite("SWIM multicast discovery")
struct DiscoveryTests {
    /// Advertised, a wildcard sends every member's probes of this one back
    /// to their own sockets: it is declared dead, refutes, and flaps.
    @Test("a member refuses to advertise a wildcard address or port 0")
    func wildcardAdvertiseRefused() throws {
        let network = SimulatedNetwork(seed: 1)
        let node = network.addNode()
        defer { withExtendedLifetime(network) {} }
        for advertised in ["0.0.0.0:7946", "[::]:7946", "10.0.0.1:0"] {
            let error = #expect(throws: ConfigurationError.self, "\(advertised)") {
                try SWIMNode(transport: node, scheduler: node, advertising: try Endpoint(parsing: advertised))
            }
            #expect(error?.field == "advertising")
        }
        #expect(throws: Never.self) {
            try SWIMNode(transport: node, scheduler: node, advertising: try Endpoint(parsing: "10.0.0.1:7946"))
        }
    }

    @Test("32 members with no seeds find each other through a multicast group",
          arguments: ["239.192.0.77:7948", "[ff15::77]:7948"])
    func simulatedDiscovery(group: String) throws {
        let network = SimulatedNetwork(seed: 3)
        var configuration = SWIMConfiguration()
        configuration.multicastGroup = try Endpoint(parsing: group)
        var members: [SWIMNode] = []
        for index in 0..<32 {
            let node = index < 16 ? network.addNode() : try network.addNode(
                at: Endpoint(address: .ipv6(high: 0xFD00 << 48, low: UInt64(index)), port: 7946))
            network.joinGroup(configuration.multicastGroup!, node: node)
            let member = try SWIMNode(id: NodeID(UInt64(index + 1)), transport: node, scheduler: node,
                                      configuration: configuration, seed: UInt64(index))
            members.append(member)
            network.schedule(at: .zero + .milliseconds(Int64(index) * 200)) { _ in member.start() }
        }
        network.run(for: .seconds(12))
        for member in members {
            #expect(member.memberCount(.alive) == 32, "member \(member.id) knows \(member.memberCount(.alive))")
        }
        // Announcing stops once a member has company.
        let announcements = members.reduce(0) { $0 + $1.counters.announcementsSent }
        #expect(announcements < 64)
    }

    @Test("members of another cluster are not merged")
    func otherClusterIgnored() throws {
        let network = SimulatedNetwork(seed: 4)
        let group = try Endpoint(parsing: "239.192.0.77:7948")
        var members: [SWIMNode] = []
        for index in 0..<4 {
            var configuration = SWIMConfiguration()
            configuration.multicastGroup = group
            configuration.clusterName = index < 2 ? "blue" : "green"
            let node = network.addNode()
            network.joinGroup(group, node: node)
            let member = try SWIMNode(transport: node, scheduler: node, configuration: configuration, seed: UInt64(index))
            member.start()
            members.append(member)
        }
        network.run(for: .seconds(12))
        #expect(members.map { $0.memberCount(.alive) } == [2, 2, 2, 2])
        #expect(members.reduce(0) { $0 + $1.counters.announcementsIgnored } > 0)
    }

    /// An announcement names its cluster: a name longer than the metadata
    /// and broadcast limits must still decode.
    @Test("a cluster name longer than the metadata and broadcast limits still finds the members")
    func longClusterName() throws {
        let network = SimulatedNetwork(seed: 5)
        var configuration = SWIMConfiguration()
        configuration.multicastGroup = try Endpoint(parsing: "239.192.0.77:7948")
        configuration.clusterName = String(repeating: "c", count: SWIMConfiguration.maximumClusterNameLength)
        configuration.maximumMetadataSize = 0
        configuration.maximumBroadcastSize = 0
        var members: [SWIMNode] = []
        for index in 0..<4 {
            let node = network.addNode()
            network.joinGroup(configuration.multicastGroup!, node: node)
            let member = try SWIMNode(transport: node, scheduler: node, configuration: configuration, seed: UInt64(index))
            member.start()
            members.append(member)
        }
        network.run(for: .seconds(12))
        #expect(members.map { $0.memberCount(.alive) } == [4, 4, 4, 4])
        #expect(members.allSatisfy { $0.counters.malformedFramesDropped == 0 })
    }

    @Test("4 members bound to 127.0.0.1 find each other through a group on loopback")
    func loopbackDiscovery() async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let members = try await loop.submit { () -> LoopBound<[SWIMNode]> in
            // A group of this run's own, at a port from the kernel (the
            // first listener's), so parallel runs do not meet.
            var group = Endpoint(address: .ipv4(0xEFFF_0000 | UInt32.random(in: 1...0xFFFE)), port: 0)
            let listeners = try (0..<4).map { _ in
                let listener = try UDPSocketTransport.listen(toGroup: group, interface: .ipv4(0x7F00_0001), on: loop)
                group = Endpoint(address: group.address, port: listener.localEndpoint.port)
                return listener
            }
            var configuration = SWIMConfiguration()
            configuration.multicastGroup = group
            configuration.multicastAnnounceInterval = .milliseconds(200)
            var members: [SWIMNode] = []
            for (index, listener) in listeners.enumerated() {
                let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop)
                let member = try SWIMNode(transport: transport, scheduler: loop, configuration: configuration,
                                          seed: UInt64(index), discovery: listener)
                member.start()
                members.append(member)
            }
            return LoopBound(members, on: loop)
        }
        let found = try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            members.value.allSatisfy { $0.memberCount(.alive) == 4 }
        }
        #expect(found)
        try await loop.submit {
            for member in members.value {
                member.stop()
                (member.transport as? UDPSocketTransport)?.close()
                (member.discovery as? UDPSocketTransport)?.close()
            }
        }
    }
}
