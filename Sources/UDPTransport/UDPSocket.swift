#if canImport(Glibc)
import Glibc
#endif
import EventCore

/// A nonblocking, close-on-exec UDP socket descriptor and the few system
/// calls made on it outside the data path, as thin throwing wrappers.
///
/// A value type: it does not own the descriptor's lifetime; the transport
/// closes it exactly once.
struct UDPSocket {
    /// The file descriptor.
    let descriptor: Int32
    /// Whether it is an `AF_INET6` socket (otherwise `AF_INET`).
    let isIPv6: Bool

    /// Creates a socket of `endpoint`'s family, sets its options and binds
    /// it to `endpoint`.
    ///
    /// Options: `IPV6_V6ONLY` on IPv6 sockets (an IPv6 transport talks to
    /// IPv6 peers only, like an IPv4 one to IPv4 peers); `IP_RECVERR` /
    /// `IPV6_RECVERR`, so ICMP errors for earlier sends (port unreachable:
    /// `ECONNREFUSED`) are queued and can be counted; the receive and send
    /// buffer sizes, forced past `net.core.rmem_max`/`wmem_max` when the
    /// process is allowed to (`CAP_NET_ADMIN`), else as large as the limits
    /// allow.
    ///
    /// - Throws: ``SystemError`` from `socket`, `setsockopt` or `bind`; the
    ///   descriptor is closed before the throw.
    static func open(
        boundTo endpoint: Endpoint, receiveBufferSize: Int, sendBufferSize: Int
    ) throws(SystemError) -> UDPSocket {
        let isIPv6 = endpoint.isIPv6
        let family = isIPv6 ? AF_INET6 : AF_INET
        let descriptor = Glibc.socket(
            family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw SystemError(call: "socket", errno: errno) }
        let socket = UDPSocket(descriptor: descriptor, isIPv6: isIPv6)
        do throws(SystemError) {
            if isIPv6 {
                try socket.setOption(Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1, name: "setsockopt(IPV6_V6ONLY)")
                try socket.setOption(Int32(IPPROTO_IPV6), IPV6_RECVERR, 1, name: "setsockopt(IPV6_RECVERR)")
            } else {
                try socket.setOption(Int32(IPPROTO_IP), IP_RECVERR, 1, name: "setsockopt(IP_RECVERR)")
            }
            try socket.setBufferSize(receiveBufferSize, option: SO_RCVBUF, forced: SO_RCVBUFFORCE, name: "SO_RCVBUF")
            try socket.setBufferSize(sendBufferSize, option: SO_SNDBUF, forced: SO_SNDBUFFORCE, name: "SO_SNDBUF")
            var storage = sockaddr_storage()
            let result = withUnsafeMutableBytes(of: &storage) { raw -> Int32 in
                // A sockaddr_storage is aligned for every address type.
                guard let base = raw.baseAddress else { return -1 }
                let length = SocketAddress.write(endpoint, to: base)
                return Glibc.bind(descriptor, base.assumingMemoryBound(to: sockaddr.self), length)
            }
            guard result == 0 else { throw SystemError(call: "bind(\(endpoint))", errno: errno) }
        } catch {
            Glibc.close(descriptor)
            throw error
        }
        return socket
    }

    /// The address the socket is bound to, with the port the kernel chose.
    ///
    /// - Throws: ``SystemError`` from `getsockname`, or with `EAFNOSUPPORT`
    ///   if the kernel reports an address that is neither IPv4 nor IPv6.
    func localEndpoint() throws(SystemError) -> Endpoint {
        var storage = sockaddr_storage()
        var length = socklen_t(SocketAddress.storageSize)
        let endpoint = withUnsafeMutableBytes(of: &storage) { raw -> Endpoint? in
            guard let base = raw.baseAddress,
                getsockname(descriptor, base.assumingMemoryBound(to: sockaddr.self), &length) == 0
            else { return nil }
            return SocketAddress.endpoint(at: base, length: length)
        }
        guard let endpoint else {
            let code = errno
            throw SystemError(call: "getsockname", errno: code == 0 ? EAFNOSUPPORT : code)
        }
        return endpoint
    }

    /// Reads and clears the socket's pending error (`SO_ERROR`); 0 if none.
    func takePendingError() -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &value, &length) == 0 else { return 0 }
        return value
    }

    /// Closes the descriptor.
    func close() {
        _ = Glibc.close(descriptor)
    }

    private func setOption(_ level: Int32, _ option: Int32, _ value: Int32, name: String) throws(SystemError) {
        var value = value
        guard setsockopt(descriptor, level, option, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw SystemError(call: name, errno: errno)
        }
    }

    /// Sets a buffer size with the `*FORCE` option when permitted, else with
    /// the ordinary one (which the kernel caps at its sysctl limit).
    private func setBufferSize(_ bytes: Int, option: Int32, forced: Int32, name: String) throws(SystemError) {
        var value = Int32(clamping: bytes)
        let length = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(descriptor, SOL_SOCKET, forced, &value, length) == 0 { return }
        try setOption(SOL_SOCKET, option, value, name: "setsockopt(\(name))")
    }
}
