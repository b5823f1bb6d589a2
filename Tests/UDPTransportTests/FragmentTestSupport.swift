import EventCore
import UDPTransport

/// Every fragment datagram of `message`, as a transport with datagrams of
/// `datagramSize` bytes sends them.
func fragments(of message: [UInt8], messageID: UInt32 = 1, datagramSize: Int = 1_400) throws -> [[UInt8]] {
    let count = try Fragmenter(maximumDatagramSize: datagramSize).fragmentCount(messageLength: message.count)
    return try (0..<count).map {
        try fragmentDatagram(of: message, index: $0, count: count, messageID: messageID, datagramSize: datagramSize)
    }
}

/// Fragment `index` of the `count` fragments of `message`.
func fragmentDatagram(
    of message: [UInt8], index: Int, count: Int, messageID: UInt32 = 1, datagramSize: Int = 1_400
) throws -> [UInt8] {
    let fragmenter = try Fragmenter(maximumDatagramSize: datagramSize)
    var datagram = [UInt8](repeating: 0, count: datagramSize)
    let length = message.withUnsafeBytes { bytes in
        datagram.withUnsafeMutableBytes { buffer in
            fragmenter.writeFragment(
                index, count: count, of: bytes, messageID: messageID, into: buffer)
        }
    }
    return Array(datagram[..<length])
}

/// A well-formed fragment datagram (valid frame and checksum) with any
/// header values and chunk, as a hostile peer may send.
func craftedFragment(_ header: FragmentHeader, chunk: [UInt8]) -> [UInt8] {
    var datagram = [UInt8](repeating: 0, count: FragmentHeader.datagramOverhead + chunk.count)
    let length = chunk.withUnsafeBytes { bytes in
        datagram.withUnsafeMutableBytes { buffer in
            header.encode(chunk: bytes, protocolID: 1, into: buffer)
        }
    }
    return Array(datagram[..<length])
}

/// `datagram` (a fragment) with its header changed by `change`, re-encoded
/// with a valid checksum.
func withRewrittenHeader(_ datagram: [UInt8], _ change: (inout FragmentHeader) -> Void) -> [UInt8] {
    func field(_ offset: Int, _ size: Int) -> UInt64 {
        (0..<size).reduce(0) { $0 | UInt64(datagram[13 + offset + $1]) << (8 * UInt64($1)) }
    }
    var header = FragmentHeader(
        messageID: UInt32(field(0, 4)), index: UInt16(field(4, 2)), count: UInt16(field(6, 2)),
        messageLength: UInt32(field(8, 4)))
    change(&header)
    return craftedFragment(header, chunk: Array(datagram[FragmentHeader.datagramOverhead...]))
}

/// Feeds `datagram` to `reassembler` from `sender` at `now`.
func feed(
    _ reassembler: FragmentReassembler, _ datagram: [UInt8], from sender: Endpoint = .loopbackV4(port: 9),
    now: Instant = .zero
) -> FragmentReassembler.Outcome {
    datagram.withUnsafeBytes { reassembler.receive($0, from: sender, now: now) }
}

extension FragmentReassembler.Outcome {
    /// The completed message's bytes, or nil.
    var completedBytes: [UInt8]? {
        guard case .completed(let message) = self else { return nil }
        return message.withUnsafeBytes { Array($0) }
    }

    /// Whether the fragment was stored and its message is still incomplete.
    var isPending: Bool {
        if case .pending = self { return true }
        return false
    }

    /// Why the fragment was dropped, or nil.
    var dropReason: FragmentReassembler.DropReason? {
        guard case .dropped(let reason) = self else { return nil }
        return reason
    }
}
