import EventCore
import Testing
@testable import UDPTransport

/// A transport whose socket really would block: on a loopback shaped to
/// 1 Mbit/s in a network namespace of the test's own, with a small send
/// buffer (on the host's loopback a UDP sender never blocks).
@Suite("Sending while the socket would block")
struct BlockedSendTests {
    /// A sender with a 4 KiB send buffer and a 64-datagram queue, and a
    /// receiver, on `loop`, which has moved into a namespace of its own
    /// whose loopback runs at 1 Mbit/s: the sender's socket blocks.
    static func blockingPair(on loop: EventLoop) async throws -> (sender: Peer, receiver: Peer) {
        try await loop.submit { try enterShapedLoopbackNamespace(rate: "1mbit") }
        var configuration = UDPSocketTransport.Configuration()
        configuration.sendBufferSize = 4_096
        configuration.sendQueueCapacity = 64
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
            let large = pseudoRandomBytes(200 * 1_400, seed: 1)
            let small = pseudoRandomBytes(5 * 1_400, seed: 2)
            // One loop turn: the large message fills the queue, whose flush
            // blocks after a few datagrams; then the small one fits in the
            // room the withdrawn fragments left.
            let queued = try await sender.transport.run { transport in
                try transport.send(large, to: destination)
                #expect(transport.sendQueue.isBlocked, "the shaped loopback did not block the sender")
                let afterLarge = transport.sendQueue.count
                try transport.send(small, to: destination)
                let afterSmall = transport.sendQueue.count
                // Still blocked: this one cannot fit, and nothing of it is queued.
                try transport.send(large, to: destination)
                return (afterLarge, afterSmall, transport.sendQueue.count)
            }
            #expect(queued.0 == 0, "fragments of the dropped message left queued")
            #expect(queued.1 == 6)
            #expect(queued.2 == 6)
            try await waitUntil("the small message") { receiver.inbox.count >= 1 }
            #expect(receiver.inbox.all.map(\.bytes) == [small])
            let counters = try await sender.counters()
            #expect(counters.sendQueueOverflows == 2)
            #expect(counters.fragmentedMessagesSent == 3)
            #expect(counters.datagramsSent < 64, "no more of the large message than the kernel took at first")
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
