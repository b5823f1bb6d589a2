import EventCore
import Synchronization
import UDPTransport
import WireCodec

#if canImport(Glibc)
import Glibc
#endif

// The shared shape of every loopback run, so Chorus, SwiftNIO and C do the
// same work: one sender socket and one receiver socket on 127.0.0.1, each
// served by its own thread; `datagramsPerRun` datagrams of `payloadSize`
// bytes sent as fast as the sender can, `batchSize` per system call where
// the implementation batches. Nothing paces the sender: datagrams the
// receiver cannot keep up with are dropped by the kernel, as UDP does.
//
// The figure reported is datagrams *received* per second, from the start of
// sending to the last receive. With 4 MiB socket buffers the receivers
// usually keep up (nothing is dropped), so it is the end-to-end rate of one
// sending thread and one receiving thread.

/// Datagrams sent per run.
let datagramsPerRun = 200_000
/// Bytes of payload per datagram.
let payloadSize = 64
/// Datagrams per sendmmsg/recvmmsg where the implementation batches.
let batchSize = 64
/// SO_RCVBUF and SO_SNDBUF for every implementation: UDPSocketTransport's
/// default (4 MiB), applied to the NIO channels and the C sockets too.
let socketBufferSize = UDPSocketTransport.Configuration().receiveBufferSize

/// Receive batches read per readable event (UDPSocketTransport's default,
/// NIO's maxMessagesPerRead set to match).
let receiveBatchesPerWakeup = UDPSocketTransport.Configuration().receiveBatchesPerWakeup

/// The bytes every Swift sender sends: a SWIM frame of exactly
/// `payloadSize` bytes (header and CRC32C included), as a node would send.
let loopbackPayload: [UInt8] = {
    var writer = WireWriter()
    do {
        try Frame.encode(protocol: .swim, into: &writer) { body in
            for i in 0..<(payloadSize - FrameHeader.size) { body.writeUInt8(UInt8(truncatingIfNeeded: i)) }
        }
    } catch {
        fatalError("cannot build the loopback payload: \(error)")
    }
    precondition(writer.count == payloadSize)
    return writer.takeBytes()
}()

/// A run ends once the sender is done and nothing has arrived for this
/// many milliseconds.
let quietPeriodMilliseconds = 20
let quietPeriod = Duration.milliseconds(quietPeriodMilliseconds)

/// One run's outcome.
struct BlastResult {
    var sent: Int
    var received: Int
    var elapsedNanoseconds: UInt64

    /// Datagrams received per second.
    var receivedPerSecond: Int {
        elapsedNanoseconds == 0 ? 0 : Int(Double(received) * 1e9 / Double(elapsedNanoseconds))
    }

    /// The share of sent datagrams that arrived, in percent.
    var receivedPercent: Int { sent == 0 ? 0 : received * 100 / sent }
}

/// Counters the receiving thread updates and the benchmark thread reads.
final class BlastCounters: Sendable {
    /// Datagrams received in this run.
    let received = Atomic<Int>(0)
    /// When the last batch was received (monotonic nanoseconds).
    let lastReceiveNanoseconds = Atomic<UInt64>(0)
    /// Datagrams handed to the kernel by the sender.
    let sent = Atomic<Int>(0)
    /// Set by the sender when it has sent them all.
    let senderDone = Atomic<Bool>(false)

    func reset() {
        received.store(0, ordering: .relaxed)
        lastReceiveNanoseconds.store(0, ordering: .relaxed)
        sent.store(0, ordering: .relaxed)
        senderDone.store(false, ordering: .releasing)
    }

    /// Called by a receiver for each batch of `count` datagrams.
    func recordBatch(_ count: Int, at now: Instant) {
        received.add(count, ordering: .relaxed)
        lastReceiveNanoseconds.store(now.nanoseconds, ordering: .relaxed)
    }

    /// Waits (polling every millisecond) until the sender is done and the
    /// receiver has everything or has been quiet for ``quietPeriod``, then
    /// returns the run's outcome measured from `start`.
    func awaitEnd(startedAt start: Instant) -> BlastResult {
        let clock = SystemClock()
        var lastSeen = -1
        var quietSince = clock.now
        while true {
            usleep(1_000)
            let received = received.load(ordering: .relaxed)
            let now = clock.now
            if received != lastSeen {
                lastSeen = received
                quietSince = now
            }
            guard senderDone.load(ordering: .acquiring) else { continue }
            if received >= datagramsPerRun || now - quietSince >= quietPeriod { break }
        }
        let last = lastReceiveNanoseconds.load(ordering: .relaxed)
        return BlastResult(
            sent: sent.load(ordering: .relaxed),
            received: received.load(ordering: .relaxed),
            elapsedNanoseconds: last > start.nanoseconds ? last - start.nanoseconds : 0)
    }
}
