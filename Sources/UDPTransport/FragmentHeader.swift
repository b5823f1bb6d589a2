import WireCodec

/// The header of one fragment of a message too large for a datagram.
///
/// A fragment datagram is a Chorus frame (``WireCodec/FrameHeader``) whose
/// flags include ``WireCodec/FrameFlags/fragment``; its body is this 12-byte
/// header followed by the fragment's chunk of the message. Whole messages
/// are sent as they are, so the flag alone tells the receiver a fragment
/// from a message. The protocol byte is carried, not interpreted: a
/// fragmented message need not be a frame.
///
/// | Offset | Size | Field                                                |
/// |-------:|-----:|------------------------------------------------------|
/// |      0 |   13 | frame header: magic, version, protocol id copied from |
/// |        |      | the message (byte 3), flags = fragment, body length,  |
/// |        |      | CRC32C of header bytes 0..<9 and the body             |
/// |     13 |    4 | message id, `UInt32` LE, per sender                   |
/// |     17 |    2 | fragment index, `UInt16` LE, `0 ..< count`            |
/// |     19 |    2 | fragment count, `UInt16` LE, at least 1               |
/// |     21 |    4 | message length in bytes, `UInt32` LE                  |
/// |     25 |    n | the chunk                                            |
///
/// The message is cut into `count` chunks of `ceil(length / count)` bytes,
/// the last taking what remains (see ``chunkRange(index:count:messageLength:)``),
/// so every fragment's offset and exact length follow from the header and a
/// receiver can check them before copying anything.
public struct FragmentHeader: Hashable, Sendable {
    /// The size of this header in bytes (after the frame header).
    public static let size = 12
    /// The bytes a fragment datagram adds to its chunk: the 13-byte frame
    /// header and this header.
    public static let datagramOverhead = FrameHeader.size + size

    /// Identifies the message among those in flight from one sender.
    public var messageID: UInt32
    /// This fragment's position, from 0.
    public var index: UInt16
    /// The number of fragments of the message.
    public var count: UInt16
    /// The whole message's length in bytes.
    public var messageLength: UInt32

    /// Creates a header. Any values can be encoded; a receiver checks them.
    public init(messageID: UInt32, index: UInt16, count: UInt16, messageLength: UInt32) {
        self.messageID = messageID
        self.index = index
        self.count = count
        self.messageLength = messageLength
    }

    /// Whether `datagram` is a fragment, that is, has the frame header's
    /// fragment flag (byte 4, bit 0) set. A whole message whose bytes would
    /// say so is sent fragmented instead (as one fragment when it fits one).
    @inline(__always)
    public static func isFragment(_ datagram: UnsafeRawBufferPointer) -> Bool {
        datagram.count > flagsOffset && datagram[flagsOffset] & FrameFlags.fragment.rawValue != 0
    }

    /// The byte range of fragment `index` in a message of `messageLength`
    /// bytes cut into `count` fragments, or nil if no such fragment exists
    /// (`count` is 0, `index` is not below `count`, or `count` is more than
    /// the message has bytes so some fragment would be empty).
    public static func chunkRange(index: Int, count: Int, messageLength: Int) -> Range<Int>? {
        guard count > 0, index >= 0, index < count, messageLength > 0 else { return nil }
        let chunk = messageLength / count + (messageLength % count == 0 ? 0 : 1)
        // True exactly when every chunk, the last included, is non-empty
        // (false when `count` exceeds `messageLength`).
        // Overflow only for lengths and counts no message has: no such
        // fragment either.
        let (covered, overflow) = chunk.multipliedReportingOverflow(by: count - 1)
        guard !overflow, covered < messageLength else { return nil }
        let start = chunk * index
        return start..<(start + min(chunk, messageLength - start))
    }

