import EventCore
import WireCodec

/// The messages of the loopback self-check, carried in `client` frames.
///
/// Body: a kind byte, then per kind:
/// - `ping`/`pong`: varint sequence, UInt64 send instant (ns);
/// - `bulk`: the payload bytes (the frame's CRC32C guards them);
/// - `bulkAck`: UInt32 CRC32C and varint length of the bulk payload received;
/// - `blast`: varint sequence, then padding.
enum SelfCheckMessage {
    case ping(sequence: UInt64, sentAt: Instant)
    case pong(sequence: UInt64, sentAt: Instant)
    case bulk(checksum: UInt32, length: Int)
    case bulkAck(checksum: UInt32, length: Int)
    case blast

    private enum Kind: UInt8 {
        case ping = 1, pong, bulk, bulkAck, blast
    }

    /// Decodes one datagram, verifying its frame.
    init(frame datagram: UnsafeRawBufferPointer) throws(WireError) {
        let (header, body) = try Frame.decode(datagram)
        guard header.protocolID == .client else {
            throw WireError(.invalidValue, offset: 3, detail: "not a client frame")
        }
        var reader = WireReader(body)
        switch try reader.readEnum(Kind.self) {
        case .ping:
            self = .ping(sequence: try reader.readVarint(), sentAt: Instant(nanoseconds: try reader.readUInt64()))
        case .pong:
            self = .pong(sequence: try reader.readVarint(), sentAt: Instant(nanoseconds: try reader.readUInt64()))
        case .bulk:
            let payload = UnsafeRawBufferPointer(rebasing: body[1...])
            self = .bulk(checksum: CRC32C.checksum(payload), length: payload.count)
        case .bulkAck:
            self = .bulkAck(checksum: try reader.readUInt32(), length: Int(try reader.readVarint(as: UInt32.self)))
        case .blast:
            self = .blast
        }
    }

    /// Encodes a ping or pong frame into `writer` (emptied first).
    static func encodeEcho(
        pong: Bool, sequence: UInt64, sentAt: Instant, into writer: inout WireWriter
    ) throws(WireError) {
        writer.removeAll()
        try Frame.encode(protocol: .client, into: &writer) { body in
            body.writeUInt8((pong ? Kind.pong : Kind.ping).rawValue)
            body.writeVarint(sequence)
            body.writeUInt64(sentAt.nanoseconds)
        }
    }

    /// Encodes a bulk frame carrying `payload`.
    static func encodeBulk(_ payload: [UInt8], into writer: inout WireWriter) throws(WireError) {
        writer.removeAll()
        try Frame.encode(protocol: .client, into: &writer) { body in
            body.writeUInt8(Kind.bulk.rawValue)
            payload.withUnsafeBytes { body.writeRawBytes($0) }
        }
    }

    /// Encodes the acknowledgement of a bulk payload.
    static func encodeBulkAck(checksum: UInt32, length: Int, into writer: inout WireWriter) throws(WireError) {
        writer.removeAll()
        try Frame.encode(protocol: .client, into: &writer) { body in
            body.writeUInt8(Kind.bulkAck.rawValue)
            body.writeUInt32(checksum)
            body.writeVarint(UInt64(length))
        }
    }

    /// Encodes a blast frame whose body is `bodySize` bytes.
    static func encodeBlast(sequence: UInt64, bodySize: Int, into writer: inout WireWriter) throws(WireError) {
        writer.removeAll()
        try Frame.encode(protocol: .client, into: &writer) { body in
            let start = body.count
            body.writeUInt8(Kind.blast.rawValue)
            body.writeVarint(sequence)
            while body.count - start < bodySize { body.writeUInt8(0) }
        }
    }
}
