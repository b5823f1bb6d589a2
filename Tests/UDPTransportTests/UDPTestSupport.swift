#if canImport(Glibc)
import Glibc
#endif
import EventCore
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

/// Polls `condition` until it holds; throws ``TimedOut`` (failing the test)
/// after `timeout`. The sleep between polls is not a correctness condition.
func waitUntil(
    _ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while try await !condition() {
        guard clock.now < deadline else { throw TimedOut(what: what) }
        try await Task.sleep(for: .milliseconds(2))
    }
}

/// Runs `body` with `count` started loops, shutting them down afterwards.
func withLoops<Result>(
    _ count: Int, _ body: ([EventLoop]) async throws -> Result
) async throws -> Result {
    let loops = try (0..<count).map { _ in try EventLoop() }
    for loop in loops { loop.start() }
    defer { for loop in loops { loop.shutdown() } }
    return try await body(loops)
}

/// `count` bytes from EventCore's generator seeded with `seed`.
func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var random = SeededRandomGenerator(seed: seed)
    return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &random) }
}

/// The inode of the UDP socket bound to `endpoint`'s port, read from
/// `/proc/net/udp` or `/proc/net/udp6`, or nil if no socket has that port.
func socketInode(boundTo endpoint: Endpoint) -> String? {
    let path = endpoint.isIPv6 ? "/proc/net/udp6" : "/proc/net/udp"
    let wanted = String(endpoint.port, radix: 16, uppercase: true)
    for line in readText(path).split(separator: "\n").dropFirst() {
        let fields = line.split(separator: " ")
        guard fields.count > 9, let colon = fields[1].lastIndex(of: ":") else { continue }
        let port = fields[1][fields[1].index(after: colon)...]
        if port.drop(while: { $0 == "0" }) == wanted[...] { return String(fields[9]) }
    }
    return nil
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
