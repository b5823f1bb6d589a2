import WireCodec

/// Runs `body` on a reader over `bytes`, requiring it to consume them all.
func decode<Value>(
    _ bytes: [UInt8], limits: WireLimits = .default,
    _ body: (inout WireReader) throws(WireError) -> Value
) -> Result<Value, WireError> {
    bytes.withUnsafeBytes { raw in
        var reader = WireReader(raw, limits: limits)
        do throws(WireError) {
            let value = try body(&reader)
            try reader.finish()
            return .success(value)
        } catch {
            return .failure(error)
        }
    }
}

/// The bytes `body` writes.
func encode(_ body: (inout WireWriter) -> Void) -> [UInt8] {
    var writer = WireWriter()
    body(&writer)
    return writer.takeBytes()
}

/// The encoding of a ``WireEncodable`` value.
func encode(_ value: some WireEncodable) -> [UInt8] {
    encode { $0.write(value) }
}

/// A frame with `body` as its body bytes.
func frame(_ protocolID: ProtocolID = .swim, flags: FrameFlags = [], body: [UInt8]) throws(WireError) -> [UInt8] {
    var writer = WireWriter()
    try Frame.encode(protocol: protocolID, flags: flags, into: &writer) { writer in
        body.withUnsafeBytes { writer.writeRawBytes($0) }
    }
    return writer.takeBytes()
}

/// The result of `Frame.decode` on `bytes`, with the body copied out.
func decodeFrame(_ bytes: [UInt8], limits: WireLimits = .default) -> Result<(FrameHeader, [UInt8]), WireError> {
    bytes.withUnsafeBytes { raw in
        do throws(WireError) {
            let (header, body) = try Frame.decode(raw, limits: limits)
            return .success((header, Array(body)))
        } catch {
            return .failure(error)
        }
    }
}

extension Result where Failure == WireError {
    /// The error's code, or nil on success.
    var errorCode: WireError.Code? {
        if case .failure(let error) = self { return error.code }
        return nil
    }

    /// The value, or nil on failure.
    var value: Success? {
        if case .success(let value) = self { return value }
        return nil
    }
}

/// Overwrites the checksum of the frame in `bytes` with the right one, so a
/// test can change a header field and still pass the checksum.
func resealed(_ bytes: [UInt8]) -> [UInt8] {
    var bytes = bytes
    var crc = CRC32C()
    crc.update(Array(bytes[..<9]))
    crc.update(Array(bytes[13...]))
    withUnsafeBytes(of: crc.value.littleEndian) { bytes.replaceSubrange(9..<13, with: $0) }
    return bytes
}
