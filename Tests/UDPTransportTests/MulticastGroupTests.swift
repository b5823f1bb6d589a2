import EventCore
import Testing
import UDPTransport

@Suite("UDPSocketTransport: multicast groups")
struct MulticastGroupTests {
    /// Two listeners on one port, each in its own group: one hears its
    /// group only. With Linux's default (`IP_MULTICAST_ALL` on), a socket
    /// bound to the wildcard address got every group any socket on the
    /// host had joined at its port: two clusters announcing on different
    /// groups but one port heard each other.
    @Test("a listener hears its own group, not another group joined on the host at its port")
    func groupsStaySeparate() async throws {
        try await withLoops(1) { loops in
            let loop = loops[0]
            let sender = try await Peer.bind(on: loop)
            // Two groups of this run's own, at a port from the kernel (the
            // first listener's), so parallel runs do not meet.
            let base = 0xEFFF_0000 | (UInt32.random(in: 0...0x7FFE) << 1)
            let groups: [Endpoint.Address] = [.ipv4(base), .ipv4(base + 1)]
            let inboxes = [Inbox(), Inbox()]
            let (listeners, port) = try await loop.submit {
                var port: UInt16 = 0
                let listeners = try groups.enumerated().map { index, group in
                    let listener = try UDPSocketTransport.listen(
                        toGroup: Endpoint(address: group, port: port), interface: .ipv4(0x7F00_0001), on: loop)
                    port = listener.localEndpoint.port
                    listener.setReceiveHandler { bytes, sender, _ in inboxes[index].append(bytes, from: sender) }
                    return listener
                }
                return (LoopBound(listeners, on: loop), port)
            }
            let first = Endpoint(address: groups[0], port: port)
            let second = Endpoint(address: groups[1], port: port)
            // Sent in order from one socket, each listener hears them in
            // order: a listener that heard the other group too has one of
            // its messages before its own last one.
            try await sender.send([2], to: second)
            try await sender.send([1], to: first)
            try await sender.send([3], to: second)
            try await sender.send([4], to: first)
            try await waitUntil("both groups' last messages") {
                inboxes[0].all.contains { $0.bytes == [4] } && inboxes[1].all.contains { $0.bytes == [3] }
            }
            #expect(inboxes[0].all.map(\.bytes) == [[1], [4]])
            #expect(inboxes[1].all.map(\.bytes) == [[2], [3]])
            try await listeners.run { listeners in listeners.forEach { $0.close() } }
        }
    }
}