    /// Writes a fragment datagram (frame header, this header, `chunk`) to
    /// the start of `datagram`, which must hold ``datagramOverhead`` plus
    /// `chunk.count` bytes, and returns its length.
    ///
    /// - Parameter protocolID: the frame header's protocol byte (the
    ///   message's own byte 3, so captures show what the fragments carry).
    public func encode(
        chunk: UnsafeRawBufferPointer, protocolID: UInt8, into datagram: UnsafeMutableRawBufferPointer
    ) -> Int {
        let length = Self.datagramOverhead + chunk.count
        precondition(datagram.count >= length, "FragmentHeader.encode: the datagram buffer is too small")
        let bodyLength = UInt32(Self.size + chunk.count)
        datagram.storeBytes(of: FrameHeader.magic.littleEndian, toByteOffset: 0, as: UInt16.self)
        datagram[2] = FrameHeader.currentVersion
        datagram[3] = protocolID
        datagram[Self.flagsOffset] = FrameFlags.fragment.rawValue
        datagram.storeBytes(of: bodyLength.littleEndian, toByteOffset: 5, as: UInt32.self)
        let base = FrameHeader.size
        datagram.storeBytes(of: messageID.littleEndian, toByteOffset: base, as: UInt32.self)
        datagram.storeBytes(of: index.littleEndian, toByteOffset: base + 4, as: UInt16.self)
        datagram.storeBytes(of: count.littleEndian, toByteOffset: base + 6, as: UInt16.self)
        datagram.storeBytes(of: messageLength.littleEndian, toByteOffset: base + 8, as: UInt32.self)
        if let source = chunk.baseAddress, let destination = datagram.baseAddress {
            (destination + Self.datagramOverhead).copyMemory(from: source, byteCount: chunk.count)
        }
        let frame = UnsafeRawBufferPointer(rebasing: datagram[..<length])
        let checksum = Self.checksum(of: frame)
        datagram.storeBytes(of: checksum.littleEndian, toByteOffset: Self.checksumOffset, as: UInt32.self)
        return length
    }

    /// Reads and checks the frame and fragment headers of `datagram`.
    ///
    /// Checks the frame (length, magic and version, body length against the
    /// bytes present, checksum) but not the fragment fields' meaning, which
    /// is the reassembler's business.
    ///
    /// - Returns: the header and the chunk (a slice of `datagram`), or why
    ///   the datagram is not a well-formed fragment.
    static func decode(_ datagram: UnsafeRawBufferPointer) -> Decoded {
        guard datagram.count >= datagramOverhead else { return .malformed(.truncated) }
        guard UInt16(littleEndian: datagram.loadUnaligned(fromByteOffset: 0, as: UInt16.self)) == FrameHeader.magic,
            datagram[2] == FrameHeader.currentVersion
        else { return .malformed(.badFrame) }
        let bodyLength = UInt32(littleEndian: datagram.loadUnaligned(fromByteOffset: 5, as: UInt32.self))
        guard Int(bodyLength) == datagram.count - FrameHeader.size else { return .malformed(.truncated) }
        let stored = UInt32(littleEndian: datagram.loadUnaligned(fromByteOffset: checksumOffset, as: UInt32.self))
        guard stored == checksum(of: datagram) else { return .malformed(.badChecksum) }
        let base = FrameHeader.size
        let header = FragmentHeader(
            messageID: UInt32(littleEndian: datagram.loadUnaligned(fromByteOffset: base, as: UInt32.self)),
            index: UInt16(littleEndian: datagram.loadUnaligned(fromByteOffset: base + 4, as: UInt16.self)),
            count: UInt16(littleEndian: datagram.loadUnaligned(fromByteOffset: base + 6, as: UInt16.self)),
            messageLength: UInt32(littleEndian: datagram.loadUnaligned(fromByteOffset: base + 8, as: UInt32.self)))
        return .fragment(header, chunk: UnsafeRawBufferPointer(rebasing: datagram[datagramOverhead...]))
    }

    /// What ``decode(_:)`` found.
    enum Decoded {
        /// A well-formed fragment: its header and its chunk.
        case fragment(FragmentHeader, chunk: UnsafeRawBufferPointer)
        /// Not a well-formed fragment, for this reason.
        case malformed(FragmentReassembler.DropReason)
    }

    private static let flagsOffset = 4
    private static let checksumOffset = 9

    /// The frame checksum: CRC32C of header bytes 0..<9 and the body, as
    /// ``WireCodec/Frame`` computes it. `frame` holds at least a frame header.
    private static func checksum(of frame: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32C()
        crc.update(UnsafeRawBufferPointer(rebasing: frame[..<checksumOffset]))
        crc.update(UnsafeRawBufferPointer(rebasing: frame[FrameHeader.size...]))
        return crc.value
    }
}
