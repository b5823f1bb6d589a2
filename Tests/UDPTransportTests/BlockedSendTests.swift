import EventCore
import Testing
@testable import UDPTransport

/// A transport whose socket really would block: on a loopback shaped to
/// 1 Mbit/s in a network namespace of the test's own, with a small send
/// buffer (on the host's loopback a UDP sender never blocks).
@Suite("Sending while the socket would block")
struct BlockedSendTests {
    /// A sender with a 4 KiB send buffer and a 64-datagram queue (so
    /// messages of at most 64 fragments), and a receiver, on `loop`, which
    /// has moved into a namespace of its own whose loopback runs at 1
    /// Mbit/s: the sender's socket blocks.
    static func blockingPair(on loop: EventLoop) async throws -> (sender: Peer, receiver: Peer) {
        try await loop.submit { try enterShapedLoopbackNamespace(rate: "1mbit") }
        var configuration = UDPSocketTransport.Configuration()
        configuration.sendBufferSize = 4_096
        configuration.sendQueueCapacity = 64
        configuration.maximumMessageSize = 64 * (configuration.maximumDatagramSize - FragmentHeader.datagramOverhead)
        return (
            try await Peer.bind(.loopbackV4(), on: loop, configuration: configuration),
            try await Peer.bind(.loopbackV4(), on: loop)
        )
    }

    /// A message split in more fragments than the queue has room for while
    /// the socket would block is dropped whole: the fragments still queued
    /// are withdrawn rather than sent for a message the receiver can never
    /// put together; later messages that fit still go.
    @Test(
        "a fragmented message the blocked queue cannot take is dropped whole; the next one that fits is sent",
        .enabled(if: canShapeLoopback, "a network namespace with a shaped loopback needs root and iproute2"))
    func fragmentedMessageDroppedWhole() async throws {
        try await withLoops(1) { loops in
            let (sender, receiver) = try await Self.blockingPair(on: loops[0])
            let destination = receiver.endpoint
            let first = pseudoRandomBytes(60 * 1_375, seed: 1)
            let large = pseudoRandomBytes(60 * 1_375, seed: 4)
            let small = pseudoRandomBytes(3 * 1_375, seed: 2)
            // One loop turn: the first message's 60 fragments wait for the
            // batch; the large one's fourth fills it, and the flush blocks
            // after a few datagrams, with the rest of the large message
            // beyond the queue's room: its queued fragments are withdrawn.
            // Then the small one fits in the room they left.
            let queued = try await sender.transport.run { transport in
                try transport.send(first, to: destination)
                try transport.send(large, to: destination)
                #expect(transport.sendQueue.isBlocked, "the shaped loopback did not block the sender")
                let afterLarge = transport.sendQueue.count
                try transport.send(small, to: destination)
                let afterSmall = transport.sendQueue.count
                // Still blocked: this one cannot fit, and nothing of it is queued.
                try transport.send(large, to: destination)
                return (afterLarge, afterSmall, transport.sendQueue.count)
            }
            #expect(queued.0 > 0 && queued.0 < 60, "fragments of the dropped message left queued")
            #expect(queued.1 == queued.0 + 3)
            #expect(queued.2 == queued.1)
            try await waitUntil("the small message") { receiver.inbox.count >= 2 }
            #expect(receiver.inbox.all.map(\.bytes) == [first, small])
            let counters = try await sender.counters()
            #expect(counters.sendQueueOverflows == 2)
            #expect(counters.fragmentedMessagesSent == 4)
            #expect(counters.datagramsSent == 63, "none of the large message went")
        }
    }

    /// Closing used to skip a blocked queue: its datagrams vanished without
    /// a count.
    @Test(
        "closing a blocked transport tries its queue once more and counts what the socket would not take",
        .enabled(if: canShapeLoopback, "a network namespace with a shaped loopback needs root and iproute2"))
    func closeCountsBlockedQueue() async throws {
        try await withLoops(1) { loops in
            let (sender, receiver) = try await Self.blockingPair(on: loops[0])
            let destination = receiver.endpoint
            let message = pseudoRandomBytes(1_000, seed: 3)
            let (queued, sentBefore, counters) = try await sender.transport.run { transport in
                while !transport.sendQueue.isBlocked { try transport.send(message, to: destination) }
                let queued = transport.sendQueue.count
                let sentBefore = transport.counters.datagramsSent
                transport.close()
                return (queued, sentBefore, transport.counters)
            }
            #expect(queued > 0)
            #expect(counters.datagramsDroppedAtClose > 0, "the shaped socket took the whole queue")
            #expect(counters.datagramsSent - sentBefore + counters.datagramsDroppedAtClose == UInt64(queued))
        }
    }
}
