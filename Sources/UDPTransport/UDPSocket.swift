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
    ///
    /// With a `multicastGroup` (an IPv4 or IPv6 multicast address of
    /// `endpoint`'s family), the socket instead binds the wildcard address
    /// at `endpoint`'s port with `SO_REUSEADDR` and `SO_REUSEPORT` (so
    /// several processes on one host can listen), joins the group on the
    /// default interface (hearing no other group joined on the host at the
    /// port), and keeps multicast loopback on with a TTL (hop limit) of 1:
    /// link-local discovery.
    ///
    /// A socket bound to a specific address sends multicast through that
    /// address's interface (`IP_MULTICAST_IF` / `IPV6_MULTICAST_IF`), so a
    /// member bound to 127.0.0.1 announces itself on loopback only; one
    /// bound to the wildcard address follows the routing table.
    static func open(
        boundTo endpoint: Endpoint, receiveBufferSize: Int, sendBufferSize: Int,
        multicastGroup: Endpoint.Address? = nil, multicastInterface: Endpoint.Address? = nil
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
            var local = endpoint
            if multicastGroup != nil {
                try socket.setOption(SOL_SOCKET, SO_REUSEADDR, 1, name: "setsockopt(SO_REUSEADDR)")
                try socket.setOption(SOL_SOCKET, SO_REUSEPORT, 1, name: "setsockopt(SO_REUSEPORT)")
                local = Endpoint(address: isIPv6 ? .ipv6(high: 0, low: 0) : .ipv4(0), port: endpoint.port)
            }
            var storage = sockaddr_storage()
            let result = withUnsafeMutableBytes(of: &storage) { raw -> Int32 in
                // A sockaddr_storage is aligned for every address type.
                guard let base = raw.baseAddress else { return -1 }
                let length = SocketAddress.write(local, to: base)
                return Glibc.bind(descriptor, base.assumingMemoryBound(to: sockaddr.self), length)
            }
            guard result == 0 else { throw SystemError(call: "bind(\(local))", errno: errno) }
            if let multicastGroup {
                try socket.join(multicastGroup, interface: multicastInterface)
            } else if !endpoint.isWildcard {
                // Best effort: a socket that cannot pick its multicast
                // interface still serves unicast.
                try? socket.sendMulticast(through: endpoint.address)
            }
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

    /// Joins the multicast group `group` on the interface that holds
    /// `interface` (nil: the default one), with loopback on and a TTL (hop
    /// limit) of 1, and hears that group only: `IP_MULTICAST_ALL` (and
    /// `IPV6_MULTICAST_ALL`) off, or the socket, bound to the wildcard
    /// address, would get every group any socket on the host joined at its
    /// port.
    ///
    /// - Throws: ``SystemError`` with `EINVAL` if `group` is not a multicast
    ///   address of the socket's family, `ENODEV` if no interface holds
    ///   `interface`, or from `setsockopt`.
    private func join(_ group: Endpoint.Address, interface: Endpoint.Address?) throws(SystemError) {
        switch group {
        case .ipv4(let value) where !isIPv6 && value >> 28 == 0xE:
            var request = ip_mreq()
            request.imr_multiaddr = in_addr(s_addr: value.bigEndian)
            if case .ipv4(let local)? = interface { request.imr_interface = in_addr(s_addr: local.bigEndian) }
            guard setsockopt(descriptor, Int32(IPPROTO_IP), IP_ADD_MEMBERSHIP, &request,
                             socklen_t(MemoryLayout<ip_mreq>.size)) == 0
            else { throw SystemError(call: "setsockopt(IP_ADD_MEMBERSHIP)", errno: errno) }
            try setOption(Int32(IPPROTO_IP), IP_MULTICAST_ALL, 0, name: "setsockopt(IP_MULTICAST_ALL)")
            try setOption(Int32(IPPROTO_IP), IP_MULTICAST_LOOP, 1, name: "setsockopt(IP_MULTICAST_LOOP)")
            try setOption(Int32(IPPROTO_IP), IP_MULTICAST_TTL, 1, name: "setsockopt(IP_MULTICAST_TTL)")
        case .ipv6(let high, let low) where isIPv6 && high >> 56 == 0xFF:
            var request = ipv6_mreq()
            withUnsafeMutableBytes(of: &request.ipv6mr_multiaddr) { bytes in
                bytes.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
                bytes.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            if let interface {
                guard let index = Self.interfaceIndex(holding: interface) else {
                    throw SystemError(call: "find the interface of \(interface)", errno: ENODEV)
                }
                request.ipv6mr_interface = index
            }
            guard setsockopt(descriptor, Int32(IPPROTO_IPV6), IPV6_JOIN_GROUP, &request,
                             socklen_t(MemoryLayout<ipv6_mreq>.size)) == 0
            else { throw SystemError(call: "setsockopt(IPV6_JOIN_GROUP)", errno: errno) }
            // Linux 4.20 and later; an older kernel keeps its default.
            try? setOption(Int32(IPPROTO_IPV6), IPV6_MULTICAST_ALL, 0, name: "setsockopt(IPV6_MULTICAST_ALL)")
            try setOption(Int32(IPPROTO_IPV6), IPV6_MULTICAST_LOOP, 1, name: "setsockopt(IPV6_MULTICAST_LOOP)")
            try setOption(Int32(IPPROTO_IPV6), IPV6_MULTICAST_HOPS, 1, name: "setsockopt(IPV6_MULTICAST_HOPS)")
        default:
            throw SystemError(call: "join multicast group \(group) (not a multicast address of the socket's family)",
                              errno: EINVAL)
        }
    }

    /// Sends multicast through the interface that holds `local` (the
    /// socket's bound address); does nothing if no interface holds it.
    private func sendMulticast(through local: Endpoint.Address) throws(SystemError) {
        switch local {
        case .ipv4(let value):
            var address = in_addr(s_addr: value.bigEndian)
            guard setsockopt(descriptor, Int32(IPPROTO_IP), IP_MULTICAST_IF, &address,
                             socklen_t(MemoryLayout<in_addr>.size)) == 0
            else { throw SystemError(call: "setsockopt(IP_MULTICAST_IF)", errno: errno) }
        case .ipv6:
            guard let index = Self.interfaceIndex(holding: local) else { return }
            try setOption(Int32(IPPROTO_IPV6), IPV6_MULTICAST_IF, Int32(bitPattern: index),
                          name: "setsockopt(IPV6_MULTICAST_IF)")
        }
    }

    /// The index of the network interface that holds `address`, if any.
    static func interfaceIndex(holding address: Endpoint.Address) -> UInt32? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        var entry: UnsafeMutablePointer<ifaddrs>? = first
        while let current = entry {
            if let raw = current.pointee.ifa_addr,
               let found = SocketAddress.endpoint(at: UnsafeRawPointer(raw), length: socklen_t(SocketAddress.storageSize)),
               found.address == address, let name = current.pointee.ifa_name {
                let index = if_nametoindex(name)
                return index == 0 ? nil : index
            }
            entry = current.pointee.ifa_next
        }
        return nil
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
