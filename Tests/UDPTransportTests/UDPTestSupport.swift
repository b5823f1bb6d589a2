#if canImport(Glibc)
import Glibc
#endif
import EventCore
import TestSupport
import Synchronization
import Testing
@testable import UDPTransport

extension LoopBound {
    /// Runs `body` with the value on its loop and returns its result.
    func run<Result: Sendable>(_ body: @escaping @Sendable (Value) throws -> Result) async throws -> Result {
        try await loop.submit { try body(self.value) }
    }
}

/// Messages a transport received, gathered from its loop thread.
final class Inbox: Sendable {
    struct Message: Sendable, Equatable {
        var bytes: [UInt8]
        var sender: Endpoint
    }

    private let messages = Mutex<[Message]>([])

    var count: Int { messages.withLock { $0.count } }
    var all: [Message] { messages.withLock { $0 } }

    func append(_ bytes: UnsafeRawBufferPointer, from sender: Endpoint) {
        let message = Message(bytes: Array(bytes), sender: sender)
        messages.withLock { $0.append(message) }
    }
}

/// A bound transport and what it received.
struct Peer: Sendable {
    let transport: LoopBound<UDPSocketTransport>
    let inbox: Inbox
    let endpoint: Endpoint

    /// Binds a transport on `loop` that records every message in its inbox.
    static func bind(
        _ endpoint: Endpoint = .loopbackV4(), on loop: EventLoop,
        configuration: UDPSocketTransport.Configuration = .init()
    ) async throws -> Peer {
        let inbox = Inbox()
        let transport = try await loop.submit {
            let transport = try UDPSocketTransport.bind(to: endpoint, on: loop, configuration: configuration)
            transport.setReceiveHandler { bytes, sender, _ in inbox.append(bytes, from: sender) }
            return LoopBound(transport, on: loop)
        }
        let local = try await transport.run { $0.localEndpoint }
        return Peer(transport: transport, inbox: inbox, endpoint: local)
    }

    /// Sends `bytes` to `destination` from this peer's loop.
    func send(_ bytes: [UInt8], to destination: Endpoint) async throws {
        try await transport.run { try $0.send(bytes, to: destination) }
    }

    /// A snapshot of the transport's counters.
    func counters() async throws -> UDPSocketTransport.Counters {
        try await transport.run { $0.counters }
    }
}

/// Thrown when a condition awaited by ``waitUntil(_:timeout:_:)`` did not
/// become true in time.
struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Polls `condition` every 2 ms until it holds; throws ``TimedOut``
/// (failing the test) once `timeout` has passed, counted in polls
/// (``CountedPolling``), so a task starved by the other tests still gets
/// its whole window. The sleep between polls is not a correctness
/// condition.
func waitUntil(
    _ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool
) async throws {
    let held = try await CountedPolling.first(every: .milliseconds(2), within: timeout) {
        try await condition() ? true : nil
    }
    guard held != nil else { throw TimedOut(what: what) }
}

/// Runs `body` with `count` started loops, shutting them down afterwards.
func withLoops<Result>(
    _ count: Int, _ body: ([EventLoop]) async throws -> Result
) async throws -> Result {
    let loops = try (0..<count).map { _ in try EventLoop() }
    for loop in loops { try loop.start() }
    defer { for loop in loops { loop.shutdown() } }
    return try await body(loops)
}

/// `count` bytes from EventCore's generator seeded with `seed`.
func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var random = SeededRandomGenerator(seed: seed)
    return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &random) }
}

/// The UDP sockets listed in `path` (`/proc/net/udp` or `/proc/net/udp6`):
/// each one's local port (hexadecimal, as listed) and inode.
private func udpSockets(in path: String) -> [(port: Substring, inode: String)] {
    readText(path).split(separator: "\n").dropFirst().compactMap { line in
        let fields = line.split(separator: " ")
        guard fields.count > 9, let colon = fields[1].lastIndex(of: ":") else { return nil }
        return (fields[1][fields[1].index(after: colon)...], String(fields[9]))
    }
}

/// The inode of the UDP socket bound to `endpoint`'s port, read from
/// `/proc/net/udp` or `/proc/net/udp6`, or nil if no socket has that port.
func socketInode(boundTo endpoint: Endpoint) -> String? {
    let wanted = String(endpoint.port, radix: 16, uppercase: true)
    return udpSockets(in: endpoint.isIPv6 ? "/proc/net/udp6" : "/proc/net/udp")
        .first { $0.port.drop(while: { $0 == "0" }) == wanted[...] }?.inode
}

