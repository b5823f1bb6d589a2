#if canImport(Glibc)
import Glibc
#endif
import EventCore

/// Conversions between ``Endpoint`` and the kernel's `sockaddr_in` /
/// `sockaddr_in6`, reading and writing caller-owned memory: nothing is
/// allocated, so they sit on the per-datagram path.
enum SocketAddress {
    /// The bytes reserved per address: a `sockaddr_storage`.
    static let storageSize = MemoryLayout<sockaddr_storage>.size
    /// The alignment address buffers are allocated with.
    static let storageAlignment = MemoryLayout<sockaddr_storage>.alignment

    /// The length of the socket address for one family.
    static func length(isIPv6: Bool) -> socklen_t {
        socklen_t(isIPv6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
    }

    /// Writes `endpoint` as a `sockaddr_in` or `sockaddr_in6` at `pointer`
    /// (at least ``storageSize`` bytes, aligned to ``storageAlignment``) and
    /// returns its length.
    @discardableResult
    static func write(_ endpoint: Endpoint, to pointer: UnsafeMutableRawPointer) -> socklen_t {
        switch endpoint.address {
        case .ipv4(let value):
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = endpoint.port.bigEndian
            address.sin_addr = in_addr(s_addr: value.bigEndian)
            pointer.storeBytes(of: address, as: sockaddr_in.self)
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        case .ipv6(let high, let low):
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = endpoint.port.bigEndian
            withUnsafeMutableBytes(of: &address.sin6_addr) { bytes in
                bytes.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
                bytes.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            pointer.storeBytes(of: address, as: sockaddr_in6.self)
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }

    /// Reads the IPv4 or IPv6 address of `length` bytes at `pointer` (aligned
    /// to ``storageAlignment``), or returns nil for another family or a
    /// length too short for its family.
    static func endpoint(at pointer: UnsafeRawPointer, length: socklen_t) -> Endpoint? {
        let family = pointer.load(as: sa_family_t.self)
        if family == sa_family_t(AF_INET), Int(length) >= MemoryLayout<sockaddr_in>.size {
            let address = pointer.load(as: sockaddr_in.self)
            return Endpoint(
                address: .ipv4(UInt32(bigEndian: address.sin_addr.s_addr)),
                port: UInt16(bigEndian: address.sin_port))
        }
        if family == sa_family_t(AF_INET6), Int(length) >= MemoryLayout<sockaddr_in6>.size {
            let address = pointer.load(as: sockaddr_in6.self)
            let (high, low) = withUnsafeBytes(of: address.sin6_addr) { bytes in
                (
                    UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                    UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                )
            }
            return Endpoint(address: .ipv6(high: high, low: low), port: UInt16(bigEndian: address.sin6_port))
        }
        return nil
    }
}
