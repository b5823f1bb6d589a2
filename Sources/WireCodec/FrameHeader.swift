/// The fixed 13-byte header that starts every Chorus datagram.
///
/// Byte layout (multi-byte integers little-endian):
///
/// | Offset | Size | Field                                                |
/// |-------:|-----:|------------------------------------------------------|
/// |      0 |    2 | magic: `0xC4 0x05` (``magic``)                       |
/// |      2 |    1 | version: 1 (``currentVersion``)                      |
/// |      3 |    1 | protocol id (``ProtocolID``)                         |
/// |      4 |    1 | flags (``FrameFlags``)                               |
/// |      5 |    4 | body length in bytes, `UInt32`                       |
/// |      9 |    4 | CRC32C of bytes 0..<9 followed by the body, `UInt32` |
/// |     13 |    n | body                                                 |
///
/// A datagram holds exactly one frame: its length is 13 plus the body
/// length. Frames are built with ``Frame/encode(protocol:flags:limits:into:body:)``
/// and checked with ``Frame/decode(_:limits:)``; ``peek(_:)`` reads a header
/// without checking the rest.
public struct FrameHeader: Hashable, Sendable {
    /// The header's size in bytes.
    public static let size = 13

    /// The first two bytes of every frame, `0xC4 0x05`, as a little-endian
    /// `UInt16`.
    public static let magic: UInt16 = 0x05C4

    /// The format version this build reads and writes.
    public static let currentVersion: UInt8 = 1

    /// The protocol the body belongs to.
    public let protocolID: ProtocolID
    /// The frame's flags.
    public let flags: FrameFlags
    /// The body's length in bytes.
    public let bodyLength: Int
    /// The CRC32C stored in the header (of the header's first 9 bytes and
    /// the body).
    public let checksum: UInt32

    /// The whole frame's length in bytes: ``size`` plus ``bodyLength``.
    public var frameLength: Int { Self.size + bodyLength }

    /// Reads the header at the start of `bytes` without checking the body
    /// length against the bytes present or verifying the checksum: a cheap
    /// look at the protocol and flags (for example for the transport's
    /// fragment layer) or at where the frame ends in a larger buffer. Use
    /// ``Frame/decode(_:limits:)`` before trusting the body.
    ///
    /// - Throws: ``WireError/Code/truncated`` if `bytes` is shorter than a
    ///   header, ``WireError/Code/badMagic``,
    ///   ``WireError/Code/unsupportedVersion``,
    ///   ``WireError/Code/unknownProtocol``; on 32-bit platforms,
    ///   ``WireError/Code/lengthExceedsLimit`` for a body length `Int`
    ///   cannot hold.
    public static func peek(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> FrameHeader {
        let fields = try Fields(bytes)
        let protocolID = try fields.protocolID()
        // Always true on 64-bit platforms.
        guard let bodyLength = Int(exactly: fields.bodyLength), bodyLength <= Int.max - FrameHeader.size else {
            throw WireError.lengthExceedsLimit(
                at: 5, length: UInt64(fields.bodyLength), limit: Int.max - FrameHeader.size, what: "body length")
        }
        return FrameHeader(
            protocolID: protocolID, flags: fields.flags, bodyLength: bodyLength, checksum: fields.checksum)
    }
}

extension FrameHeader {
    /// The header fields as read, before the protocol id is interpreted.
    struct Fields {
        var rawProtocolID: UInt8
        var flags: FrameFlags
        var bodyLength: UInt32
        var checksum: UInt32

        /// Reads the header at the start of `bytes`, checking its size, magic
        /// and version.
        init(_ bytes: UnsafeRawBufferPointer) throws(WireError) {
            guard bytes.count >= FrameHeader.size else {
                throw WireError.truncated(at: 0, needed: FrameHeader.size, available: bytes.count)
            }
            // All offsets below are within the 13 bytes just checked.
            let magic = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt16.self))
            guard magic == FrameHeader.magic else { throw Self.badMagic(magic) }
            let version = bytes[2]
            guard version == FrameHeader.currentVersion else { throw Self.unsupportedVersion(version) }
            rawProtocolID = bytes[3]
            flags = FrameFlags(rawValue: bytes[4])
            bodyLength = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 5, as: UInt32.self))
            checksum = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 9, as: UInt32.self))
        }

        @inline(never)
        private static func badMagic(_ magic: UInt16) -> WireError {
            WireError(.badMagic, offset: 0, detail: "magic is 0x\(String(magic, radix: 16)), expected 0x\(String(FrameHeader.magic, radix: 16))")
        }

        @inline(never)
        private static func unsupportedVersion(_ version: UInt8) -> WireError {
            WireError(.unsupportedVersion, offset: 2, detail: "version \(version), this build speaks \(FrameHeader.currentVersion)")
        }

        /// The protocol id.
        ///
        /// - Throws: ``WireError/Code/unknownProtocol`` if it is not a
        ///   ``ProtocolID``.
        func protocolID() throws(WireError) -> ProtocolID {
            guard let id = ProtocolID(rawValue: rawProtocolID) else {
                throw WireError(.unknownProtocol, offset: 3, detail: "protocol id \(rawProtocolID) is unknown")
            }
            return id
        }
    }
}
