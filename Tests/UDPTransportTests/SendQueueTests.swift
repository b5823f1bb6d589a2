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
