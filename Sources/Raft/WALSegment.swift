import WireCodec

/// One segment file of a ``FileRaftStorage``'s write-ahead log, as the
/// store tracks it: its place in creation order (replay follows it) and its
/// header. Its name is ``StorageFileName/segment(sequence:firstIndex:)``.
struct WALSegment: Equatable {
    /// The segment's number in creation order.
    var sequence: UInt64
    /// What the segment's header says.
    var header: Header

    /// The segment's file name.
    var name: String { StorageFileName.segment(sequence: sequence, firstIndex: header.firstIndex) }

    /// The first bytes of every segment of a ``FileRaftStorage``'s write-ahead
    /// log, little-endian: `[magic "CHORUSWL"][format version u32][first index
    /// u64][previous term u64][salt u64][CRC32C of the 36 bytes before it
    /// u32]`, 40 bytes.
    ///
    /// The first index is the first log index the segment holds; the previous
    /// term is the term of the entry just before it, which recovery checks
    /// against the log the earlier segments built, and which stays known when
    /// those segments are compacted away. The salt, random per segment and
    /// never sent anywhere, is covered by every record's checksum
    /// (``WALRecord``), so that no command can pass for a record (one that
    /// did, inside a torn tail, would make recovery refuse the log as
    /// damaged). Version 1, without the salt, is not read.
    struct Header: Equatable {
        /// The first log index the segment holds.
        var firstIndex: UInt64
        /// The term of the entry at `firstIndex - 1`.
        var previousTerm: UInt64
        /// What the checksums of the segment's records start from.
        var salt: UInt64

        /// The file's first 8 bytes.
        static let magic: [UInt8] = Array("CHORUSWL".utf8)
        /// The format version this build writes and reads.
        static let version: UInt32 = 2
        /// The header's length in bytes.
        static let size = 40

        /// The header's bytes.
        var bytes: [UInt8] {
            var writer = WireWriter(capacity: Self.size)
            Self.magic.withUnsafeBytes { writer.writeRawBytes($0) }
            writer.writeUInt32(Self.version)
            writer.writeUInt64(firstIndex)
            writer.writeUInt64(previousTerm)
            writer.writeUInt64(salt)
            let checksum = writer.withUnsafeBytes { CRC32C.checksum($0) }
            writer.writeUInt32(checksum)
            return writer.takeBytes()
        }

        /// Creates a header, by default with a new random salt.
        init(firstIndex: UInt64, previousTerm: UInt64, salt: UInt64 = .random(in: .min ... .max)) {
            self.firstIndex = firstIndex
            self.previousTerm = previousTerm
            self.salt = salt
        }

        /// Reads the header at the start of `bytes`, the contents of `file`.
        ///
        /// - Throws: ``RaftStorageError`` `.corrupt` (a short file, another
        ///   magic, a failing checksum) or `.unsupportedVersion`, with the
        ///   offset of the field at fault.
        init(reading bytes: UnsafeRawBufferPointer, file: String) throws(RaftStorageError) {
            let magicCount = Self.magic.count
            guard bytes.count >= magicCount, bytes.prefix(magicCount).elementsEqual(Self.magic) else {
                throw RaftStorageError(.corrupt, file: file, offset: 0, detail: "not a Chorus Raft log segment (no magic)")
            }
            guard bytes.count >= 12 else { throw Self.short(bytes.count, file: file) }
            let version = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            guard version == Self.version else {
                throw RaftStorageError(.unsupportedVersion(version), file: file, offset: 8,
                                       detail: "segment format version \(version), this build reads \(Self.version)")
            }
            guard bytes.count >= Self.size else { throw Self.short(bytes.count, file: file) }
            let checksum = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 36, as: UInt32.self))
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[..<36])) == checksum else {
                throw RaftStorageError(.corrupt, file: file, offset: 36, detail: "the segment header fails its checksum")
            }
            firstIndex = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt64.self))
            previousTerm = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 20, as: UInt64.self))
            salt = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 28, as: UInt64.self))
            // A snapshot may end at the largest index, 2^62: the log after
            // it starts one above, empty.
            guard firstIndex >= 1, firstIndex <= RaftMessage.maximumTermOrIndex + 1,
                previousTerm <= RaftMessage.maximumTermOrIndex
            else {
                throw RaftStorageError(.corrupt, file: file, offset: 12,
                                       detail: "first index \(firstIndex) is outside 1 ... 2^62 + 1, "
                                           + "or the term before it, \(previousTerm), above 2^62")
            }
        }

        private static func short(_ count: Int, file: String) -> RaftStorageError {
            RaftStorageError(.corrupt, file: file, offset: 0,
                             detail: "the segment header needs \(size) bytes, the file has \(count)")
        }
    }
}
