/// Builds and checks frames: a ``FrameHeader`` followed by a body.
public enum Frame {
    /// Appends a frame to `writer`: writes the header, lets `body` append
    /// the body, then fills in the header's body length and CRC32C.
    ///
    /// `body` must only append to the writer it is given (it may read
    /// ``WireWriter/count``); the frame starts at the writer's count on entry,
    /// so several frames can be built one after another in one buffer.
    ///
    /// - Throws: ``WireError/Code/lengthExceedsLimit`` if the frame would be
    ///   longer than `limits.maximumFrameLength` (or its body longer than a
    ///   `UInt32` can state); ``WireError/Code/lengthMismatch`` if `body`
    ///   removed bytes written before it. On a throw, the writer is left as it
    ///   was on entry when possible (always, unless `body` removed bytes).
    public static func encode(
        protocol protocolID: ProtocolID,
        flags: FrameFlags = [],
        limits: WireLimits = .default,
        into writer: inout WireWriter,
        body: (inout WireWriter) -> Void
    ) throws(WireError) {
        let start = writer.count
        writer.writeUInt16(FrameHeader.magic)
        writer.writeUInt8(FrameHeader.currentVersion)
        writer.writeUInt8(protocolID.rawValue)
        writer.writeUInt8(flags.rawValue)
        writer.writeUInt32(0)  // body length, patched below
        writer.writeUInt32(0)  // checksum, patched below
        let bodyStart = writer.count
        body(&writer)
        guard writer.count >= bodyStart else {
            throw WireError(.lengthMismatch, offset: start, detail: "the body closure removed bytes written before it")
        }
        let bodyLength = writer.count - bodyStart
        guard let length = UInt32(exactly: bodyLength), FrameHeader.size + bodyLength <= limits.maximumFrameLength
        else {
            writer.truncate(to: start)
            throw WireError.lengthExceedsLimit(
                at: start, length: UInt64(FrameHeader.size + bodyLength),
                limit: limits.maximumFrameLength, what: "frame length")
        }
        writer.patchUInt32(length, at: start + 5)
        let checksum = writer.withUnsafeBytes { buffer in
            var crc = CRC32C()
            crc.update(UnsafeRawBufferPointer(rebasing: buffer[start..<(start + 9)]))
            crc.update(UnsafeRawBufferPointer(rebasing: buffer[bodyStart...]))
            return crc.value
        }
        writer.patchUInt32(checksum, at: start + 9)
    }

    /// Decodes a frame as ``decode(_:limits:)`` does and returns its body,
    /// if it belongs to `protocolID`: what a protocol driver does with
    /// every datagram.
    ///
    /// - Throws: what ``decode(_:limits:)`` throws, and
    ///   ``WireError/Code/otherProtocol`` for a valid frame of another
    ///   protocol.
    public static func decodeBody(
        _ datagram: UnsafeRawBufferPointer, of protocolID: ProtocolID, limits: WireLimits = .default
    ) throws(WireError) -> UnsafeRawBufferPointer {
        let (header, body) = try decode(datagram, limits: limits)
        guard header.protocolID == protocolID else {
            throw WireError(.otherProtocol, offset: 3, detail: "a \(header.protocolID) frame, not \(protocolID)")
        }
        return body
    }

    /// Checks that `datagram` is exactly one valid frame and returns its
    /// header and body. The body is a slice of `datagram` (no copy), valid
    /// as long as `datagram` is.
    ///
    /// Checks run in this order, the first failure being thrown:
    /// - ``WireError/Code/truncated``: fewer than 13 bytes;
    /// - ``WireError/Code/badMagic``, then ``WireError/Code/unsupportedVersion``;
    /// - ``WireError/Code/lengthExceedsLimit``: the stated frame length is
    ///   above `limits.maximumFrameLength`;
    /// - ``WireError/Code/lengthMismatch``: the stated body length is not
    ///   the number of bytes after the header (fewer: a cut frame; more:
    ///   trailing bytes);
    /// - ``WireError/Code/badChecksum``: the CRC32C does not match;
    /// - ``WireError/Code/unknownProtocol``: the protocol id, checked only
    ///   once the checksum shows the header intact, is not a ``ProtocolID``.
    public static func decode(
        _ datagram: UnsafeRawBufferPointer, limits: WireLimits = .default
    ) throws(WireError) -> (header: FrameHeader, body: UnsafeRawBufferPointer) {
        let fields = try FrameHeader.Fields(datagram)
        let frameLength = UInt64(FrameHeader.size) + UInt64(fields.bodyLength)
        guard frameLength <= UInt64(clamping: limits.maximumFrameLength) else {
            throw WireError.lengthExceedsLimit(
                at: 5, length: frameLength, limit: limits.maximumFrameLength, what: "frame length")
        }
        let bodyLength = Int(fields.bodyLength)  // at most maximumFrameLength, so it fits
        let present = datagram.count - FrameHeader.size
        guard bodyLength == present else {
            throw WireError(.lengthMismatch, offset: 5, detail: "body length is \(bodyLength), \(present) bytes follow the header")
        }
        let body = UnsafeRawBufferPointer(rebasing: datagram[FrameHeader.size...])
        var crc = CRC32C()
        crc.update(UnsafeRawBufferPointer(rebasing: datagram[..<9]))
        crc.update(body)
        guard crc.value == fields.checksum else {
            throw WireError(.badChecksum, offset: 9, detail: "checksum is 0x\(String(fields.checksum, radix: 16)), bytes give 0x\(String(crc.value, radix: 16))")
        }
        let header = FrameHeader(
            protocolID: try fields.protocolID(), flags: fields.flags,
            bodyLength: bodyLength, checksum: fields.checksum)
        return (header, body)
    }
}
