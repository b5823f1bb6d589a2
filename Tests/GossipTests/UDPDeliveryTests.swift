import EventCore
import Gossip
import TestSupport
import Testing
import UDPTransport

#if canImport(Glibc)
import Glibc
#endif

/// Gossip on real sockets: nodes on 127.0.0.1 (and ::1) with ports from the
/// kernel, on one EventLoop. Waits poll the outcome with a deadline; nothing
/// depends on a fixed sleep.
@Suite("Gossip over real UDP")
struct UDPDeliveryTests {
    /// The nodes of a loopback cluster and what each delivered. Loop-only.
    final class LoopbackCluster {
        var transports: [UDPSocketTransport] = []
        var nodes: [GossipNode] = []
        var delivered: [Set<MessageID>] = []
        var redeliveries = 0

        init(count: Int, host: Endpoint, mode: DisseminationMode, loop: EventLoop) throws {
            var configuration = GossipConfiguration(mode: mode)
            configuration.antiEntropyInterval = .milliseconds(200)
            for index in 0..<count {
                let transport = try UDPSocketTransport.bind(to: host, on: loop)
                let node = try GossipNode(
                    transport: transport, scheduler: loop, configuration: configuration, seed: UInt64(index + 1))
                delivered.append([])
                node.setDeliveryHandler { [unowned self] delivery in
                    if !self.delivered[index].insert(delivery.id).inserted { self.redeliveries += 1 }
                }
                transports.append(transport)
                nodes.append(node)
            }
            nodes[0].start()
            for node in nodes.dropFirst() { node.start(seeds: [transports[0].localEndpoint]) }
        }

        /// (node, message) pairs not delivered yet.
        func undelivered(_ ids: [MessageID]) -> Int {
            var count = 0
            for (index, node) in nodes.enumerated() {
                count += ids.filter { $0.origin != node.id && !delivered[index].contains($0) }.count
            }
            return count
        }

        func close() {
            for node in nodes { node.stop() }
            for transport in transports { transport.close() }
        }
    }

    static func run(count: Int, host: Endpoint, mode: DisseminationMode) async throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.shutdown() }
        let cluster = try await loop.submit { LoopBound(try LoopbackCluster(count: count, host: host, mode: mode, loop: loop), on: loop) }
        let joined = try await LoopPolling.eventually(on: loop, within: .seconds(10)) {
            cluster.value.nodes.allSatisfy { !$0.activeView.isEmpty }
        }
        #expect(joined, "every node found a neighbour")
        let ids = try await loop.submit { () -> [MessageID] in
            try cluster.value.nodes.enumerated().map { index, node in
                try node.broadcast(Array("message \(index) from \(node.id)".utf8))
            }
        }
        let complete = try await LoopPolling.eventually(on: loop, within: .seconds(10)) { cluster.value.undelivered(ids) == 0 }
        #expect(complete, "every node delivered every broadcast")
        #expect(try await loop.submit { cluster.value.redeliveries } == 0)
        try await loop.submit { cluster.value.close() }
    }

    @Test("8 nodes on 127.0.0.1 deliver every broadcast", arguments: [DisseminationMode.push, .plumtree])
    func ipv4(mode: DisseminationMode) async throws {
        try await Self.run(count: 8, host: .loopbackV4(), mode: mode)
    }

    @Test("4 nodes on ::1 deliver every broadcast", arguments: [DisseminationMode.push, .plumtree])
    func ipv6(mode: DisseminationMode) async throws {
        try await Self.run(count: 4, host: .loopbackV6(), mode: mode)
    }
}
