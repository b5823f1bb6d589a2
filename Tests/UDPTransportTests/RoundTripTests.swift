import EventCore
import Testing
import UDPTransport

@Suite("UDPSocketTransport: round trips")
struct RoundTripTests {
    @Test("a message and its reply travel between two transports on one loop", arguments: [
        Endpoint.loopbackV4(), Endpoint.loopbackV6(),
    ])
    func oneLoop(address: Endpoint) async throws {
        try await withLoops(1) { loops in
            let a = try await Peer.bind(address, on: loops[0])
            let b = try await Peer.bind(address, on: loops[0])
            try await a.send(Array("ping".utf8), to: b.endpoint)
            try await waitUntil("ping") { b.inbox.count == 1 }
            try await b.send(Array("pong".utf8), to: a.endpoint)
            try await waitUntil("pong") { a.inbox.count == 1 }
            #expect(b.inbox.all == [Inbox.Message(bytes: Array("ping".utf8), sender: a.endpoint)])
            #expect(a.inbox.all == [Inbox.Message(bytes: Array("pong".utf8), sender: b.endpoint)])
            let counters = try await a.counters()
            #expect(counters.messagesSent == 1)
            #expect(counters.datagramsSent == 1)
            #expect(counters.bytesSent == 4)
            #expect(counters.datagramsReceived == 1)
            #expect(counters.messagesDelivered == 1)
        }
    }

    @Test("with its receive handler removed, a transport counts what arrives as unclaimed, whole or reassembled")
    func removedHandler() async throws {
        try await withLoops(1) { loops in
            let a = try await Peer.bind(on: loops[0])
            let b = try await Peer.bind(on: loops[0])
            try await b.transport.run { $0.removeReceiveHandler() }
            try await a.send([1, 2, 3], to: b.endpoint)
            try await a.send(pseudoRandomBytes(5_000, seed: 7), to: b.endpoint)
            try await waitUntil("two unclaimed messages") { try await b.counters().messagesUnclaimed == 2 }
            let counters = try await b.counters()
            #expect(counters.messagesDelivered == 0)
            #expect(counters.reassembly.messagesCompleted == 1, "the long message was reassembled, then dropped")
            #expect(b.inbox.count == 0)

            // A handler installed again receives what comes next.
            try await b.transport.run { transport in
                let inbox = b.inbox
                transport.setReceiveHandler { bytes, sender, _ in inbox.append(bytes, from: sender) }
            }
            try await a.send([4], to: b.endpoint)
            try await waitUntil("the message after the handler") { b.inbox.count == 1 }
            #expect(try await b.counters().messagesDelivered == 1)
        }
    }

    @Test("a message and its reply travel between transports on two loops")
    func twoLoops() async throws {
        try await withLoops(2) { loops in
            let a = try await Peer.bind(on: loops[0])
            let b = try await Peer.bind(on: loops[1])
            try await a.send([1, 2, 3], to: b.endpoint)
            try await waitUntil("a's message") { b.inbox.count == 1 }
            try await b.send([4, 5], to: a.endpoint)
            try await waitUntil("b's reply") { a.inbox.count == 1 }
            #expect(b.inbox.all == [Inbox.Message(bytes: [1, 2, 3], sender: a.endpoint)])
            #expect(a.inbox.all == [Inbox.Message(bytes: [4, 5], sender: b.endpoint)])
        }
    }

    @Test("a burst of 1,000 small messages all arrive, each intact")
    func burst() async throws {
        try await withLoops(1) { loops in
            let a = try await Peer.bind(on: loops[0])
            let b = try await Peer.bind(on: loops[0])
            let destination = b.endpoint
            try await a.transport.run { transport in
                for index in 0..<1_000 {
                    try transport.send(Self.burstMessage(index), to: destination)
                }
            }
            try await waitUntil("1,000 messages") { b.inbox.count >= 1_000 }
            let received = b.inbox.all
            #expect(received.count == 1_000)
            #expect(received.allSatisfy { $0.sender == a.endpoint })
            let indexes = received.map { Int($0.bytes[0]) | Int($0.bytes[1]) << 8 }
            #expect(Set(indexes) == Set(0..<1_000))
            #expect(received.allSatisfy { $0.bytes == Self.burstMessage(Int($0.bytes[0]) | Int($0.bytes[1]) << 8) })
            let counters = try await a.counters()
            #expect(counters.datagramsSent == 1_000)
            #expect(counters.bytesSent == 64_000)
        }
    }

    /// 64 bytes: the index (little-endian), then bytes derived from it.
    private static func burstMessage(_ index: Int) -> [UInt8] {
        [UInt8(index & 0xFF), UInt8(index >> 8), 0, 0, 0]
            + (5..<64).map { UInt8(truncatingIfNeeded: index &* 31 &+ $0) }
    }

    @Test("a 1 MiB message arrives intact through fragmentation", arguments: [1_400, 65_507])
    func oneMebibyte(datagramSize: Int) async throws {
        var configuration = UDPSocketTransport.Configuration()
        configuration.maximumDatagramSize = datagramSize
        try await withLoops(1) { loops in
            let a = try await Peer.bind(on: loops[0], configuration: configuration)
            let b = try await Peer.bind(on: loops[0], configuration: configuration)
            let message = pseudoRandomBytes(1 << 20, seed: 0x5EED)
            try await a.send(message, to: b.endpoint)
            try await waitUntil("the reassembled message") { b.inbox.count == 1 }
            let received = try #require(b.inbox.all.first)
            #expect(received.sender == a.endpoint)
            #expect(received.bytes.count == message.count)
            #expect(received.bytes == message)
            let fragments = try Fragmenter(maximumDatagramSize: datagramSize).fragmentCount(messageLength: message.count)
            let sent = try await a.counters()
            #expect(sent.fragmentedMessagesSent == 1)
            #expect(sent.datagramsSent == UInt64(fragments))
            let counters = try await b.counters()
            #expect(counters.reassembly.messagesCompleted == 1)
            #expect(counters.reassembly.fragmentsAccepted == UInt64(fragments))
            #expect(counters.reassembly.droppedFragments == 0)
            #expect(counters.messagesDelivered == 1)
        }
    }

    @Test("a short message whose flags byte has the fragment bit arrives whole and unchanged",
          arguments: [8, 1_390, 1_400])
    func messageThatLooksLikeAFragment(size: Int) async throws {
        try await withLoops(1) { loops in
            let a = try await Peer.bind(on: loops[0])
            let b = try await Peer.bind(on: loops[0])
            var message = pseudoRandomBytes(size, seed: UInt64(size))
            message[4] |= 1
            try await a.send(message, to: b.endpoint)
            try await waitUntil("the message") { b.inbox.count == 1 }
            #expect(b.inbox.all.first?.bytes == message)
            #expect(try await a.counters().fragmentedMessagesSent == 1)
        }
    }

    @Test("an empty message arrives as an empty message")
    func emptyMessage() async throws {
        try await withLoops(1) { loops in
            let a = try await Peer.bind(on: loops[0])
            let b = try await Peer.bind(on: loops[0])
            try await a.send([], to: b.endpoint)
            try await waitUntil("the message") { b.inbox.count == 1 }
            #expect(b.inbox.all.first?.bytes == [])
        }
    }
}
