import EventCore
import NIOCore
import NIOPosix

/// The SwiftNIO peer: two `DatagramChannel`s from `DatagramBootstrap` on a
/// two-thread `MultiThreadedEventLoopGroup` (sender and receiver each on its
/// own loop), configured like UDPSocketTransport: the same socket buffer
/// sizes, vector reads (recvmmsg) of ``batchSize`` messages, up to
/// ``receiveBatchesPerWakeup`` reads per readable event, and vector writes
/// (sendmmsg), which NIO uses when several writes are flushed together.
final class NIOLoopback {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    private let counters = BlastCounters()
    private let receiver: Channel
    private let sender: Channel
    private let receiverAddress: SocketAddress

    init() throws {
        let counters = counters
        receiver = try DatagramBootstrap(group: group.next())
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(socketBufferSize))
            .channelOption(.datagramVectorReadMessageCount, value: batchSize)
            .channelOption(.maxMessagesPerRead, value: UInt(receiveBatchesPerWakeup))
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 2048))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(CountingHandler(counters: counters))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .wait()
        sender = try DatagramBootstrap(group: group.next())
            .channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(socketBufferSize))
            .bind(host: "127.0.0.1", port: 0)
            .wait()
        guard let address = receiver.localAddress else {
            throw ChannelError.unknownLocalAddress
        }
        receiverAddress = address
    }

    deinit {
        try? sender.close().wait()
        try? receiver.close().wait()
        try? group.syncShutdownGracefully()
    }

    /// Sends ``datagramsPerRun`` datagrams and reports what arrived.
    func blast() -> BlastResult {
        counters.reset()
        let start = SystemClock().now
        let pump = SendPump(
            channel: sender, destination: receiverAddress, counters: counters,
            payload: ByteBuffer(bytes: loopbackPayload))
        sender.eventLoop.execute { pump.run() }
        return counters.awaitEnd(startedAt: start)
    }
}

/// Counts received datagrams; publishes the count and time per read batch.
private final class CountingHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let counters: BlastCounters
    private let clock = SystemClock()
    private var pending = 0

    init(counters: BlastCounters) {
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending += 1
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        counters.recordBatch(pending, at: clock.now)
        pending = 0
    }
}

/// Writes ``batchSize`` envelopes, flushes them as one vector write, and
/// yields to the loop between batches; waits for writability when NIO's
/// pending-write buffer is full.
private final class SendPump: @unchecked Sendable {
    // Invariant for @unchecked Sendable: created on the benchmark thread,
    // then used only on `channel.eventLoop` (run() and the writability
    // callback run there).
    private let channel: Channel
    private let envelope: AddressedEnvelope<ByteBuffer>
    private let counters: BlastCounters
    private var sent = 0

    init(channel: Channel, destination: SocketAddress, counters: BlastCounters, payload: ByteBuffer) {
        self.channel = channel
        self.envelope = AddressedEnvelope(remoteAddress: destination, data: payload)
        self.counters = counters
    }

    func run() {
        var written = 0
        while sent < datagramsPerRun && written < batchSize && channel.isWritable {
            channel.write(envelope, promise: nil)
            sent += 1
            written += 1
        }
        if written > 0 { channel.flush() }
        counters.sent.store(sent, ordering: .relaxed)
        if sent >= datagramsPerRun {
            counters.senderDone.store(true, ordering: .releasing)
        } else if written == 0 {
            // Not writable: the kernel's send buffer is full. Retry soon.
            channel.eventLoop.scheduleTask(in: .microseconds(50)) { self.run() }
        } else {
            channel.eventLoop.execute { self.run() }
        }
    }
}
