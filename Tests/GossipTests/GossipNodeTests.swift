import EventCore
import Gossip
import Simulation
import Testing

@Suite("GossipNode API")
struct GossipNodeTests {
    /// A transport bound to a wildcard address, as a test stands one in.
    final class WildcardTransport: Transport {
        let localEndpoint: Endpoint
        var maximumMessageSize: Int { 1_400 }
        init(_ endpoint: Endpoint) { localEndpoint = endpoint }
        func send(_ message: UnsafeRawBufferPointer, to destination: Endpoint) throws(TransportError) {}
        func setReceiveHandler(_ handler: @escaping TransportReceiveHandler) {}
        func removeReceiveHandler() {}
    }

    /// Accepted, the node named 0.0.0.0 in its shuffles: peers answered
    /// them to their own sockets, and kept the address in their views.
    @Test("a node on a transport bound to a wildcard address is refused")
    func wildcardBindRefused() throws {
        let network = SimulatedNetwork(seed: 1)
        let scheduler = network.addNode()
        defer { withExtendedLifetime(network) {} }
        for bound in ["0.0.0.0:7946", "[::]:7946"] {
            let error = #expect(throws: ConfigurationError.self, "\(bound)") {
                try GossipNode(transport: WildcardTransport(try Endpoint(parsing: bound)), scheduler: scheduler)
            }
            #expect(error?.field == "transport.localEndpoint")
        }
    }

    /// A message served from retention carries its age, up to 7 bytes over
    /// maximumMessageSize: a transport that cannot carry it would refuse
    /// every such answer to a pull or a graft of the largest payloads.
    @Test("a node refuses a transport that cannot carry its longest frame, naming maximumMessageSize")
    func messageSizeFitsTransport() throws {
        let network = SimulatedNetwork(seed: 5)
        network.maximumMessageSize = 1_000
        let host = network.addNode()
        var configuration = GossipConfiguration()
        configuration.maximumMessageSize = 1_000
        let error = #expect(throws: ConfigurationError.self) {
            try GossipNode(transport: host, scheduler: host, configuration: configuration)
        }
        #expect(error?.field == "maximumMessageSize")
        configuration.maximumMessageSize = 1_000 - GossipMessage.agedOverhead
        #expect(throws: Never.self) { try GossipNode(transport: host, scheduler: host, configuration: configuration) }
    }

    @Test("a payload over the limit throws .payloadTooLarge; one at the limit is sent")
    func payloadLimit() throws {
        let cluster = try SimulatedCluster(count: 3, seed: 1, configuration: GossipConfiguration())
        cluster.network.run(for: .seconds(2))
        let node = try #require(cluster.drivers[1])
        do throws(GossipError) {
            try node.broadcast([UInt8](repeating: 0, count: 487))
            Issue.record("a 487-byte payload was accepted")
        } catch {
            #expect(error.code == .payloadTooLarge)
        }
        let id = try node.broadcast([UInt8](repeating: 0, count: 486))
        cluster.network.run(for: .seconds(1))
        #expect(cluster.undelivered([id]) == 0)
    }

    @Test("an invalid configuration names the field and its range")
    func invalidConfiguration() {
        var configuration = GossipConfiguration()
        configuration.peerTimeout = .milliseconds(100)  // not above the heartbeat interval
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
        do {
            try configuration.validate()
        } catch {
            #expect(error.field == "peerTimeout")
        }
        // Twice the heartbeat interval is not enough either.
        configuration = GossipConfiguration()
        configuration.peerTimeout = configuration.heartbeatInterval * 2
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
        configuration.peerTimeout += .milliseconds(1)
        #expect(throws: Never.self) { try configuration.validate() }
        // A shuffle sample that would not fit a message.
        configuration = GossipConfiguration()
        configuration.maximumMessageSize = 64
        do {
            try configuration.validate()
            Issue.record("accepted shuffles of \(configuration.shuffleMessageSize) bytes in 64-byte messages")
        } catch {
            #expect(error.field == "shuffleMessageSize")
        }
        configuration.shuffleActiveCount = 0
        configuration.shufflePassiveCount = 0
        #expect(throws: Never.self) { try configuration.validate() }
        configuration = GossipConfiguration()
        configuration.maximumMessageSize = 70_000
        do {
            try configuration.validate()
            Issue.record("accepted a 70,000-byte message size")
        } catch {
            #expect(error.field == "maximumMessageSize")
            #expect(error.allowedRange == "64 ... 65507")
        }
    }

    @Test("a stopped node refuses broadcasts, finishes its streams and ignores input")
    func stop() async throws {
        let cluster = try SimulatedCluster(count: 3, seed: 2, configuration: GossipConfiguration())
        cluster.network.run(for: .seconds(2))
        let node = try #require(cluster.drivers[2])
        let stream = node.deliveries()
        node.stop()
        #expect(throws: GossipError.self) { try node.broadcast([1]) }
        var iterator = stream.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        let id = try #require(cluster.broadcast(1, every: .seconds(1)).first)
        #expect(cluster.missing(id).contains(2))
    }

    @Test("deliveries arrive on the AsyncStream too, once each")
    func stream() async throws {
        let cluster = try SimulatedCluster(count: 4, seed: 3, configuration: GossipConfiguration())
        cluster.network.run(for: .seconds(2))
        let node = try #require(cluster.drivers[3])
        let stream = node.deliveries()
        let ids = cluster.broadcast(5, every: .milliseconds(100))
        cluster.network.run(for: .seconds(1))
        node.stop()
        var received: [MessageID] = []
        for await delivery in stream { received.append(delivery.id) }
        #expect(Set(received) == Set(ids.filter { $0.origin != node.id }))
        #expect(received.count == Set(received).count)
    }

    @Test("the same seed replays the same run, counter for counter", arguments: [DisseminationMode.push, .plumtree])
    func determinism(mode: DisseminationMode) throws {
        func run() throws -> ([GossipCounters], [Set<MessageID>]) {
            let link = LinkConditions(delay: .exponential(mean: .milliseconds(3), maximum: .milliseconds(50)), lossProbability: 0.02)
            let cluster = try SimulatedCluster(count: 100, seed: 0xDE7, configuration: GossipConfiguration(mode: mode), link: link)
            cluster.network.run(for: .seconds(3))
            _ = cluster.broadcast(10, every: .milliseconds(30))
            cluster.network.run(for: .seconds(3))
            return (cluster.drivers.map { $0?.counters ?? GossipCounters() }, cluster.delivered)
        }
        let first = try run()
        let second = try run()
        #expect(first.0 == second.0)
        #expect(first.1 == second.1)
    }
}
