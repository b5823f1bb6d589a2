import WireCodec

/// The contents of a ``FileRaftStorage`` snapshot file, little-endian:
/// `[magic "CHORUSSN"][format version u32][index u64][term u64][data length
/// u64][CRC32C u32][data]`, the checksum covering the index, the term, the
/// length and the data. In format 2 the data is a ``SnapshotPayload`` (the
/// group's membership, then the state machine's bytes); in format 1, which
/// this build still reads, it is the state machine's bytes alone (no
/// membership: the group's first).
enum SnapshotFile {
    /// The file's first 8 bytes.
    static let magic: [UInt8] = Array("CHORUSSN".utf8)
    /// The format version this build writes.
    static let version: UInt32 = 2
    /// The format versions this build reads.
    static let readableVersions: ClosedRange<UInt32> = 1...2
    /// The bytes before the data.
    static let headerSize = 40

    /// The file's bytes for `snapshot`.
    static func encode(_ snapshot: RaftSnapshot) -> [UInt8] {
        let prefix = SnapshotPayload.prefix(snapshot.membership)
        var writer = WireWriter(capacity: headerSize + prefix.count + snapshot.data.count)
        magic.withUnsafeBytes { writer.writeRawBytes($0) }
        writer.writeUInt32(version)
        writer.writeUInt64(snapshot.index)
        writer.writeUInt64(snapshot.term)
        writer.writeUInt64(UInt64(prefix.count + snapshot.data.count))
        var crc = CRC32C()
        writer.withUnsafeBytes { crc.update(UnsafeRawBufferPointer(rebasing: $0[12...])) }
        crc.update(prefix)
        crc.update(snapshot.data)
        writer.writeUInt32(crc.value)
        prefix.withUnsafeBytes { writer.writeRawBytes($0) }
        snapshot.data.withUnsafeBytes { writer.writeRawBytes($0) }
        return writer.takeBytes()
    }

    /// The snapshot in `bytes`, the contents of `file`.
    ///
    /// - Throws: ``RaftStorageError`` `.corrupt` (another magic, a short
    ///   file, a length that disagrees with the file's, a failing checksum)
    ///   or `.unsupportedVersion`, with the offset of the field at fault.
    static func decode(_ bytes: [UInt8], file: String) throws(RaftStorageError) -> RaftSnapshot {
        guard bytes.count >= magic.count, bytes.prefix(magic.count).elementsEqual(magic) else {
            throw RaftStorageError(.corrupt, file: file, offset: 0, detail: "not a Chorus Raft snapshot (no magic)")
        }
        let short = RaftStorageError(.corrupt, file: file, offset: 0,
                                     detail: "the snapshot header needs \(headerSize) bytes, the file has \(bytes.count)")
        guard bytes.count >= 12 else { throw short }
        return try bytes.withUnsafeBytes { raw in
            Result { () throws(RaftStorageError) in
                let version = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
                guard Self.readableVersions.contains(version) else {
                    throw RaftStorageError(
                        .unsupportedVersion(version), file: file, offset: 8,
                        detail: "snapshot format version \(version), this build reads \(Self.readableVersions)")
                }
                guard raw.count >= headerSize else { throw short }
                let length = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 28, as: UInt64.self))
                guard length == UInt64(raw.count - headerSize) else {
                    throw RaftStorageError(
                        .corrupt, file: file, offset: 28,
                        detail: "the header says \(length) bytes of data, \(raw.count - headerSize) follow")
                }
                var crc = CRC32C()
                crc.update(UnsafeRawBufferPointer(rebasing: raw[12..<36]))
                crc.update(UnsafeRawBufferPointer(rebasing: raw[headerSize...]))
                guard crc.value == UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 36, as: UInt32.self)) else {
                    throw RaftStorageError(.corrupt, file: file, offset: 36, detail: "the snapshot fails its checksum")
                }
                let index = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 12, as: UInt64.self))
                let term = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 20, as: UInt64.self))
                guard index <= RaftMessage.maximumTermOrIndex, term <= RaftMessage.maximumTermOrIndex else {
                    throw RaftStorageError(.corrupt, file: file, offset: 12,
                                           detail: "index \(index) or term \(term) is above 2^62")
                }
                let data = UnsafeRawBufferPointer(rebasing: raw[headerSize...])
                guard version >= 2 else { return RaftSnapshot(index: index, term: term, data: Array(data)) }
                do throws(WireError) {
                    return try SnapshotPayload.decode(data, index: index, term: term)
                } catch {
                    throw RaftStorageError(
                        .corrupt, file: file, offset: headerSize, detail: "the snapshot's membership: \(error)")
                }
            }
        }.get()
    }
}
