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
            let groups = try ["239.255.77.81:0", "239.255.77.82:0"].map { try Endpoint(parsing: $0).address }
            let inboxes = [Inbox(), Inbox()]
            // The first listener's port from the kernel (parallel runs do
            // not meet), the second's the same.
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
            // To the second group first: sent in order from one socket, the
            // first group's message arrives after it, if it arrives at all.
            try await sender.send([2], to: second)
            try await sender.send([1], to: first)
            try await waitUntil("both groups' messages") { inboxes[0].count >= 1 && inboxes[1].count >= 1 }
            #expect(inboxes[0].all.map(\.bytes) == [[1]])
            #expect(inboxes[1].all.map(\.bytes) == [[2]])
            try await listeners.run { listeners in listeners.forEach { $0.close() } }
        }
    }
}
