#if canImport(Glibc)
import Glibc
#endif
import CChorusSystem

/// A fixed array of datagram slots wired for `sendmmsg` and `recvmmsg`.
///
/// Each slot has a payload buffer of ``slotSize`` bytes, an `iovec`
/// pointing at it, a `sockaddr_storage`, and a `struct mmsghdr` pointing at
/// both; a run of consecutive slots is passed to one system call. Everything
/// is allocated once, at creation, and reused for every call, so the data
/// path allocates nothing. Confined to the transport's loop.
final class DatagramVector {
    /// The number of slots.
    let capacity: Int
    /// The payload bytes each slot holds.
    let slotSize: Int
    private let payloads: UnsafeMutableRawPointer
    private let iovecs: UnsafeMutablePointer<iovec>
    private let addresses: UnsafeMutableRawPointer
    private let headers: UnsafeMutableRawPointer
    private let headerStride: Int

    /// Allocates `capacity` slots of `slotSize` bytes whose headers offer
    /// `addressLength` bytes of address (the buffer's full size for receiving;
    /// the family's address length for sending).
    init(capacity: Int, slotSize: Int, addressLength: socklen_t) {
        self.capacity = capacity
        self.slotSize = slotSize
        headerStride = CChorus_mmsghdr_size()
        payloads = .allocate(byteCount: capacity * slotSize, alignment: 16)
        iovecs = .allocate(capacity: capacity)
        addresses = .allocate(
            byteCount: capacity * SocketAddress.storageSize, alignment: SocketAddress.storageAlignment)
        addresses.initializeMemory(as: UInt8.self, repeating: 0, count: capacity * SocketAddress.storageSize)
        headers = .allocate(byteCount: capacity * headerStride, alignment: 16)
        for slot in 0..<capacity {
            (iovecs + slot).initialize(to: iovec(iov_base: payloads + slot * slotSize, iov_len: slotSize))
            CChorus_mmsghdr_set(headers, UInt32(slot), iovecs + slot, address(slot), addressLength)
        }
    }

    deinit {
        payloads.deallocate()
        iovecs.deinitialize(count: capacity)
        iovecs.deallocate()
        addresses.deallocate()
        headers.deallocate()
    }

    /// The payload buffer of `slot` (``slotSize`` bytes).
    @inline(__always)
    func payload(_ slot: Int) -> UnsafeMutableRawPointer {
        payloads + slot * slotSize
    }

    /// The address buffer of `slot` (a `sockaddr_storage`).
    @inline(__always)
    func address(_ slot: Int) -> UnsafeMutableRawPointer {
        addresses + slot * SocketAddress.storageSize
    }

    /// The headers from `slot` on, for a system call on a run of slots.
    @inline(__always)
    func headers(from slot: Int) -> UnsafeMutableRawPointer {
        headers + slot * headerStride
    }

    /// The payload length `slot` sends.
    @inline(__always)
    func length(_ slot: Int) -> Int {
        iovecs[slot].iov_len
    }

    /// Sets the payload length `slot` sends.
    @inline(__always)
    func setLength(_ length: Int, of slot: Int) {
        iovecs[slot].iov_len = length
    }

    /// The byte count `recvmmsg` reported for `slot`.
    @inline(__always)
    func receivedLength(_ slot: Int) -> Int {
        Int(CChorus_mmsghdr_len(headers, UInt32(slot)))
    }

    /// The `msg_flags` `recvmmsg` reported for `slot` (`MSG_TRUNC`, ...).
    @inline(__always)
    func receivedFlags(_ slot: Int) -> Int32 {
        CChorus_mmsghdr_flags(headers, UInt32(slot))
    }

    /// The sender address length `recvmmsg` reported for `slot`.
    @inline(__always)
    func receivedAddressLength(_ slot: Int) -> socklen_t {
        CChorus_mmsghdr_namelen(headers, UInt32(slot))
    }

    /// Gives `slot` its whole address buffer again before the next `recvmmsg`.
    @inline(__always)
    func resetAddressLength(_ slot: Int) {
        CChorus_mmsghdr_set_namelen(headers, UInt32(slot), socklen_t(SocketAddress.storageSize))
    }
}