/// Whether a UDP socket with inode `inode` is still open (listed in
/// `/proc/net/udp` or `/proc/net/udp6`). Asked by inode, not port: once a
/// socket closes, a test running beside may bind its port at once.
func udpSocketExists(inode: String) -> Bool {
    ["/proc/net/udp", "/proc/net/udp6"].contains { path in udpSockets(in: path).contains { $0.inode == inode } }
}

/// The number of this process's descriptors that refer to socket `inode`.
func descriptorCount(forSocketInode inode: String) -> Int {
    let target = "socket:[\(inode)]"
    guard let directory = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(directory) }
    var count = 0
    var link = [CChar](repeating: 0, count: 256)
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let length = readlink("/proc/self/fd/\(name)", &link, link.count - 1)
        guard length > 0 else { continue }
        let text = String(decoding: link[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text == target { count += 1 }
    }
    return count
}

/// The whole text of a (small) file, or "" if it cannot be read.
private func readText(_ path: String) -> String {
    guard let file = fopen(path, "r") else { return "" }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let read = fread(&buffer, 1, buffer.count, file)
        if read <= 0 { break }
        bytes += buffer[0..<read]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Sends `bytes` as one datagram from a throwaway socket, bypassing any
/// transport: how a test plays a hostile peer.
func sendRaw(_ bytes: [UInt8], to destination: Endpoint) throws {
    let descriptor = socket(destination.isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard descriptor >= 0 else { throw SystemError(call: "socket", errno: errno) }
    defer { close(descriptor) }
    var storage = sockaddr_storage()
    let sent = withUnsafeMutableBytes(of: &storage) { raw -> Int in
        guard let address = raw.baseAddress else { return -1 }
        let length = SocketAddress.write(destination, to: address)
        return bytes.withUnsafeBytes { payload in
            sendto(
                descriptor, payload.baseAddress, payload.count, 0,
                address.assumingMemoryBound(to: sockaddr.self), length)
        }
    }
    guard sent == bytes.count else { throw SystemError(call: "sendto", errno: errno) }
}

/// Whether this process may open raw sockets (CAP_NET_RAW, as root), which
/// ``sendFragmentationNeeded(about:to:mtu:)`` needs.
let canOpenRawSockets: Bool = {
    let descriptor = socket(AF_INET, Int32(SOCK_RAW.rawValue), Int32(IPPROTO_ICMP))
    guard descriptor >= 0 else { return false }
    close(descriptor)
    return true
}()

/// Forges, through a raw socket, the ICMP "fragmentation needed" message a
/// router would send about a datagram from `source` (a socket on
/// 127.0.0.1) to `destination`: the kernel hands it to the socket bound at
/// `source`, which then has `EMSGSIZE` pending (it fails the socket's next
/// call) and a report in its error queue. `mtu` is the next hop's MTU the
/// message names (65,535 leaves loopback's path MTU as it is).
func sendFragmentationNeeded(about source: Endpoint, to destination: Endpoint, mtu: UInt16 = 65_535) throws {
    let loopback: [UInt8] = [127, 0, 0, 1]
    // The offending datagram's IPv4 header and the first 8 bytes of its UDP
    // header, as the router quotes them.
    var quoted: [UInt8] = [0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0] + loopback + loopback
    let checksum = internetChecksum(quoted)
    quoted[10] = UInt8(checksum >> 8)
    quoted[11] = UInt8(checksum & 0xFF)
    quoted += [UInt8(source.port >> 8), UInt8(source.port & 0xFF), UInt8(destination.port >> 8),
               UInt8(destination.port & 0xFF), 0, 8, 0, 0]
    var message: [UInt8] = [3, 4, 0, 0, 0, 0, UInt8(mtu >> 8), UInt8(mtu & 0xFF)] + quoted
    let icmpChecksum = internetChecksum(message)
    message[2] = UInt8(icmpChecksum >> 8)
    message[3] = UInt8(icmpChecksum & 0xFF)
    let descriptor = socket(AF_INET, Int32(SOCK_RAW.rawValue), Int32(IPPROTO_ICMP))
    guard descriptor >= 0 else { throw SystemError(call: "socket", errno: errno) }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    let sent = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
            message.withUnsafeBytes { bytes in
                sendto(descriptor, bytes.baseAddress, bytes.count, 0, sockaddrPointer,
                       socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
    guard sent == message.count else { throw SystemError(call: "sendto", errno: errno) }
}

/// The Internet checksum (RFC 1071) of `bytes`.
func internetChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    for index in stride(from: 0, to: bytes.count, by: 2) {
        let high = UInt32(bytes[index]) << 8
        let low = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
        sum += high | low
    }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}
