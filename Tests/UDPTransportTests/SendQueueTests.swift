#if canImport(Glibc)
import Glibc
#endif
import EventCore
import Testing
@testable import UDPTransport

/// The send queue against a socket that really blocks: a datagram socket
/// pair (`AF_UNIX`) with a small send buffer, whose sender gets `EAGAIN` once
/// a few datagrams wait unread (UDP on loopback never blocks the sender).
@Suite("SendQueue")
struct SendQueueTests {
    @Test("when the socket would block, the rest stays queued, in order, and later flushes send it")
    func keepsRemainderWhenBlocked() throws {
        let pair = try BlockingSocketPair()
        defer { pair.close() }
        // Connected sockets: no destination address (length 0).
        var queue = SendQueue(capacity: 128, slotSize: 8, addressLength: 0)
        var counters = UDPSocketTransport.Counters()
        let total = 1_000
        var queued = 0
        var received: [Int] = []
        var blockedFlushes = 0
        var rounds = 0
        while received.count < total {
            rounds += 1
            try #require(rounds < 10_000, "no progress")
            while queued < total && !queue.isFull {
                queue.vector.payload(queue.tail).storeBytes(of: UInt16(queued), as: UInt16.self)
                queue.append(length: 2)
                queued += 1
            }
            if !queue.flush(descriptor: pair.sender, counters: &counters) {
                blockedFlushes += 1
                #expect(queue.isBlocked)
                #expect(queue.count > 0)
            } else {
                #expect(!queue.isBlocked)
                #expect(queue.count == 0)
            }
            var datagram: UInt16 = 0
            while recv(pair.receiver, &datagram, 2, Int32(MSG_DONTWAIT)) == 2 {
                received.append(Int(datagram))
            }
        }
        #expect(received == Array(0..<total))
        #expect(blockedFlushes > 0)
        #expect(counters.sendWouldBlock == UInt64(blockedFlushes))
        #expect(counters.datagramsSent == UInt64(total))
        #expect(counters.bytesSent == UInt64(2 * total))
        #expect(counters.sendErrors.total == 0)
    }

    @Test("a datagram the kernel refuses is dropped and counted by errno; the rest are sent")
    func refusedDatagramIsDropped() throws {
        let pair = try BlockingSocketPair()
        defer { pair.close() }
        var queue = SendQueue(capacity: 4, slotSize: 1 << 20, addressLength: 0)
        for length in [1, 1 << 20, 1] {
            queue.append(length: length)
        }
        var counters = UDPSocketTransport.Counters()
        #expect(queue.flush(descriptor: pair.sender, counters: &counters))
        #expect(counters.datagramsSent == 2)
        #expect(counters.sendErrors.messageTooLong == 1)
    }
}

extension SendQueueTests {
    /// A `sendmmsg` that fails with `errnos` in turn, then sends whatever
    /// it is given; counts its calls.
    final class ScriptedSend {
        private var errnos: [Int32]
        private(set) var calls = 0
        init(_ errnos: [Int32]) { self.errnos = errnos }

        func call(_ count: UInt32) -> Int32 {
            calls += 1
            guard !errnos.isEmpty else { return Int32(count) }
            errno = errnos.removeFirst()
            return -1
        }
    }

    /// A port unreachable for an earlier datagram fails the call that
    /// follows it; a second one arriving before the retry used to cost the
    /// datagram at the head, to whomever it was going.
    @Test("ECONNREFUSED twice in a row costs no datagram (it is never the datagram's own); another error twice drops one")
    func refusalsDoNotDrop() {
        var queue = SendQueue(capacity: 4, slotSize: 8, addressLength: 0)
        for _ in 0..<2 { queue.append(length: 1) }
        var counters = UDPSocketTransport.Counters()
        let refusals = ScriptedSend([ECONNREFUSED, ECONNREFUSED, ECONNREFUSED])
        #expect(queue.flush(counters: &counters) { _, count in refusals.call(count) })
        #expect(counters.datagramsSent == 2 && counters.sendErrors.total == 0)

        for _ in 0..<2 { queue.append(length: 1) }
        let refused = ScriptedSend([EMSGSIZE, EMSGSIZE])
        #expect(queue.flush(counters: &counters) { _, count in refused.call(count) })
        #expect(counters.datagramsSent == 3 && counters.sendErrors.messageTooLong == 1)
    }

    @Test("a flood of ECONNREFUSED cannot hold the flush: past the limit the retry rule applies")
    func endlessRefusals() {
        var queue = SendQueue(capacity: 4, slotSize: 8, addressLength: 0)
        for _ in 0..<2 { queue.append(length: 1) }
        var counters = UDPSocketTransport.Counters()
        let refusals = ScriptedSend(Array(repeating: ECONNREFUSED, count: 1_000))
        #expect(queue.flush(counters: &counters) { _, count in refusals.call(count) })
        #expect(counters.datagramsSent == 0 && counters.sendErrors.connectionRefused == 2)
        // The free retries are spent once per flush, until a datagram goes:
        // then one retry and a drop per datagram.
        #expect(refusals.calls == SendQueue.maximumRefusalRetries + 2 + 2)
    }
}

/// Connected nonblocking `AF_UNIX` datagram sockets whose sender has a
/// 4 KiB send buffer, so it gets `EAGAIN` once a few datagrams wait unread.
private struct BlockingSocketPair {
    let sender: Int32
    let receiver: Int32

    init() throws {
        var pair: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &pair) == 0)
        sender = pair[0]
        receiver = pair[1]
        var size: Int32 = 4_096
        guard setsockopt(sender, SOL_SOCKET, SO_SNDBUF, &size, 4) == 0 else {
            close()
            throw SystemError(call: "setsockopt(SO_SNDBUF)", errno: errno)
        }
    }

    func close() {
        _ = Glibc.close(sender)
        _ = Glibc.close(receiver)
    }
}
