import EventCore
import Testing
import UDPTransport

@Suite("UDPSocketTransport: network errors")
struct SocketErrorTests {
    @Test("sending to a closed port counts ECONNREFUSED and the transport keeps working", arguments: [
        Endpoint.loopbackV4(), Endpoint.loopbackV6(),
    ])
    func connectionRefused(address: Endpoint) async throws {
        try await withLoops(1) { loops in
            let a = try await Peer.bind(address, on: loops[0])
            let gone = try await Peer.bind(address, on: loops[0])
            // Bound before the closed peer's port is free, so that it cannot
            // be given that port and receive what was sent to it.
            let b = try await Peer.bind(address, on: loops[0])
            try await gone.transport.run { $0.close() }
            try await a.send([1, 2, 3], to: gone.endpoint)
            try await waitUntil("ECONNREFUSED to be counted") {
                try await a.counters().sendErrors.connectionRefused >= 1
            }
            // More sends to the closed port, then a round trip with a live peer.
            for _ in 0..<3 { try await a.send([4], to: gone.endpoint) }
            try await a.send([5, 6], to: b.endpoint)
            try await waitUntil("the message to the live peer") { b.inbox.count == 1 }
            try await b.send([7], to: a.endpoint)
            try await waitUntil("the reply") { a.inbox.count == 1 }
            #expect(b.inbox.all.first?.bytes == [5, 6])
            #expect(a.inbox.all.first?.bytes == [7])
            let counters = try await a.counters()
            #expect(counters.receiveErrors == 0)
            #expect(counters.sendErrors.total == counters.sendErrors.connectionRefused)
        }
    }

    /// Before, only ECONNREFUSED and unreachable were retried: any other
    /// ICMP error left pending (fragmentation needed here; also
    /// administratively prohibited) cost the next datagram, to anyone, and
    /// was counted twice.
    @Test("an ICMP error left pending on the socket fails no datagram, and is counted once",
          .enabled(if: canOpenRawSockets, "forging the ICMP message needs a raw socket (CAP_NET_RAW)"))
    func pendingErrorRetried() async throws {
        try await withLoops(1) { loops in
            let a = try await Peer.bind(.loopbackV4(), on: loops[0])
            let b = try await Peer.bind(.loopbackV4(), on: loops[0])
            let (source, destination) = (a.endpoint, b.endpoint)
            // In one loop turn: the error arrives (loopback delivers it
            // within the raw send), then the message is queued; the queue is
            // flushed at the end of the turn, before the loop reads the
            // error queue.
            try await a.transport.run { transport in
                try sendFragmentationNeeded(about: source, to: .loopbackV4(port: 9))
                try transport.send([1, 2, 3], to: destination)
            }
            try await waitUntil("the message") { b.inbox.count == 1 }
            try await waitUntil("the error counted") { try await a.counters().sendErrors.messageTooLong >= 1 }
            try await b.send([4], to: source)
            try await waitUntil("a round trip after it") { a.inbox.count == 1 }
            let counters = try await a.counters()
            #expect(counters.sendErrors.messageTooLong == 1)
            #expect(counters.sendErrors.total == 1)
            #expect(counters.datagramsSent == 1)
        }
    }

    @Test("a datagram longer than the receive buffer is dropped as truncated")
    func truncatedDatagram() async throws {
        var large = UDPSocketTransport.Configuration()
        large.maximumDatagramSize = 4_000
        var small = UDPSocketTransport.Configuration()
        small.maximumDatagramSize = 600
        // The send queue holds one message of the largest size: 1,824 datagrams of 575 bytes.
        small.maximumMessageSize = 1 << 20
        try await withLoops(1) { loops in
            let sender = try await Peer.bind(on: loops[0], configuration: large)
            let receiver = try await Peer.bind(on: loops[0], configuration: small)
            try await sender.send([UInt8](repeating: 0, count: 3_000), to: receiver.endpoint)
            try await sender.send([9, 9], to: receiver.endpoint)
            try await waitUntil("the short message") { receiver.inbox.count == 1 }
            #expect(receiver.inbox.all.first?.bytes == [9, 9])
            let counters = try await receiver.counters()
            #expect(counters.receiveTruncated == 1)
            #expect(counters.datagramsReceived == 2)
            #expect(counters.messagesDelivered == 1)
        }
    }

    @Test("hostile fragments from a raw socket are dropped and counted; the transport keeps working")
    func hostileFragments() async throws {
        try await withLoops(1) { loops in
            let victim = try await Peer.bind(on: loops[0])
            let message = pseudoRandomBytes(3_000, seed: 7)
            var corrupted = try fragmentDatagram(of: message, index: 0, count: 3)
            corrupted[corrupted.count - 1] ^= 0xFF
            let truncated: [UInt8] = [0xC4, 0x05, 1, 1, 1, 0, 0, 0]
            var tooMany = try fragmentDatagram(of: message, index: 0, count: 3)
            tooMany = withRewrittenHeader(tooMany) { $0.count = 65_000 }
            for datagram in [corrupted, truncated, tooMany] {
                try sendRaw(datagram, to: victim.endpoint)
            }
            let peer = try await Peer.bind(on: loops[0])
            try await peer.send([1, 2, 3], to: victim.endpoint)
            try await waitUntil("the good message") { victim.inbox.count == 1 }
            try await waitUntil("three dropped fragments") {
                try await victim.counters().reassembly.droppedFragments == 3
            }
            let counters = try await victim.counters().reassembly
            #expect(counters.badChecksum == 1)
            #expect(counters.truncated == 1)
            #expect(counters.countOutOfRange == 1)
            #expect(victim.inbox.all.first?.bytes == [1, 2, 3])
        }
    }
}
