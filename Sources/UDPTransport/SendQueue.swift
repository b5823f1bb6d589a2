#if canImport(Glibc)
import Glibc
#endif
import CChorusSystem

/// The datagrams waiting to be handed to the kernel: a bounded ring of
/// ``DatagramVector`` slots, flushed with `sendmmsg` in runs of consecutive
/// slots.
///
/// A datagram is written straight into the slot at ``tail`` (payload and
/// destination address) and committed with ``append(length:)``; nothing is
/// allocated. When the kernel answers `EAGAIN` the queue keeps what is left
/// and reports itself ``isBlocked`` until a later flush drains it.
struct SendQueue {
    /// The most datagrams one `sendmmsg` call takes (`UIO_MAXIOV`).
    private static let maximumRun = 1024
    /// The most `ECONNREFUSED` failures a flush retries at no cost until
    /// a datagram goes (see ``flush(descriptor:counters:)``).
    static let maximumRefusalRetries = 16

    /// The slots.
    let vector: DatagramVector
    /// The slot of the oldest queued datagram.
    private var head = 0
    /// The number of datagrams queued.
    private(set) var count = 0
    /// Whether the last flush stopped on `EAGAIN` with datagrams left.
    private(set) var isBlocked = false

    /// Creates an empty queue of `capacity` datagrams of up to `slotSize`
    /// bytes, sent to addresses of `addressLength` bytes.
    init(capacity: Int, slotSize: Int, addressLength: socklen_t) {
        vector = DatagramVector(capacity: capacity, slotSize: slotSize, addressLength: addressLength)
    }

    /// Whether no slot is free.
    var isFull: Bool { count == vector.capacity }
    /// How many slots are free.
    var freeSlots: Int { vector.capacity - count }

    /// The slot the next datagram is written to; valid while not ``isFull``.
    var tail: Int {
        let slot = head + count
        return slot < vector.capacity ? slot : slot - vector.capacity
    }

    /// Queues the datagram written at ``tail``: `length` payload bytes, to
    /// the address written in the slot. Call only when not ``isFull``.
    mutating func append(length: Int) {
        vector.setLength(length, of: tail)
        count += 1
    }

    /// Withdraws the `removed` newest datagrams, still queued.
    mutating func removeLast(_ removed: Int) {
        precondition(removed <= count, "cannot withdraw more datagrams than are queued")
        count -= removed
    }

    /// Hands queued datagrams to the kernel until the queue is empty or the
    /// socket would block, counting what was sent and what failed.
    ///
    /// A failed call is retried once before its datagram is dropped: with
    /// `IP_RECVERR` on, an ICMP error for an *earlier* datagram (port or
    /// host unreachable, fragmentation needed, administratively
    /// prohibited: `ECONNREFUSED`, `EHOSTUNREACH`, `EMSGSIZE`, `EACCES`,
    /// ...) is left pending on the socket and fails the next call without
    /// sending anything; that error is counted from the socket's error
    /// queue, not here. A datagram that fails twice in a row is the one the
    /// kernel refuses (too large for the route, no buffer space): dropped
    /// and counted once. `ECONNREFUSED` is never a datagram's own on an
    /// unconnected socket (only an ICMP port unreachable raises it), so it
    /// does not spend the retry: a second port unreachable arriving
    /// between the call and its retry (a peer gone, or forged ones) would
    /// otherwise cost a datagram to a live peer. Up to
    /// ``maximumRefusalRetries`` until a datagram goes, so that a flood of
    /// them cannot hold the loop.
    ///
    /// - Returns: true if the queue is empty, false if the socket would block.
    mutating func flush(
        descriptor: Int32, counters: inout UDPSocketTransport.Counters
    ) -> Bool {
        flush(counters: &counters) { headers, count in CChorus_sendmmsg(descriptor, headers, count, 0) }
    }

    /// ``flush(descriptor:counters:)`` with `sendmmsg` given (tests hand
    /// it failures the kernel gives only by timing).
    mutating func flush(
        counters: inout UDPSocketTransport.Counters,
        sendmmsg: (_ headers: UnsafeMutableRawPointer, _ count: UInt32) -> Int32
    ) -> Bool {
        var retried = false
        var refusals = 0
        while count > 0 {
            let run = min(count, vector.capacity - head, Self.maximumRun)
            let sent = Int(sendmmsg(vector.headers(from: head), UInt32(run)))
            if sent > 0 {
                var bytes = 0
                for slot in head..<(head + sent) { bytes += vector.length(slot) }
                counters.datagramsSent += UInt64(sent)
                counters.bytesSent += UInt64(bytes)
                removeFirst(sent)
                retried = false
                refusals = 0
                continue
            }
            // Nothing sent and no error (not expected): wait for writability.
            let code = sent == 0 ? EAGAIN : errno
            switch code {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                counters.sendWouldBlock += 1
                isBlocked = true
                return false
            case ECONNREFUSED where refusals < Self.maximumRefusalRetries:
                refusals += 1
            default:
                if retried {
                    dropFirst(code, counters: &counters)
                    retried = false
                } else {
                    retried = true
                }
            }
        }
        isBlocked = false
        return true
    }

    /// Drops the oldest datagram, which the kernel refused with `code`.
    private mutating func dropFirst(_ code: Int32, counters: inout UDPSocketTransport.Counters) {
        counters.sendErrors.record(code)
        removeFirst(1)
    }

    private mutating func removeFirst(_ removed: Int) {
        head += removed
        if head >= vector.capacity { head -= vector.capacity }
        count -= removed
    }
}
