import EventCore
import Simulation
import Testing

@Suite("Transport")
struct TransportTests {
    @Test("nodes get distinct 10.x.y.z:7946 endpoints, or the one asked for")
    func endpoints() throws {
        let network = SimulatedNetwork(seed: 51)
        let custom = try Endpoint(parsing: "10.0.0.2:7946")
        let first = network.addNode()
        let taken = try network.addNode(at: custom)
        let third = network.addNode()
        let v6 = try network.addNode(at: Endpoint(parsing: "[fd00::1]:9000"))
        #expect(first.localEndpoint.description == "10.0.0.1:7946")
        #expect(taken.localEndpoint == custom)
        #expect(third.localEndpoint.description == "10.0.0.3:7946")
        #expect(network.nodes.map(\.index) == [0, 1, 2, 3])
        #expect(network.node(at: v6.localEndpoint) === v6)
        #expect(network.node(at: Endpoint.loopbackV4(port: 1)) == nil)
        let error = #expect(throws: ConfigurationError.self) {
            try network.addNode(at: custom)
        }
        #expect(error?.field == "endpoint")
        let inbox = Inbox(v6)
        try first.send([9], to: v6.localEndpoint)
        network.runUntilIdle()
        #expect(inbox.messages.map(\.sender) == [first.localEndpoint])
    }

    @Test("a send copies the caller's bytes")
    func copiesBytes() throws {
        let network = SimulatedNetwork(seed: 52)
        let a = network.addNode()
        let b = network.addNode()
        let inbox = Inbox(b)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 3, alignment: 1)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: [1, 2, 3])
        try a.send(UnsafeRawBufferPointer(buffer), to: b.localEndpoint)
        buffer[0] = 99
        try a.send([], to: b.localEndpoint)
        network.runUntilIdle()
        #expect(inbox.messages.map(\.bytes) == [[1, 2, 3], []])
    }

    @Test("a message over the maximum size throws messageTooLarge and is not counted")
    func tooLarge() throws {
        let network = SimulatedNetwork(seed: 53)
        let a = network.addNode()
        let b = network.addNode()
        #expect(a.maximumMessageSize == 4 << 20)
        network.maximumMessageSize = 16
        let error = #expect(throws: TransportError.self) {
            try a.send([UInt8](repeating: 0, count: 17), to: b.localEndpoint)
        }
        #expect(error?.code == .messageTooLarge)
        try a.send([UInt8](repeating: 0, count: 16), to: b.localEndpoint)
        #expect(network.statistics.sent == 1)
    }

    @Test("unknown destinations and nodes without a handler drop silently and are counted")
    func noReceiver() throws {
        let network = SimulatedNetwork(seed: 54)
        network.traceCapacity = 10
        let a = network.addNode()
        let b = network.addNode()  // no handler
        let nowhere = try Endpoint(parsing: "192.0.2.1:1")
        try a.send([1], to: nowhere)
        try a.send([2], to: b.localEndpoint)
        network.runUntilIdle()
        #expect(network.statistics.droppedNoReceiver == 2)
        #expect(network.statistics.delivered == 0)
        #expect(
            network.trace.map(\.kind) == [
                .send(messageID: 1, from: a.localEndpoint, to: nowhere, size: 1),
                .drop(messageID: 1, from: a.localEndpoint, to: nowhere, reason: .noReceiver),
                .send(messageID: 2, from: a.localEndpoint, to: b.localEndpoint, size: 1),
                .drop(messageID: 2, from: a.localEndpoint, to: b.localEndpoint, reason: .noReceiver),
            ])
    }

    @Test("a node whose handler was removed drops what reaches it, counted, until one is installed again")
    func removedHandler() throws {
        let network = SimulatedNetwork(seed: 56)
        let a = network.addNode()
        let b = network.addNode()
        let inbox = Inbox(b)
        b.removeReceiveHandler()
        try a.send([1], to: b.localEndpoint)
        network.runUntilIdle()
        #expect(network.statistics.droppedNoReceiver == 1)
        #expect(inbox.messages.isEmpty)

        inbox.attach(to: b)
        try a.send([2], to: b.localEndpoint)
        network.runUntilIdle()
        #expect(inbox.messages.map(\.bytes) == [[2]])
        #expect(network.statistics.delivered == 1)
    }

    @Test("the trace keeps the most recent events up to its capacity")
    func traceCapacity() throws {
        let network = SimulatedNetwork(seed: 55)
        let a = network.addNode()
        let b = network.addNode()
        _ = Inbox(b)
        try a.send([0], to: b.localEndpoint)
        #expect(network.trace.isEmpty)
        network.traceCapacity = 3
        for i in 2...4 { try a.send([UInt8(i)], to: b.localEndpoint) }  // messages #2 to #4
        network.runUntilIdle()
        #expect(
            network.trace.map(\.kind) == [2, 3, 4].map {
                .deliver(messageID: $0, from: a.localEndpoint, to: b.localEndpoint, size: 1)
            })
        #expect(network.trace.map(\.time) == Array(repeating: .at(.milliseconds(1)), count: 3))
        network.traceCapacity = 1
        #expect(network.trace.map(\.kind) == [.deliver(messageID: 4, from: a.localEndpoint, to: b.localEndpoint, size: 1)])
        #expect(network.trace.first?.description == "0.001s deliver #4 10.0.0.1:7946 -> 10.0.0.2:7946 (1 bytes)")
    }

    @Test("random generators handed out replay from the network's seed")
    func generators() {
        var first = SimulatedNetwork(seed: 56).makeRandomGenerator()
        var second = SimulatedNetwork(seed: 56).makeRandomGenerator()
        #expect(first.next() == second.next())
    }
}
