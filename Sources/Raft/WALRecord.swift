import EventCore
import WireCodec

/// One record of a ``FileRaftStorage`` segment: what one
/// ``RaftStorage/persist(_:hardState:)`` call makes durable, written with
/// one `write(2)`.
///
/// Framing, little-endian: `[payload length u32][CRC32C u32][type u8]
/// [payload]`, the checksum covering the segment's salt (8 bytes,
/// little-endian; see ``WALSegment/Header``), the type byte and the
/// payload. Type 1
/// (the only one) is a batch: `[hard state presence u8][term varint, voted
/// for (presence u8, u64), commit index varint, if present][entry count
/// varint][entries]`, each entry as ``RaftEntry`` encodes it (term and index
/// varints, kind byte, length-prefixed command).
struct WALRecord: Equatable {
    /// The entries, numbered one after another; they replace the log from
    /// the first one's index on.
    var entries: [RaftEntry]
    /// The hard state, if the record carries one.
    var hardState: RaftHardState?

    /// Bytes before the type byte: the length and the checksum.
    static let headerSize = 8
    /// The largest payload a record may have; recovery checks a length
    /// against it before anything else.
    static let maximumPayloadSize = 1 << 30
    /// The type byte of a batch.
    static let batchType: UInt8 = 1

    /// Creates a record.
    init(entries: [RaftEntry], hardState: RaftHardState?) {
        self.entries = entries
        self.hardState = hardState
    }

    /// The record framed for a segment with `salt`; nil if its payload is
    /// over ``maximumPayloadSize``.
    func framed(salt: UInt64) -> [UInt8]? {
        var payload = WireWriter(capacity: 32 + entries.reduce(0) { $0 + 24 + $1.command.count })
        payload.writeOptional(hardState) { writer, hardState in
            writer.writeVarint(hardState.term)
            writer.writeOptional(hardState.votedFor) { $0.write($1) }
            writer.writeVarint(hardState.commitIndex)
        }
        payload.writeArray(entries) { $0.write($1) }
        guard payload.count <= Self.maximumPayloadSize else { return nil }
        var crc = CRC32C(salt: salt)
        crc.update([Self.batchType])
        payload.withUnsafeBytes { crc.update($0) }
        var writer = WireWriter(capacity: Self.headerSize + 1 + payload.count)
        writer.writeUInt32(UInt32(payload.count))
        writer.writeUInt32(crc.value)
        writer.writeUInt8(Self.batchType)
        payload.withUnsafeBytes { writer.writeRawBytes($0) }
        return writer.takeBytes()
    }

    /// The length of the whole record at the start of `bytes`, in a segment
    /// with `salt`, if one is there, complete and with a matching checksum;
    /// nil otherwise.
    static func validLength(_ bytes: UnsafeRawBufferPointer, salt: UInt64) -> Int? {
        validLength(bytes) { range in
            var crc = CRC32C(salt: salt)
            crc.update(UnsafeRawBufferPointer(rebasing: bytes[range]))
            return crc.value
        }
    }

    /// ``validLength(_:salt:)`` with `checksum` giving the salted checksum
    /// of a range of `bytes`.
    private static func validLength(
        _ bytes: UnsafeRawBufferPointer, checksum: (Range<Int>) -> UInt32
    ) -> Int? {
        guard bytes.count > headerSize else { return nil }
        let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        guard length <= maximumPayloadSize, length < bytes.count - headerSize else { return nil }
        let recorded = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let end = headerSize + 1 + length
        guard checksum(headerSize..<end) == recorded else { return nil }
        return end
    }

    /// Where the record at the start of `bytes` ends by its length field,
    /// whether or not it is valid; nil if its header is not all there.
    static func claimedEnd(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= headerSize else { return nil }
        return headerSize + 1 + Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
    }

    /// The offset of the first valid record strictly after the start of
    /// `bytes`, if any (recovery's test for damage before the tail). Each
    /// offset's candidate is checksummed through ``CRC32CRanges``, so the
    /// search does not read the bytes again for every offset.
    static func firstValid(after bytes: UnsafeRawBufferPointer, salt: UInt64) -> Int? {
        CRC32CRanges.firstValidOffset(in: bytes, salt: salt, leaving: headerSize + 1) { candidate, checksum in
            validLength(candidate, checksum: checksum) != nil
        }
    }

    /// Decodes a record that ``validLength(_:salt:)`` accepted.
    ///
    /// - Throws: `WireError` if the type is unknown or the payload does not
    ///   parse (offsets from the start of the record).
    init(decoding record: UnsafeRawBufferPointer) throws(WireError) {
        let limits = WireLimits(maximumByteStringLength: record.count, maximumCollectionCount: record.count)
        var reader = WireReader(record, limits: limits)
        _ = try reader.readRawBytes(count: Self.headerSize)
        let typeOffset = reader.offset
        let type = try reader.readUInt8()
        guard type == Self.batchType else {
            throw WireError(.invalidValue, offset: typeOffset, detail: "unknown record type \(type)")
        }
        // Terms and indices within the protocol's bounds, as from the wire:
        // arithmetic on them cannot overflow.
        let largest = RaftMessage.maximumTermOrIndex
        hardState = try reader.readOptional { reader throws(WireError) in
            RaftHardState(
                term: try reader.readVarint(atMost: largest, what: "term"),
                votedFor: try reader.readOptional { reader throws(WireError) in try reader.read(NodeID.self) },
                commitIndex: try reader.readVarint(atMost: largest, what: "commit index"))
        }
        entries = try reader.readArray { reader throws(WireError) in
            let offset = reader.offset
            let entry = try reader.read(RaftEntry.self)
            guard entry.term <= largest, entry.index <= largest else {
                throw WireError(.invalidValue, offset: offset,
                                detail: "an entry of term \(entry.term) at index \(entry.index), above 2^62")
            }
            return entry
        }
        try reader.finish()
    }
}
