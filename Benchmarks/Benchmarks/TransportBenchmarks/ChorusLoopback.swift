import Chorus
import EventCore
import Synchronization
import UDPTransport

#if canImport(Glibc)
import Glibc
#endif

/// Chorus: two `UDPSocketTransport`s, each on its own `EventLoop` thread,
/// with the batch size and socket buffer sizes the other implementations
/// use (UDPSocketTransport's defaults). The sender queues ``batchSize``
/// messages per loop task (the transport hands them to `sendmmsg` as one
/// batch) and yields to its loop between batches; the receiver counts in
/// its receive handler and publishes once per loop iteration.
///
/// `multiplexed`: the receiver's handler is on a ``ProtocolMultiplexer``'s
/// SWIM channel (the payload is a SWIM frame), as on a machine whose
/// protocols share one socket; otherwise on the transport itself.
final class ChorusLoopback {
    private let senderLoop: EventLoop
    private let receiverLoop: EventLoop
    private let counters = BlastCounters()
    private let sender: LoopBound<UDPSocketTransport>
    /// The receiving transport, or its channel (which keeps the
    /// multiplexer and the transport).
    private let receiver: LoopBound<any Transport>
    private let destination: Endpoint

    init(multiplexed: Bool = false) throws {
        senderLoop = try EventLoop()
        receiverLoop = try EventLoop()
        try senderLoop.start()
        try receiverLoop.start()
        var configuration = UDPSocketTransport.Configuration()
        configuration.batchSize = batchSize
        configuration.receiveBufferSize = socketBufferSize
        configuration.sendBufferSize = socketBufferSize

        let counters = counters
        receiver = try runOnLoop(receiverLoop) { [configuration] loop in
            let transport = try UDPSocketTransport.bind(to: .loopbackV4(), on: loop, configuration: configuration)
            let tally = ReceiveTally()
            let receiving: any Transport =
                multiplexed ? ProtocolMultiplexer(transport: transport).channel(for: .swim) : transport
            receiving.setReceiveHandler { _, _, now in
                tally.count += 1
                tally.last = now
            }
            loop.addIterationEndHandler {
                if tally.count > 0 {
                    counters.recordBatch(tally.count, at: tally.last)
                    tally.count = 0
                }
            }
            return LoopBound(receiving, on: loop)
        }
        sender = try runOnLoop(senderLoop) { [configuration] loop in
            LoopBound(try UDPSocketTransport.bind(to: .loopbackV4(), on: loop, configuration: configuration), on: loop)
        }
        destination = try runOnLoop(receiverLoop) { [receiver] _ in receiver.value.localEndpoint }
    }

    deinit {
        senderLoop.shutdown()
        receiverLoop.shutdown()
    }

    /// Sends ``datagramsPerRun`` datagrams and reports what arrived.
    func blast() -> BlastResult {
        counters.reset()
        let start = senderLoop.now
        let pump = ChorusSendPump(transport: sender, destination: destination, counters: counters)
        senderLoop.execute { pump.run() }
        return counters.awaitEnd(startedAt: start)
    }
}

/// Runs `body` on `loop`'s thread and waits for its result (set-up only:
/// the benchmark thread polls).
func runOnLoop<Result: Sendable>(
    _ loop: EventLoop, _ body: @escaping @Sendable (EventLoop) throws -> Result
) throws -> Result {
    let handoff = Handoff<Result>()
    loop.execute {
        let outcome = Swift.Result { try body(loop) }
        handoff.outcome.withLock { $0 = outcome }
    }
    while true {
        if let outcome = handoff.outcome.withLock({ $0 }) { return try outcome.get() }
        usleep(100)
    }
}

/// Carries a result from a loop to the thread waiting for it.
private final class Handoff<Value: Sendable>: Sendable {
    let outcome = Mutex<Result<Value, any Error>?>(nil)
}

/// What the receive handler counts between two loop iterations. Loop-only.
private final class ReceiveTally {
    var count = 0
    var last = Instant.zero
}

/// Queues ``batchSize`` messages per loop task, then yields to the loop,
/// until all are sent.
private final class ChorusSendPump: @unchecked Sendable {
    // Invariant for @unchecked Sendable: created on the benchmark thread,
    // then used only on the sender's loop (every run() is a task on it), as
    // `transport.value` enforces.
    private let transport: LoopBound<UDPSocketTransport>
    private let destination: Endpoint
    private let counters: BlastCounters
    private var sent = 0

    init(transport: LoopBound<UDPSocketTransport>, destination: Endpoint, counters: BlastCounters) {
        self.transport = transport
        self.destination = destination
        self.counters = counters
    }

    func run() {
        let socket = transport.value
        loopbackPayload.withUnsafeBytes { payload in
            var queued = 0
            while sent < datagramsPerRun && queued < batchSize {
                do {
                    try socket.send(payload, to: destination)
                } catch {
                    fatalError("UDPSocketTransport.send failed: \(error)")
                }
                sent += 1
                queued += 1
            }
        }
        counters.sent.store(sent, ordering: .relaxed)
        if sent >= datagramsPerRun {
            counters.senderDone.store(true, ordering: .releasing)
        } else {
            transport.loop.execute { self.run() }
        }
    }
}
