#if canImport(Glibc)
import Glibc
#endif

/// Reads the reports the kernel queues on a socket with `IP_RECVERR` /
/// `IPV6_RECVERR` set (an ICMP error for an earlier datagram: port
/// unreachable, host unreachable, fragmentation needed) and counts each one
/// by its `errno`.
///
/// The buffers for `recvmsg(MSG_ERRQUEUE)` are allocated once. Confined to
/// the transport's loop.
final class SocketErrorQueue {
    /// The most reports read per call: the rest wait for the next `EPOLLERR`,
    /// which is level-triggered.
    private static let reportsPerDrain = 64
    private static let controlSize = 512
    private static let payloadSize = 64

    private let control: UnsafeMutableRawPointer
    private let payload: UnsafeMutableRawPointer
    private let address: UnsafeMutableRawPointer

    /// Allocates the buffers.
    init() {
        control = .allocate(byteCount: Self.controlSize, alignment: MemoryLayout<cmsghdr>.alignment)
        payload = .allocate(byteCount: Self.payloadSize, alignment: 16)
        address = .allocate(byteCount: SocketAddress.storageSize, alignment: SocketAddress.storageAlignment)
    }

    deinit {
        control.deallocate()
        payload.deallocate()
        address.deallocate()
    }

    /// Reads the queued reports of `socket` and counts each in `errors`;
    /// then clears the socket's pending error, counting it if it was not
    /// already reported through the queue.
    func drain(_ socket: UDPSocket, into errors: inout UDPSocketTransport.SendErrorCounts) {
        var reports = 0
        while reports < Self.reportsPerDrain, let code = readReport(socket.descriptor) {
            if code != 0 { errors.record(code) }
            reports += 1
        }
        if reports == 0 {
            let pending = socket.takePendingError()
            if pending != 0 { errors.record(pending) }
        }
    }

    /// Reads one report and returns its `errno` (0 if it carried none), or
    /// nil when the queue is empty or cannot be read.
    private func readReport(_ descriptor: Int32) -> Int32? {
        var vector = iovec(iov_base: payload, iov_len: Self.payloadSize)
        var header = msghdr()
        header.msg_name = address
        header.msg_namelen = socklen_t(SocketAddress.storageSize)
        header.msg_control = control
        header.msg_controllen = Self.controlSize
        let received = withUnsafeMutablePointer(to: &vector) { vectorPointer -> Int in
            header.msg_iov = vectorPointer
            header.msg_iovlen = 1
            while true {
                let result = recvmsg(descriptor, &header, Int32(MSG_ERRQUEUE) | Int32(MSG_DONTWAIT))
                if result < 0 && errno == EINTR { continue }
                return result
            }
        }
        guard received >= 0 else { return nil }
        return Self.extendedErrorCode(
            UnsafeRawBufferPointer(start: control, count: min(header.msg_controllen, Self.controlSize)))
    }

    /// The `ee_errno` of the first `IP_RECVERR` or `IPV6_RECVERR` control
    /// message in `control` (a `struct sock_extended_err` starts with it), or
    /// 0 if there is none. Every length is checked against the bytes present.
    private static func extendedErrorCode(_ control: UnsafeRawBufferPointer) -> Int32 {
        let headerSize = MemoryLayout<cmsghdr>.size
        let alignment = MemoryLayout<Int>.size
        var offset = 0
        while control.count - offset >= headerSize {
            let message = control.load(fromByteOffset: offset, as: cmsghdr.self)
            let length = message.cmsg_len
            guard length >= headerSize, length <= control.count - offset else { return 0 }
            let isIPv4Error = message.cmsg_level == Int32(IPPROTO_IP) && message.cmsg_type == IP_RECVERR
            let isIPv6Error = message.cmsg_level == Int32(IPPROTO_IPV6) && message.cmsg_type == IPV6_RECVERR
            if (isIPv4Error || isIPv6Error) && length >= headerSize + MemoryLayout<UInt32>.size {
                let code = control.loadUnaligned(fromByteOffset: offset + headerSize, as: UInt32.self)
                return Int32(truncatingIfNeeded: code)
            }
            offset += (length + alignment - 1) / alignment * alignment
        }
        return 0
    }
}
