#if canImport(Glibc)
import Glibc
#endif

extension UDPSocketTransport {
    /// A snapshot of what a transport has done since it was bound; read
    /// with ``UDPSocketTransport/counters``. Every field only grows.
    public struct Counters: Hashable, Sendable {
        /// Messages accepted by ``UDPSocketTransport/send(_:to:)`` (whole or
        /// fragmented, including any later dropped by a full send queue).
        public var messagesSent: UInt64 = 0
        /// Of ``messagesSent``, those split into fragments.
        public var fragmentedMessagesSent: UInt64 = 0
        /// Datagrams the kernel accepted.
        public var datagramsSent: UInt64 = 0
        /// UDP payload bytes the kernel accepted (fragment headers included).
        public var bytesSent: UInt64 = 0
        /// Messages dropped because the send queue was full while the
        /// socket would block (a fragmented message whole: its fragments
        /// still queued are withdrawn).
        public var sendQueueOverflows: UInt64 = 0
        /// Datagrams still queued when the transport closed that the
        /// socket would not take (it would block): dropped with the queue.
        public var datagramsDroppedAtClose: UInt64 = 0
        /// Times `sendmmsg` reported `EAGAIN` (the queue waits for the socket
        /// to become writable; nothing is dropped).
        public var sendWouldBlock: UInt64 = 0
        /// Datagrams that failed in the kernel or the network, by kind.
        public var sendErrors = SendErrorCounts()

        /// Datagrams read from the socket (including truncated ones).
        public var datagramsReceived: UInt64 = 0
        /// UDP payload bytes read from the socket.
        public var bytesReceived: UInt64 = 0
        /// Complete messages received, whole or reassembled, and passed to
        /// the receive handler.
        public var messagesDelivered: UInt64 = 0
        /// Complete messages received while no receive handler was
        /// installed (before the first, or after
        /// ``UDPSocketTransport/removeReceiveHandler()``): dropped.
        public var messagesUnclaimed: UInt64 = 0
        /// Datagrams dropped because they were longer than
        /// ``Configuration/maximumDatagramSize`` (`MSG_TRUNC`).
        public var receiveTruncated: UInt64 = 0
        /// `recvmmsg` failures other than "no more data", and datagrams whose
        /// sender address was not IPv4 or IPv6.
        public var receiveErrors: UInt64 = 0
        /// Fragment reassembly: completed messages and fragments or partial
        /// messages dropped (bad fragments by reason, timeouts, evictions).
        public var reassembly = FragmentReassembler.Counters()

        /// Creates a snapshot with every counter at zero.
        public init() {}
    }

    /// Datagrams the kernel or the network refused, by `errno`. Errors the
    /// network reports later (ICMP, read from the socket's error queue
    /// thanks to `IP_RECVERR`) are counted here too, once each.
    public struct SendErrorCounts: Hashable, Sendable {
        /// `ECONNREFUSED`: nothing listens at the destination port (an ICMP
        /// port-unreachable for an earlier datagram).
        public var connectionRefused: UInt64 = 0
        /// `EHOSTUNREACH`, `ENETUNREACH`, `EHOSTDOWN`, `ENETDOWN`: no route
        /// to the destination.
        public var unreachable: UInt64 = 0
        /// `EMSGSIZE`: the datagram is larger than the path allows.
        public var messageTooLong: UInt64 = 0
        /// `ENOBUFS`: the kernel or the interface queue was out of buffers.
        public var noBufferSpace: UInt64 = 0
        /// Any other `errno`.
        public var other: UInt64 = 0

        /// Creates counts at zero.
        public init() {}

        /// The sum of every kind.
        public var total: UInt64 {
            connectionRefused + unreachable + messageTooLong + noBufferSpace + other
        }

        /// Counts one failure with `errno` `code`.
        mutating func record(_ code: Int32) {
            switch code {
            case ECONNREFUSED: connectionRefused += 1
            case EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENETDOWN: unreachable += 1
            case EMSGSIZE: messageTooLong += 1
            case ENOBUFS: noBufferSpace += 1
            default: other += 1
            }
        }
    }
}
